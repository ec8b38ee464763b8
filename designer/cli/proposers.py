"""Build the proposer a ``design`` run asked for."""
from __future__ import annotations

import uuid
from typing import Any, TYPE_CHECKING

from designer.proposal import ChosenProposer
from designer.errors import UsageError
from designer.proposers.search import SearchProposer

if TYPE_CHECKING:
    from knowledge_base.store import Store


def make_proposer(kind: str, *, store: Store, agent: str, workspace: Any, sampler: str, seed: int,
                  model: str | None, api_base: str | None, temperature: float,
                  budget_usd: float | None, max_calls: int | None,
                  prices: tuple[float, float] | None = None, answer_format: str = "markdown",
                  llm_timeout: float = 300.0, max_tokens: int = 4096,
                  candidates_per_call: int = 1, session_id: str | None = None) -> ChosenProposer:
    """``search`` works offline; ``llm`` and ``mixed`` need --model. LLM calls are recorded
    under ``session_id`` (default a new random one)."""
    session_id = session_id or uuid.uuid4().hex[:12]
    if kind == "search":
        return ChosenProposer(SearchProposer(sampler=sampler, seed=seed,
                                             code_for=lambda exp: store.get_code(exp.code_hash)), session_id)
    if answer_format not in ("markdown", "json"):
        raise UsageError(f"--answer-format must be markdown or json, not {answer_format!r}")
    if kind in ("llm", "mixed"):
        if not model:
            raise UsageError(f"--proposer {kind} needs --model (e.g. openai/gpt-4o-mini) and, for a "
                             "local OpenAI-compatible server, --api-base http://127.0.0.1:PORT/v1")
        from designer.cli.llm_wiring import make_llm_proposer
        return make_llm_proposer(kind, store=store, agent=agent, workspace=workspace, sampler=sampler,
                                 seed=seed, model=model, api_base=api_base, temperature=temperature,
                                 budget_usd=budget_usd, max_calls=max_calls, session_id=session_id,
                                 prices=prices, answer_format=answer_format, timeout=llm_timeout,
                                 max_tokens=max_tokens, candidates_per_call=candidates_per_call)
    raise UsageError(f"unknown proposer {kind!r}: use search, llm or mixed")
