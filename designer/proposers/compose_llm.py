"""``CompositionLLMProposer``: an LLM writes the next spec of a pipeline, as YAML.

The prompt (``templates/prompts/compose.j2``, overridable per workspace) shows the spec
format and the contract from their one source (``designer.pipelines.spec``'s docstring and
``designer.pipelines.defaults.CONTRACT``), the champion's YAML with its scores, the recall
pool, the families of every role with their parameter spaces (from their YAML files), and
one compact line per past candidate of this pipeline: its graph, val objective, the
components' inner rewards, per-segment metrics, constraint slack and outcome (INFEASIBLE
with the broken constraint). The answer's last ```yaml block is the proposal; a
malformed, invalid, unresolvable or already evaluated spec is sent back with the exact
error and the model re-asked (``max_reasks`` times, once by default), then
``ProposalError``. The name and the outer reward (objective, constraints) are the
champion's whatever the answer says: they are how the pipeline is judged, not a choice of
the proposer. Calls go through ``recorded_call``: budget, KB record, redaction.
"""
from __future__ import annotations

import json
import re
from typing import Any

import yaml

from designer.errors import DesignerError
from designer.families import FamilyError
from designer.llm.answers import fenced_block
from designer.llm.budget import LLMBudget
from designer.llm.calls import CallRecorder, recorded_call
from designer.llm.client import Completion, LLMClient
from designer.llm.context_view import sections
from designer.llm.errors import AnswerParseError
from designer.llm.history_view import ITEM_GROUPS, OUTCOMES, SEGMENTS, candidates, parent_run
from designer.llm.prompts import PromptBudget, PromptTemplates, fit_prompt, head, load_prompt_templates
from designer.llm.proposer import ITERATION_ERRORS
from designer.pipelines import spec as spec_module
from designer.pipelines.defaults import CONTRACT
from designer.pipelines.pool import PoolOption
from designer.pipelines.spec import MAX_BRANCHES, MAX_SOURCES, PipelineSpec, PipelineSpecError
from designer.proposal import Candidate, DesignContext, Proposal, ProposalError, ProposalKind
from knowledge_base.models import Experiment, ExperimentStatus, PromotionState

TEMPLATE = "compose.j2"
ROLES = ("recommender", "ranker", "reranker", "router")
YAML_TAGS, BARE_TAG = frozenset({"yaml", "yml"}), frozenset({""})
IDEA_CHARS = 160


