"""Ledger backends, one module each; import the one you need (Redis and PostgreSQL need their extras)."""
