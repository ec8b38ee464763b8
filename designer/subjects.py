"""What the design loop evolves: a *subject*, an agent or a pipeline, behind one protocol.

The loop's step is the same for both (propose -> candidate -> cascade -> judge -> release);
a subject says how a proposal becomes a candidate, how a candidate becomes an
``EvaluationJob`` at a stage, which constraints its results must meet, and which file holds
its code in the agents repository. ``AgentSubject``: one module rendered from a family or
written by an LLM. ``PipelineSubject``: a YAML spec whose components are resolved into a
``PipelinePlan`` (see ``designer.pipelines``).
"""
from __future__ import annotations

from typing import Any, Protocol, TYPE_CHECKING

from designer.families import FamilyError
from designer.pipelines.resolve import resolve
from designer.pipelines.spec import PipelineSpec, PipelineSpecError
from designer.proposal import Candidate, Proposal, ProposalKind
from sandbox.evaluation import EvaluationJob
from sandbox.limits import Limits

if TYPE_CHECKING:
    from knowledge_base.store import Store

PIPELINE_FAMILY = "pipeline"


class Subject(Protocol):
    kind: str          # "agent" | "pipeline"
    code_file: str     # the file holding its code in the agents repository

    def make_candidate(self, proposal: Proposal) -> Candidate: ...

    def job(self, code: str, params: dict[str, Any], *, stage: str, k: int, seed: int, limits: Limits,
            inner_reward: str, user_fraction: float = 1.0, fidelity: float = 1.0) -> EvaluationJob: ...

    def violations(self, code: str, metrics: dict[str, float]) -> list[dict[str, Any]]: ...


class AgentSubject:
    """One agent module: a family rendered with params, or an LLM's module as is."""

    kind, code_file = "agent", "agent.py"

    def __init__(self, families: dict[str, Any]):
        self.families = families

    def make_candidate(self, proposal: Proposal) -> Candidate:
        if proposal.kind is ProposalKind.CODE:
            return Candidate(proposal=proposal, code=proposal.code or "", params=dict(proposal.params))
        family = self.families[proposal.family]
        params = family.validate(proposal.params)
        return Candidate(proposal=proposal, code=family.render(params), params=params)

    def job(self, code: str, params: dict[str, Any], *, stage: str, k: int, seed: int, limits: Limits,
            inner_reward: str, user_fraction: float = 1.0, fidelity: float = 1.0) -> EvaluationJob:
        return EvaluationJob(code=code, params=params, stage=stage, k=k, user_fraction=user_fraction,
                             fidelity=fidelity, seed=seed, limits=limits, inner_reward=inner_reward)

    def violations(self, code: str, metrics: dict[str, float]) -> list[dict[str, Any]]:
        return []


class PipelineSubject:
    """A pipeline: its code is the canonical YAML of its spec, its params the spec as a dict."""

    kind, code_file = "pipeline", "pipeline.yaml"

    def __init__(self, *, store: Store, repo: Any, families: dict[str, Any]):
        self.store, self.repo, self.families = store, repo, families

    def candidate_of(self, spec: PipelineSpec, proposal: Proposal) -> Candidate:
        return Candidate(proposal=proposal, code=spec.to_yaml(), params=spec.to_dict())

    def make_candidate(self, proposal: Proposal) -> Candidate:
        """A proposal's spec (``params``, or YAML in ``code``), checked by resolving it."""
        try:
            spec = (PipelineSpec.from_yaml(proposal.code, "proposed pipeline") if proposal.code
                    else PipelineSpec.from_dict(proposal.params, "proposed pipeline"))
        except PipelineSpecError as e:
            raise FamilyError(str(e)) from None
        resolve(spec, store=self.store, repo=self.repo, families=self.families)  # unknown agents fail here
        return self.candidate_of(spec, proposal.model_copy(update={"family": PIPELINE_FAMILY, "code": None}))

    def spec(self, code: str) -> PipelineSpec:
        return PipelineSpec.from_yaml(code, "pipeline version")

    def job(self, code: str, params: dict[str, Any], *, stage: str, k: int, seed: int, limits: Limits,
            inner_reward: str, user_fraction: float = 1.0, fidelity: float = 1.0) -> EvaluationJob:
        spec = self.spec(code)
        plan = resolve(spec, store=self.store, repo=self.repo, families=self.families,
                       default_seconds=limits.wall_seconds)
        return EvaluationJob(code=code, params={}, stage=stage, k=k, user_fraction=user_fraction,
                             fidelity=1.0, seed=seed, limits=limits, inner_reward=spec.outer_reward.objective,
                             pipeline=plan)

    def violations(self, code: str, metrics: dict[str, float]) -> list[dict[str, Any]]:
        """The outer reward's constraints that ``metrics`` break, with the value and by how much."""
        out = []
        for constraint in self.spec(code).outer_reward.constraints:
            value = metrics.get(constraint.metric)
            if value is None:
                out.append({"constraint": constraint.describe(), "value": None,
                            "by": None, "reason": f"the harness reports no metric {constraint.metric!r}"})
                continue
            slack = constraint.slack(float(value))
            if slack < 0:
                out.append({"constraint": constraint.describe(), "value": float(value), "by": -slack,
                            "reason": f"{constraint.metric} = {value:.4g} breaks {constraint.describe()} "
                                      f"by {-slack:.4g}"})
        return out

    def slack(self, code: str, metrics: dict[str, float]) -> dict[str, float | None]:
        """Constraint -> slack (positive: inside the bound)."""
        return {c.describe(): (c.slack(float(metrics[c.metric])) if c.metric in metrics else None)
                for c in self.spec(code).outer_reward.constraints}
