"""Proposers: turn a ``DesignContext`` into a ``Proposal`` (search, llm, mixed)."""
