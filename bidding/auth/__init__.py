"""Accounts: organizations, users, roles, passwords, tokens and the request's identity."""
