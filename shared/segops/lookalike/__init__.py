"""Lookalike segments: audience expansion from a seed segment, scored inside ClickHouse."""
