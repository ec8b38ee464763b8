"""What the CLI built to propose: the proposer, its session id and its insight writer.

Its own module so that ``designer.cli.proposers`` (every proposer kind) and
``designer.cli.llm_wiring`` (the LLM ones, imported lazily) both use it without importing
each other both ways.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


@dataclass
class ChosenProposer:
    proposer: Any
    session_id: str
    insights: Callable[[Any], str] | None = None