class CompositionLLMProposer:
    """Asks an LLM for a new pipeline spec; implements ``designer.proposal.Proposer``.

    ``pool``: the recall options; ``families``: every family (all roles); ``subject`` (a
    ``PipelineSubject``, optional): resolves the answer's spec, so an unknown agent, version,
    family or parameter is re-asked rather than failing in the loop. Returns a PARAMS
    proposal of family ``pipeline`` whose ``code`` is the canonical YAML. Raises
    ``ProposalError`` when no usable spec came back or a call failed transiently; lets
    ``BudgetExhaustedError``, ``LLMUnavailableError`` and ``LLMAuthenticationError`` propagate.
    """

    name = "llm"

    def __init__(self, client: LLMClient, *, model: str, recorder: CallRecorder, budget: LLMBudget,
                 pool: list[PoolOption], families: dict[str, Any], subject: Any = None,
                 temperature: float = 0.7, max_reasks: int = 1, prompt_templates: PromptTemplates | None = None,
                 prompt_budget: PromptBudget | None = None, session_id: str = "", timeout: float = 300.0,
                 max_tokens: int | None = None):
        self.client, self.model, self.recorder, self.budget = client, model, recorder, budget
        self.pool, self.families, self.subject = pool, families, subject
        self.temperature, self.max_reasks, self.timeout, self.max_tokens = temperature, max_reasks, timeout, max_tokens
        self.templates = prompt_templates or load_prompt_templates(None)
        self.prompt_budget = prompt_budget or PromptBudget()
        self.session_id = session_id
        self.data_card = ""  # set by ``designer.llm.data_card.attach_data_card``

    def propose(self, context: DesignContext) -> Proposal:
        """See the class docstring."""
        base = PipelineSpec.from_yaml(context.parent_code, "champion pipeline")
        messages = self.initial_messages(context, base)
        problem = ""
        for attempt in range(self.max_reasks + 1):
            answer: dict[str, str] = {}

            def accept(completion: Completion) -> Proposal:
                answer["text"] = completion.text
                return self._accept(completion.text, context, base, attempt + 1)
            try:
                _, proposal = recorded_call(
                    self.client, messages, model=self.model, temperature=self.temperature, timeout=self.timeout,
                    recorder=self.recorder, budget=self.budget, purpose="propose" if attempt == 0 else "reask",
                    agent_name=context.agent.name, session_id=self.session_id, max_tokens=self.max_tokens,
                    accept=accept)
            except AnswerParseError as e:
                problem = str(e)
                messages = messages + [{"role": "assistant", "content": answer.get("text", "")},
                                       {"role": "user", "content": self._render("reask", problems=problem)}]
                continue
            except ITERATION_ERRORS as e:
                raise ProposalError(f"the LLM call failed: {e}") from e
            return proposal
        raise ProposalError(f"the LLM gave no usable pipeline spec in {self.max_reasks + 1} answers; "
                            f"last problem: {problem}")

    def initial_messages(self, context: DesignContext, base: PipelineSpec) -> list[dict]:
        """System + user messages (the user prompt cut to the prompt budget)."""
        objective = base.outer_reward.objective
        shown = sections(context, self.prompt_budget)  # failures, rejected proposals, insights
        shown.update(history=history_lines(context, objective), best=[])
        variables = {"part": "propose", "contract": CONTRACT, "spec_format": spec_format(),
                     "max_sources": MAX_SOURCES, "max_branches": MAX_BRANCHES,
                     "pipeline": {"name": base.name, "objective": objective, "description": context.agent.description,
                                  "constraints": [c.describe() for c in base.outer_reward.constraints],
                                  "label": context.parent.tag if context.parent else base.name,
                                  "reward": context.parent_reward},
                     "parent_code": context.parent_code, "champion": champion_lines(context, base),
                     "pool": [pool_entry(o) for o in self.pool],
                     "families": {role: family_entries(self.families, role) for role in ROLES},
                     "data_card": self.data_card}
        user = fit_prompt(self.templates, TEMPLATE, variables, shown, self.prompt_budget)
        return [{"role": "system", "content": self._render("system")}, {"role": "user", "content": user}]

    def _render(self, part: str, **variables: Any) -> str:
        return self.templates.render(TEMPLATE, part=part, **variables)

    def _accept(self, text: str, context: DesignContext, base: PipelineSpec, answers: int) -> Proposal:
        """The answer as a checked proposal, or ``AnswerParseError`` (sent back to the model)."""
        found = fenced_block(text, YAML_TAGS) or fenced_block(text, BARE_TAG)
        if found is None:
            raise AnswerParseError("No ```yaml block found in the answer. Answer with a short rationale, "
                                   "then the complete pipeline spec in one ```yaml block.")
        body, rationale = found
        try:
            spec = PipelineSpec.from_yaml(body, "the pipeline spec of your answer")
            kept = [key for key in ("name", "outer_reward") if getattr(spec, key) != getattr(base, key)]
            spec = PipelineSpec.from_dict({**spec.to_dict(), "name": base.name,
                                           "outer_reward": base.outer_reward.model_dump(mode="json", exclude_none=True)},
                                          "the pipeline spec of your answer")
        except PipelineSpecError as e:
            raise AnswerParseError(str(e)) from None
        meta: dict[str, Any] = {"answers": answers, **({"kept_from_champion": kept} if kept else {})}
        proposal = Proposal(proposer=self.name, kind=ProposalKind.PARAMS, family="pipeline", code=spec.to_yaml(),
                            params={}, model=self.model, rationale=rationale, meta=meta)
        self._check_new(self._candidate(proposal, spec), spec, context)
        return proposal

    def _candidate(self, proposal: Proposal, spec: PipelineSpec) -> Candidate:
        if self.subject is None:
            return Candidate(proposal=proposal, code=spec.to_yaml(), params=spec.to_dict())
        try:
            return self.subject.make_candidate(proposal)
        except (FamilyError, DesignerError) as e:  # unknown agent, version, family or parameter
            raise AnswerParseError(str(e)) from None

    @staticmethod
    def _check_new(candidate: Candidate, spec: PipelineSpec, context: DesignContext) -> None:
        """``AnswerParseError`` when the spec is the champion's, in flight or already evaluated:
        the loop would skip it as a duplicate and the iteration would be lost."""
        again = "Propose a pipeline that differs in its sources, quotas, ranker, re-ranker or router."
        if candidate.code == context.parent_code:
            raise AnswerParseError(f"This spec is the champion pipeline unchanged. {again}")
        if any(p.code == candidate.code or p.params == spec.to_dict() for p in context.pending):
            raise AnswerParseError(f"This spec is being evaluated right now. {again}")
        same = [e for e in context.history if e.code_hash == candidate.content_hash and e.stage in ("cheap", "full")]
        if same:
            raise AnswerParseError(f"This spec was already evaluated (experiment #{same[-1].id}, "
                                   f"{_score(same[-1], spec.outer_reward.objective)}). {again}")


