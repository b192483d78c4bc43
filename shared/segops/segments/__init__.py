"""Segments as control-plane documents: definition, versions and compute state."""
