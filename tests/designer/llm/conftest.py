"""Fixtures of the LLM tests; the helpers live in ``llm_fixtures`` (importable by name)."""
from llm_fixtures import fast_retry, recorder, server  # noqa: F401  (pytest fixtures)