# ---- what the prompt shows ------------------------------------------------------------------

def spec_format() -> str:
    """The spec format as ``designer.pipelines.spec`` documents it: its docstring up to the
    notes for developers (``PipelineSpec.from_yaml`` ...), without reST markup."""
    doc = (spec_module.__doc__ or "").split("``PipelineSpec.", 1)[0]
    return doc.replace("\n\n::\n", "\n").replace("``", "`").strip()


def pool_entry(option: PoolOption) -> dict[str, Any]:
    return {"label": option.label, "component": _flow(option.component), "note": option.note,
            "score": option.score}


def family_entries(families: dict[str, Any], role: str) -> list[dict[str, Any]]:
    """Each family of ``role``: name, description (one paragraph) and parameter space lines."""
    return [{"name": name, "description": " ".join(f.description.split()),
             "params": [_param(p, s) for p, s in f.params.items()]}
            for name, f in sorted(families.items()) if f.role == role]


def _param(name: str, spec: Any) -> str:
    if spec.type in ("float", "int"):
        kind = f"{spec.type} in [{spec.low:g}, {spec.high:g}]{' log' if spec.log else ''}"
    elif spec.type == "categorical":
        kind = "one of " + ", ".join(str(c) for c in spec.choices)
    else:
        kind = "bool"
    return f"{name}: {kind}, default {spec.default}" + (f" -- {spec.help}" if spec.help else "")


def champion_lines(context: DesignContext, base: PipelineSpec) -> list[str]:
    """The champion's own validation run: components, segments, constraint slack."""
    run = parent_run(context)
    if run is None:
        return []
    return [line for line in (_inner(run, base), _segments(run, base.outer_reward.objective), _slack(run, base)) if line]


def history_lines(context: DesignContext, objective: str) -> list[str]:
    """One line per past candidate of this pipeline (cheap and full merged), newest first."""
    rewards = {e.id: e.inner_reward for e in context.history if e.stage == "full"}
    return [candidate_line(cheap, full, objective, rewards) for cheap, full in candidates(context.history)]


def candidate_line(cheap: Experiment | None, full: Experiment | None, objective: str,
                   rewards: dict[int, float | None]) -> str:
    """``#id [proposer] graph -- score -- inner -- segments -- constraints -- idea -- outcome``."""
    e = full or cheap
    assert e is not None
    try:
        spec: PipelineSpec | None = PipelineSpec.from_dict(e.params, "past pipeline")
    except PipelineSpecError:
        spec = None
    graph = spec.graph() if spec else "(unreadable spec)"
    parts = [f"#{e.id} [{e.proposer}] {graph}"]
    if e.status is ExperimentStatus.COMPLETED:
        parts.append(_score(e, objective, rewards.get(e.proposal.get("incumbent_experiment") or -1)))
        if spec is not None and full is not None:
            parts += [x for x in (_inner(full, spec), _segments(full, objective), _slack(full, spec)) if x]
    rationale = " ".join(str(e.proposal.get("rationale", "")).split())
    if rationale and rationale != graph:
        parts.append("idea: " + head(re.split(r"(?<=[.!?])\s", rationale, maxsplit=1)[0], IDEA_CHARS))
    parts.append("outcome: " + _outcome(cheap, full))
    return " -- ".join(parts)


