"""A pipeline spec resolved into a ``PipelinePlan``: every component's module text and params.

A component naming an agent takes its pinned version's code and params from the agents
repository; a component naming a family renders the family's template. Roles must match
(a source is an agent or family of role ``recommender``, a ranker of role ``ranker`` ...).
Identical sources in several branches are one source (fitted and cached once).
"""
from __future__ import annotations

from typing import Any, TYPE_CHECKING

from designer.families import FamilyError
from designer.pipelines.spec import Component, PipelineSpec, PipelineSpecError
from knowledge_base.errors import NotFoundError
from sandbox.composition import BranchPlan, ComponentCode, PipelinePlan

if TYPE_CHECKING:
    from knowledge_base.store import Store

FAMILY_ROLE = {"recall": "recommender", "ranker": "ranker", "reranker": "reranker", "router": "router"}


def resolve(spec: PipelineSpec, *, store: Store, repo: Any, families: dict[str, Any],
            default_seconds: float = 600.0) -> PipelinePlan:
    """The plan of ``spec``; ``PipelineSpecError`` naming every unknown agent, version or
    family, a role mismatch or invalid params."""
    problems: list[str] = []

    def code_of(component: Component, role: str, label: str) -> ComponentCode | None:
        want = FAMILY_ROLE[role]
        if component.agent is not None:
            try:
                agent = store.get_agent(component.agent)
            except NotFoundError:
                known = ", ".join(a.name for a in store.list_agents() if a.role == want) or "none"
                problems.append(f"{label}: unknown agent {component.agent!r} (agents of role {want}: {known})")
                return None
            if agent.role != want:
                problems.append(f"{label}: agent {agent.name!r} has role {agent.role}, a {role} needs role {want}")
                return None
            try:
                version = store.get_version(agent.name, component.version)
            except NotFoundError:
                problems.append(f"{label}: agent {agent.name!r} has no version v{component.version} "
                                f"(see `agenticrs agents versions {agent.name}`)")
                return None
            code = repo.read_version(agent.name, version.number).code
            family = families.get(version.family)
            seconds = family.time_limit_seconds if family is not None else default_seconds
            return ComponentCode(label=label, role=role, ref=component.ref, code=code, params=dict(version.params),
                                 time_limit_seconds=seconds)
        family = families.get(component.family or "")
        if family is None or family.role != want:
            known = ", ".join(n for n, f in families.items() if f.role == want)
            problems.append(f"{label}: unknown {role} family {component.family!r} (families of role {want}: {known})")
            return None
        try:
            params = family.validate(component.params)
            code = family.render(params)
        except FamilyError as e:
            problems.append(f"{label}: {e}")
            return None
        return ComponentCode(label=label, role=role, ref=component.ref, code=code, params=params,
                             time_limit_seconds=family.time_limit_seconds)

    sources: dict[str, ComponentCode] = {}
    components: list[ComponentCode] = []
    branches: list[BranchPlan] = []
    router = code_of(spec.router, "router", "router") if spec.router else None
    if router is not None:
        components.append(router)
    for b, branch in enumerate(spec.branches):
        labels = []
        for j, source in enumerate(branch.sources):
            resolved = code_of(source, "recall", f"branch {b} source {j}")
            if resolved is None:
                labels.append("")
                continue
            same = next((s for s in sources.values() if s.key == resolved.key), None)
            if same is None:
                same = resolved.model_copy(update={"label": f"src{len(sources)}"})
                sources[same.label] = same
            labels.append(same.label)
        ranker = code_of(branch.ranker, "ranker", f"b{b}-ranker")
        reranker = code_of(branch.reranker, "reranker", f"b{b}-reranker") if branch.reranker else None
        components += [c for c in (ranker, reranker) if c is not None]
        branches.append(BranchPlan(sources=labels, quotas=[s.quota for s in branch.sources],
                                   ranker=f"b{b}-ranker", reranker=f"b{b}-reranker" if branch.reranker else None,
                                   rerank_depth=branch.rerank_depth))
    if problems:
        raise PipelineSpecError(f"pipeline {spec.name!r}: " + "; ".join(problems))
    return PipelinePlan(name=spec.name, depth=spec.depth, window_share=spec.window_share,
                        sources=list(sources.values()), components=components,
                        router="router" if router else None, branches=branches)
