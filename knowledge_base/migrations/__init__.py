"""Alembic migrations of the knowledge base, shipped inside the package.

Run them through ``Store.upgrade()`` (or ``knowledge_base.schema``), never with an
``alembic.ini``: the configuration is built in code.
"""