def _score(e: Experiment, objective: str, parent: float | None = None) -> str:
    if e.inner_reward is None:
        return f"{e.stage} run {e.status.value.lower()}"
    if e.stage == "cheap":
        return f"cheap-screen {objective} {e.inner_reward:.4f} (subset of users, not comparable)"
    delta = f" ({e.inner_reward - parent:+.4f} vs its parent)" if parent is not None else ""
    return f"val {objective} {e.inner_reward:.4f}{delta}"


def _outcome(cheap: Experiment | None, full: Experiment | None) -> str:
    e = full or cheap
    assert e is not None
    if e.status is not ExperimentStatus.COMPLETED:
        return f"{e.status.value.lower().replace('_', ' ')} in the {e.stage} stage"
    if full is None:
        return OUTCOMES.get(e.promotion, "stopped after the cheap stage")
    if e.promotion is PromotionState.INFEASIBLE:
        broken = (e.evidence or {}).get("infeasible", [])
        return "INFEASIBLE (never promoted): " + ("; ".join(b.get("reason", "") for b in broken) or "a constraint broke")
    return OUTCOMES.get(e.promotion, "not judged")


def component_names(spec: PipelineSpec) -> dict[str, str]:
    """Inner-reward label -> the component it names (``src<i>``: distinct sources in order)."""
    names: dict[str, str] = {}
    seen: list[str] = []
    for branch in spec.branches:
        for source in branch.sources:
            key = json.dumps([source.ref, source.params], sort_keys=True, default=str)
            if key not in seen:
                seen.append(key)
                names[f"src{len(seen) - 1}"] = source.ref
    for b, branch in enumerate(spec.branches):
        names[f"b{b}-ranker"] = branch.ranker.ref
        if branch.reranker:
            names[f"b{b}-reranker"] = branch.reranker.ref
    if spec.router:
        names["router"] = spec.router.ref
    return names


def _inner(e: Experiment, spec: PipelineSpec) -> str:
    names = component_names(spec)
    values = []
    for key, value in sorted(e.metrics.items()):
        if key.startswith("inner/"):
            label, _, metric = key.removeprefix("inner/").partition("/")
            values.append(f"{label}={names.get(label, '?')} {metric} {value:.4f}")
    return "inner: " + ", ".join(values) if values else ""


def _segments(e: Experiment, objective: str) -> str:
    k = objective.split("@")[-1] if "@" in objective else "10"
    values = []
    for seg in SEGMENTS + ITEM_GROUPS:
        metric = objective if seg in SEGMENTS else f"exposure@{k}"
        row = e.segments.get(seg, {})
        if metric in row:
            users = f" ({int(row['n_users'])} users)" if "n_users" in row and seg in SEGMENTS else ""
            values.append(f"{seg}{users} {metric} {row[metric]:.4f}")
    return "segments: " + ", ".join(values) if values else ""


def _slack(e: Experiment, spec: PipelineSpec) -> str:
    values = [f"{c.describe()} slack {c.slack(float(e.metrics[c.metric])):+.4g}" if c.metric in e.metrics
              else f"{c.describe()}: no such metric" for c in spec.outer_reward.constraints]
    return "constraints: " + ", ".join(values) if values else ""


def _flow(node: Any) -> str:
    """A small dict as one line of YAML flow style (how a spec writes a component)."""
    return yaml.safe_dump(node, default_flow_style=True, sort_keys=False, width=1000).strip()
