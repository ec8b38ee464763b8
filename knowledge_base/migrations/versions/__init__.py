"""Alembic revisions, one module each, named ``NNNN_<what>.py``."""
