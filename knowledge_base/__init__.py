"""The knowledge base: SQLAlchemy rows, the store API and Alembic migrations.

Never imports ``designer`` or ``sandbox``.
"""
