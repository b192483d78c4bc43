"""Passwords, JWTs, API keys, roles and request authentication."""
