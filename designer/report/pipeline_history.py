"""Everything the report shows about one pipeline: its agent-like history (experiments,
versions with their YAML specs and diffs), the parsed spec of each version, its INFEASIBLE
candidates with their reasons, and the phases of its ``evolve`` runs.

Plain frozen data read once through the store's public API, like ``AgentHistory``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, TYPE_CHECKING

from designer.cli.pipelines import describe
from designer.evolve import phase_json
from designer.pipelines.spec import PipelineSpec, PipelineSpecError
from designer.report.history import AgentHistory, VersionView, load_history
from knowledge_base.models import Experiment, PromotionState

if TYPE_CHECKING:
    from knowledge_base.store import Store


@dataclass(frozen=True)
class InfeasibleRun:
    """A candidate that broke a constraint of the outer reward (never tested, never promoted)."""

    experiment: Experiment
    graph: str                       # its spec as one line, or "" when it does not parse
    reasons: list[str]               # one per broken constraint, as recorded


@dataclass(frozen=True)
class PipelineHistory:
    """One pipeline's history; ``agent`` and the lists of ``history`` are the pipeline's own."""

    history: AgentHistory
    specs: dict[int, PipelineSpec]   # version id -> spec (versions whose YAML parses)
    infeasible: list[InfeasibleRun]
    phases: list[dict[str, Any]]     # ``designer.evolve.phase_json`` rows, oldest first

    @property
    def agent(self) -> Any:
        return self.history.agent

    @property
    def champion_spec(self) -> PipelineSpec | None:
        champion = self.history.champion
        return self.specs.get(champion.version.id) if champion else None

    def spec_of(self, view: VersionView | None) -> PipelineSpec | None:
        return self.specs.get(view.version.id) if view is not None else None


def load_pipeline_history(store: Store, repo: Any, name: str) -> PipelineHistory:
    """Read pipeline ``name``'s history. Raises ``NotFoundError`` for an unknown name."""
    history = load_history(store, repo, name)
    specs = {v.version.id: spec for v in history.versions if (spec := parse(v.code, v.version.tag))}
    infeasible = [_infeasible(store, e) for e in history.experiments if e.promotion is PromotionState.INFEASIBLE]
    return PipelineHistory(history, specs, infeasible, [phase_json(p) for p in store.list_phases(name)])


def parse(code: str | None, where: str) -> PipelineSpec | None:
    """The spec in ``code``, or None (a missing tag, or YAML an older schema wrote)."""
    if not code:
        return None
    try:
        return PipelineSpec.from_yaml(code, where)
    except PipelineSpecError:
        return None


def _infeasible(store: Store, e: Experiment) -> InfeasibleRun:
    spec = parse(store.get_code(e.code_hash), f"experiment {e.id}")
    broken = (e.evidence or {}).get("infeasible", [])
    return InfeasibleRun(e, describe(spec) if spec else "", [b.get("reason", str(b)) for b in broken])


def source_labels(spec: PipelineSpec) -> list[list[str]]:
    """Per branch, the inner-reward label of each of its sources: ``src0``, ``src1``, ... in
    order of first appearance over the branches, one label per distinct component
    (``designer.pipelines.resolve`` numbers them the same way, by code and params)."""
    seen: dict[str, str] = {}
    return [[seen.setdefault(json.dumps([s.ref, s.params], sort_keys=True, default=str), f"src{len(seen)}")
             for s in branch.sources] for branch in spec.branches]


def component_names(spec: PipelineSpec) -> dict[str, str]:
    """Inner-reward label -> the component it scores: ``src0`` -> ``recommender/v3``,
    ``b0-ranker`` -> ``fusion``, ``router`` -> ``activity_router``."""
    names = {"router": spec.router.ref} if spec.router else {}
    for b, (branch, labels) in enumerate(zip(spec.branches, source_labels(spec))):
        names |= {label: s.ref for label, s in zip(labels, branch.sources)}
        names[f"b{b}-ranker"] = branch.ranker.ref
        if branch.reranker is not None:
            names[f"b{b}-reranker"] = branch.reranker.ref
    return names


def inner_rewards(e: Experiment | None) -> dict[str, float]:
    """``{"src0/recall@100": 0.93, "b0-ranker/ndcg@10": 0.29}`` from an experiment's metrics."""
    return {k.removeprefix("inner/"): v for k, v in (e.metrics if e else {}).items() if k.startswith("inner/")}
