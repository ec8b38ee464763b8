"""Isolated execution of candidate code and the fixed evaluation harness.

Never imports ``designer`` or ``knowledge_base`` (see STYLE.md, checked by import-linter).
"""
