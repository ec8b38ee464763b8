"""Wire the LLM proposer (and the ``mixed`` bandit) to the knowledge base and the CLI flags."""
from __future__ import annotations

from functools import partial
from typing import Any, TYPE_CHECKING

from designer.proposal import ChosenProposer
from designer.llm.backends import choose_backend
from designer.llm import LLMBudget, LLMProposer, load_prompt_templates, make_client, summarise
from designer.proposers.mixed import MixedProposer
from designer.proposers.search import SearchProposer
from knowledge_base.models import LLMCallDraft

if TYPE_CHECKING:
    from knowledge_base.store import Store


class StoreRecorder:
    """Records every LLM call in the knowledge base."""

    def __init__(self, store: Store):
        self.store = store

    def record(self, draft: LLMCallDraft) -> None:
        self.store.record_llm_call(draft)


def make_llm_proposer(kind: str, *, store: Store, agent: str, workspace: Any, sampler: str, seed: int,
                      model: str, api_base: str | None, temperature: float, budget_usd: float | None,
                      max_calls: int | None, session_id: str,
                      prices: tuple[float, float] | None = None,
                      answer_format: str = "markdown", timeout: float = 300.0,
                      max_tokens: int = 4096, candidates_per_call: int = 1,
                      client: Any = None, budget: LLMBudget | None = None) -> ChosenProposer:
    """``client`` and ``budget``: shared ones (``evolve``: one budget over all phases);
    by default a new client for ``model`` and a budget of ``budget_usd`` / ``max_calls``."""
    client = client or make_llm_client(model, api_base, prices)
    recorder = StoreRecorder(store)
    budget = budget or LLMBudget(max_usd=budget_usd, max_calls=max_calls)
    templates = load_prompt_templates(workspace.root)   # it looks in <root>/prompts/
    llm = LLMProposer(client, model=model, recorder=recorder, budget=budget, temperature=temperature,
                      prompt_templates=templates, session_id=session_id, answer_format=answer_format,
                      timeout=timeout, max_tokens=max_tokens, candidates_per_call=candidates_per_call,
                      code_for=lambda exp: store.get_code(exp.code_hash))
    insights = partial(summarise, client, model, recorder=recorder, budget=budget, templates=templates,
                       session_id=session_id, timeout=timeout)
    proposer = llm if kind == "llm" else MixedProposer(llm, SearchProposer(
        sampler=sampler, seed=seed, code_for=lambda exp: store.get_code(exp.code_hash)))
    return ChosenProposer(proposer, session_id, insights=lambda context: insights(context))


def make_llm_client(model: str, api_base: str | None, prices: tuple[float, float] | None = None) -> Any:
    """The client for ``model`` (``--prices`` apply to OpenAI-compatible servers only)."""
    kwargs = {"prices": prices} if prices and choose_backend(model, api_base) == "openai" else {}
    return make_client(model, api_base, **kwargs)
