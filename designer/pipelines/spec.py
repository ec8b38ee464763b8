"""The pipeline spec: a frozen, hashed, human-readable YAML naming a pipeline's graph.

::

    name: default
    depth: 200                 # candidates each source is asked for (quotas take a prefix)
    window_share: 0.2          # ranker window: last share of each user's train history
    outer_reward:
      objective: ndcg@10
      constraints:
        - {metric: latency_ms_per_user, max: 5}
        - {metric: coverage@10, min: 0.3}
    router: {family: activity_router, params: {threshold: 20}}   # optional; one label per branch
    branches:                  # label i of the router -> branches[i]; one branch without router
      - sources:
          - {agent: recommender, version: 3, quota: 100}           # a pinned agent version
          - {family: itemknn, params: {neighbours: 100}, quota: 50}  # or a built-in family
        ranker: {family: fusion, params: {method: rrf}}
        reranker: {family: calibration, params: {strength: 0.1}}   # optional
        rerank_depth: 50

A component names either an agent and a pinned version, or a family and its params (the
family's template renders the code). ``PipelineSpec.from_yaml`` raises ``PipelineSpecError``
with one message listing every problem; ``to_yaml`` is canonical (the same spec, the same
text), so the text's hash identifies the pipeline.
"""
from __future__ import annotations

from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from designer.errors import DesignerError

MAX_SOURCES = 4    # per branch: the fusion ranker has a weight per source slot
MAX_BRANCHES = 4


