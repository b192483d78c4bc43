"""Tenants, users, memberships, invitations and API keys (control-plane documents)."""
