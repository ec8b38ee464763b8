"""What proposes in the phases of ``evolve --proposer llm|mixed``: one LLM for the whole run.

Individual phases get the agent LLM proposer (``mixed``: with search, by the bandit),
compositional phases the composition LLM proposer (``mixed``: with the composition
search). One client and **one budget** (``--budget-usd``, ``--max-calls``) serve every
phase: when it is spent the run stops cleanly at a step boundary, whichever phase it is in.
Every prompt shows the data card (train-only statistics). ``--proposer search`` needs none
of this: ``designer.evolve.SearchPhaseProposers``.
"""
from __future__ import annotations

import uuid
from typing import Any

from designer.cli.services import Services
from designer.llm.data_card import attach_data_card
from designer.pipelines.pool import PoolOption
from designer.proposal import ChosenProposer
from designer.proposers.compose_search import CompositionSearchProposer
from designer.proposers.mixed import MixedProposer
from designer.subjects import PipelineSubject


class LLMPhaseProposers:
    """``designer.evolve.PhaseProposers`` for ``--proposer llm`` or ``mixed``."""

    def __init__(self, kind: str, s: Services, *, split: Any, k: int, model: str, api_base: str | None,
                 temperature: float, budget_usd: float | None, max_calls: int | None, timeout: float,
                 prices: tuple[float, float] | None = None):
        from designer.cli.llm_wiring import make_llm_client
        from designer.llm import LLMBudget

        self.kind, self.s, self.split, self.k = kind, s, split, k
        self.model, self.api_base, self.temperature, self.timeout = model, api_base, temperature, timeout
        self.client = make_llm_client(model, api_base, prices)
        self.budget = LLMBudget(max_usd=budget_usd, max_calls=max_calls)

    def agent(self, agent: str, seed: int) -> ChosenProposer:
        from designer.cli.llm_wiring import make_llm_proposer

        chosen = make_llm_proposer(self.kind, store=self.s.store, agent=agent, workspace=self.s.workspace,
                                   sampler="tpe", seed=seed, model=self.model, api_base=self.api_base,
                                   temperature=self.temperature, budget_usd=None, max_calls=None,
                                   session_id=uuid.uuid4().hex[:12], timeout=self.timeout,
                                   client=self.client, budget=self.budget)
        attach_data_card(chosen.proposer, self.split, self.k)
        return chosen

    def spent(self) -> str | None:
        from designer.llm import BudgetExhaustedError

        try:
            self.budget.check()
        except BudgetExhaustedError as e:
            return str(e)
        return None

    def pipeline(self, pool: list[PoolOption], seed: int) -> ChosenProposer:
        from designer.cli.compose import compose_llm_proposer

        session_id = uuid.uuid4().hex[:12]
        subject = PipelineSubject(store=self.s.store, repo=self.s.releaser.repo, families=self.s.families)
        llm = compose_llm_proposer(self.s, pool, subject, session_id=session_id, model=self.model,
                                   api_base=self.api_base, temperature=self.temperature, budget_usd=None,
                                   max_calls=None, timeout=self.timeout, client=self.client, budget=self.budget)
        proposer = llm if self.kind == "llm" else MixedProposer(llm, CompositionSearchProposer(pool, seed=seed))
        attach_data_card(proposer, self.split, self.k)
        return ChosenProposer(proposer, session_id)