class PipelineSpecError(DesignerError):
    """A pipeline spec is malformed or names what does not exist; the message says what to fix."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Component(_Frozen):
    """An agent at a pinned version, or a built-in family with its params."""

    agent: str | None = None
    version: int | None = Field(None, ge=1)
    family: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_kind(self) -> "Component":
        if (self.agent is None) == (self.family is None):
            raise ValueError("name either `agent` (with a pinned `version`) or `family` (with `params`)")
        if self.agent is not None and (self.version is None or self.params):
            raise ValueError(f"agent {self.agent!r} needs a pinned `version: N` and no `params` "
                             "(its version fixes its code and params)")
        return self

    @property
    def ref(self) -> str:
        return f"{self.agent}/v{self.version}" if self.agent else f"{self.family}"


class Source(Component):
    quota: int = Field(100, ge=0)


class Branch(_Frozen):
    sources: list[Source] = Field(min_length=1)
    ranker: Component
    reranker: Component | None = None
    rerank_depth: int = Field(50, ge=1, le=1000)

    @model_validator(mode="after")
    def _quotas(self) -> "Branch":
        if len(self.sources) > MAX_SOURCES:
            raise ValueError(f"at most {MAX_SOURCES} sources per branch, got {len(self.sources)}")
        if not any(s.quota > 0 for s in self.sources):
            raise ValueError("every source has quota 0: give at least one source a quota > 0")
        return self


class Constraint(_Frozen):
    metric: str
    max: float | None = None
    min: float | None = None

    @model_validator(mode="after")
    def _one_bound(self) -> "Constraint":
        if (self.max is None) == (self.min is None):
            raise ValueError(f"constraint on {self.metric!r} needs exactly one of `max` or `min`")
        return self

    def slack(self, value: float) -> float:
        """How far inside the bound ``value`` is (negative: violated by that much)."""
        return (self.max - value) if self.max is not None else (value - self.min)

    def describe(self) -> str:
        return f"{self.metric} <= {self.max:g}" if self.max is not None else f"{self.metric} >= {self.min:g}"


class OuterReward(_Frozen):
    objective: str = "ndcg@10"
    constraints: list[Constraint] = Field(default_factory=list)


class PipelineSpec(_Frozen):
    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
    depth: int = Field(200, ge=10, le=2000)
    window_share: float = Field(0.2, gt=0.0, lt=1.0)
    outer_reward: OuterReward = Field(default_factory=OuterReward)
    router: Component | None = None
    branches: list[Branch] = Field(min_length=1)

    @model_validator(mode="after")
    def _graph(self) -> "PipelineSpec":
        if len(self.branches) > MAX_BRANCHES:
            raise ValueError(f"at most {MAX_BRANCHES} branches, got {len(self.branches)}")
        if self.router is None and len(self.branches) > 1:
            raise ValueError(f"{len(self.branches)} branches need a `router` to choose among them")
        if self.router is not None and len(self.branches) < 2:
            raise ValueError("a `router` needs at least two branches (one per label it returns)")
        for b, branch in enumerate(self.branches):
            for s in branch.sources:
                if s.quota > self.depth:
                    raise ValueError(f"branch {b}: source {s.ref} has quota {s.quota} > depth {self.depth}")
                if s.agent == self.name:
                    raise ValueError(f"branch {b}: the pipeline {self.name!r} cannot be its own source (a cycle)")
        return self

    @classmethod
    def from_dict(cls, raw: Any, where: str = "pipeline spec") -> "PipelineSpec":
        if not isinstance(raw, dict):
            raise PipelineSpecError(f"{where} must be a YAML mapping with `name` and `branches`")
        try:
            return cls.model_validate(raw)
        except ValidationError as e:
            problems = "; ".join(f"{'.'.join(str(p) for p in err['loc']) or 'spec'}: "
                                 f"{err['msg'].removeprefix('Value error, ')}" for err in e.errors())
            raise PipelineSpecError(f"invalid {where}: {problems}") from None

    @classmethod
    def from_yaml(cls, text: str, where: str = "pipeline spec") -> "PipelineSpec":
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise PipelineSpecError(f"{where} is not valid YAML{at}: "
                                    f"{getattr(e, 'problem', None) or e}") from None
        return cls.from_dict(raw, where)

    def to_dict(self) -> dict[str, Any]:
        """Canonical dict: no None fields, no empty ``params`` of a pinned agent."""
        raw = self.model_dump(mode="json", exclude_none=True)

        def clean(node: Any) -> None:
            if isinstance(node, dict):
                if "agent" in node and node.get("params") == {}:
                    del node["params"]
                for value in node.values():
                    clean(value)
            elif isinstance(node, list):
                for value in node:
                    clean(value)
        clean(raw)
        return raw

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None, width=100)

    def graph(self) -> str:
        """One line: ``router(params) | b0: src@quota + src@quota -> ranker -> reranker | b1: ...``."""
        parts = []
        for b, branch in enumerate(self.branches):
            sources = " + ".join(f"{x.ref}@{x.quota}" for x in branch.sources)
            rerank = f" -> {branch.reranker.ref}" if branch.reranker else ""
            parts.append(f"{'b%d: ' % b if self.router else ''}{sources} -> {branch.ranker.ref}{rerank}")
        if self.router is None:
            return " | ".join(parts)
        params = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in self.router.params.items())
        return f"{self.router.ref}" + (f"({params})" if params else "") + " | " + " | ".join(parts)

    def pinned(self) -> list[dict[str, Any]]:
        """Every node as a KB component row: role, branch, agent + version or family + params, quota."""
        rows = []
        for branch, role, c in self._nodes():
            rows.append({"role": role, "branch": branch, "agent_name": c.agent, "agent_version": c.version,
                         "family": c.family, "params": dict(c.params), "quota": getattr(c, "quota", None)})
        return rows

    def _nodes(self) -> list[tuple[int | None, str, Component]]:
        out: list[tuple[int | None, str, Component]] = [(None, "router", self.router)] if self.router else []
        for b, branch in enumerate(self.branches):
            out += [(b, "recall", s) for s in branch.sources] + [(b, "ranker", branch.ranker)]
            if branch.reranker:
                out.append((b, "reranker", branch.reranker))
        return out

    def components(self) -> list[tuple[str, Component]]:
        """(role, component) of every node, router first, then per branch sources, ranker, re-ranker."""
        return [(role, c) for _, role, c in self._nodes()]
