"""Alembic environment and revisions of the store, run by tokensmith.store.migrate."""
