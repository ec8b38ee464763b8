"""``LLMProposer``: structural innovation by an LLM, behind the ``Proposer`` protocol."""
from __future__ import annotations

import logging
from typing import Callable, Literal

from designer.llm.answers import ParsedAnswer, json_answer_schema, parse_answer, parse_modules
from designer.llm.budget import LLMBudget
from designer.llm.calls import CallRecorder, recorded_call
from designer.llm.client import Completion, LLMClient
from designer.llm.context_view import AskPlan, AskPolicy, CodeLookup, card, plan_ask, sections
from designer.llm.errors import (AnswerParseError, LLMRequestError, LLMServerError, LLMTimeoutError,
                                 NearDuplicateError)
from designer.llm.novelty import closest, evaluated_modules, normal_form
from designer.families import declared_space
from designer.llm.sdk_reference import sdk_reference as read_sdk_reference
from designer.llm.prompts import PromptBudget, PromptTemplates, fit_prompt, load_prompt_templates
from designer.proposal import DesignContext, Proposal, ProposalError, ProposalKind
from designer.static_check import DEFAULT_ALLOWED_IMPORTS, STDLIB_ALLOWED, check_module

logger = logging.getLogger(__name__)

ITERATION_ERRORS = (LLMTimeoutError, LLMServerError, LLMRequestError)
"""Client errors that fail one proposal; others (unavailable, auth, budget) propagate."""


class LLMProposer:
    """Asks an LLM for a new agent module; implements ``designer.proposal.Proposer``.

    One ``propose`` call: choose the ask (``ask_policy(context)`` -> improve | debug |
    new_architecture | crossover), render the prompt within ``prompt_budget``, call the
    model, parse the answer and run ``check_module``; a parse error or static-check problem
    is sent back and the model re-asked, at most ``max_reasks`` times. Every call is
    recorded through ``recorder`` (the rejected ones with their reason as error).

    Returns a CODE proposal (``params={}``), or a PARAMS proposal when the model answered
    JSON params for a built-in family parent. Raises ``ProposalError`` when no usable
    module came back or a call failed transiently (timeout, 429/5xx after retries, 4xx);
    lets ``BudgetExhaustedError`` (clean stop), ``LLMUnavailableError`` and
    ``LLMAuthenticationError`` (stop the run with their message) propagate.
    """

    name = "llm"

    def __init__(self, client: LLMClient, *, model: str, recorder: CallRecorder,
                 budget: LLMBudget, temperature: float = 0.7, max_reasks: int = 2,
                 prompt_templates: PromptTemplates | None = None,
                 ask_policy: Callable[[DesignContext], str] | None = None,
                 prompt_budget: PromptBudget | None = None, session_id: str = "",
                 timeout: float = 300.0, answer_format: Literal["markdown", "json"] = "markdown",
                 code_for: CodeLookup | None = None, max_tokens: int | None = None,
                 allowed_imports: frozenset[str] = DEFAULT_ALLOWED_IMPORTS,
                 max_module_bytes: int = 200_000, data_card: str = "",
                 sdk_reference: str | None = None, novelty_threshold: float | None = 0.99,
                 candidates_per_call: int = 1):
        self.client, self.model, self.recorder, self.budget = client, model, recorder, budget
        self.temperature, self.max_reasks = temperature, max_reasks
        self.templates = prompt_templates or load_prompt_templates(None)
        self.ask_policy = ask_policy or AskPolicy()
        self.prompt_budget = prompt_budget or PromptBudget()
        self.session_id, self.timeout, self.max_tokens = session_id, timeout, max_tokens
        self.answer_format, self.code_for = answer_format, code_for
        self.allowed_imports, self.max_module_bytes = allowed_imports, max_module_bytes
        self.data_card = data_card  # rendered text (``designer.llm.data_card``); set per split
        self.novelty_threshold = novelty_threshold
        self._forms: dict[str, str] = {}   # code hash -> normal form of evaluated modules
        self.candidates_per_call = max(1, candidates_per_call)
        self._queue: list[tuple[str, Proposal]] = []   # (parent code, proposal) left by the last call
        self.sdk_reference = read_sdk_reference() if sdk_reference is None else sdk_reference

    def propose(self, context: DesignContext) -> Proposal:
        """See the class docstring."""
        if (queued := self._pop_queued(context)) is not None:
            return queued
        plan = plan_ask(self.ask_policy(context), context, self.prompt_budget, self.code_for)
        messages = self.initial_messages(context, plan)
        problem, duplicates = "", 0
        for attempt in range(self.max_reasks + 1):
            answer: dict[str, str] = {}
            try:
                completion, accepted = self._call(messages, context, plan, answer,
                                                  "propose" if attempt == 0 else "reask")
            except NearDuplicateError as e:
                duplicates += 1
                if duplicates > 1:  # asked once to differ: do not spend more calls on it
                    raise ProposalError(f"not run: {e}") from e
                problem = str(e)
                messages = messages + [{"role": "assistant", "content": answer.get("text", "")},
                                       {"role": "user", "content": self._reask(problem)}]
                continue
            except AnswerParseError as e:
                problem = str(e)
                messages = messages + [{"role": "assistant", "content": answer.get("text", "")},
                                       {"role": "user", "content": self._reask(problem)}]
                continue
            except ITERATION_ERRORS as e:
                raise ProposalError(f"the LLM call failed: {e}") from e
            return self._deliver(accepted, completion, context, plan, attempt + 1, duplicates)
        raise ProposalError(f"the LLM gave no usable module in {self.max_reasks + 1} answers; "
                            f"last problem: {problem}")

    def _deliver(self, accepted: list[ParsedAnswer], completion: Completion, context: DesignContext,
                 plan: AskPlan, answers: int, duplicates: int) -> Proposal:
        """The first accepted module as a proposal; the others wait in the queue for the
        next calls on the same parent. Each carries its share of the call's cost."""
        extra = {"near_duplicates": duplicates} if duplicates else {}
        if len(accepted) > 1 or self.candidates_per_call > 1:
            extra.update(candidates_in_call=len(accepted),
                         cost_usd_share=round(completion.cost_usd / len(accepted), 8))
        out = []
        for i, parsed in enumerate(accepted):
            p = self._proposal(parsed, context, plan, answers)
            index = {"candidate_index": i} if len(accepted) > 1 else {}
            out.append(p.model_copy(update={"meta": {**p.meta, **extra, **index}}))
        self._queue = [(context.parent_code, p) for p in out[1:]]
        return out[0]

    def _pop_queued(self, context: DesignContext) -> Proposal | None:
        """A module left by the last answer, if it was written for this parent and is still
        not a near-duplicate of what has been evaluated since; stale ones are dropped."""
        while self._queue:
            parent_code, proposal = self._queue.pop(0)
            if parent_code != context.parent_code:
                continue
            try:
                self._check_novelty(proposal.code or "", context)
            except NearDuplicateError:
                continue
            return proposal
        return None

    def initial_messages(self, context: DesignContext, plan: AskPlan) -> list[dict]:
        """System + user messages for ``plan`` (the user prompt is cut to the budget)."""
        variables = {**card(context, self._imports_text(), self.data_card, self.sdk_reference),
                     "ask": plan.model_dump(), "n_candidates": self.candidates_per_call,
                     "answer_format": self.answer_format}
        user = fit_prompt(self.templates, "propose.j2", variables,
                          sections(context, self.prompt_budget), self.prompt_budget)
        system = self.templates.render("system.j2", allowed_imports=self._imports_text(),
                                       answer_format=self.answer_format)
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]

    def _call(self, messages, context, plan, answer, purpose) -> tuple[Completion, list[ParsedAnswer]]:
        def accept(completion: Completion) -> list[ParsedAnswer]:
            answer["text"] = completion.text
            return self._accept(completion.text, context, plan)

        schema = json_answer_schema(allow_params=True) if self.answer_format == "json" else None
        return recorded_call(self.client, messages, model=self.model, temperature=self.temperature,
                             timeout=self.timeout, recorder=self.recorder, budget=self.budget,
                             purpose=purpose, agent_name=context.agent.name,
                             session_id=self.session_id, json_schema=schema,
                             max_tokens=self.max_tokens, accept=accept)

    def _accept(self, text: str, context: DesignContext, plan: AskPlan) -> list[ParsedAnswer]:
        """Parse, statically check and novelty-check every module of the answer; return the
        usable ones (at least one) or raise the first one's ``AnswerParseError`` (feedback
        for the model)."""
        several = self.candidates_per_call > 1 and self.answer_format == "markdown" \
            and plan.name != "debug" and "<<<<<<< SEARCH" not in text
        options = parse_modules(text) if several else [parse_answer(text, base_code=plan.base_code)]
        good: list[ParsedAnswer] = []
        first: AnswerParseError | None = None
        for parsed in options[:self.candidates_per_call]:
            try:
                self._check(parsed, context, plan, good)
            except AnswerParseError as e:
                first = first or e
                continue
            good.append(parsed)
        if not good:
            raise first or AnswerParseError("No usable module in the answer.")
        return good

    def _check(self, parsed: ParsedAnswer, context: DesignContext, plan: AskPlan,
               siblings: list[ParsedAnswer]) -> None:
        code = parsed.code if parsed.code is not None else plan.base_code
        problems = check_module(code, role=context.agent.role, max_bytes=self.max_module_bytes,
                                allowed_imports=self.allowed_imports)
        if problems:
            raise AnswerParseError("The module failed the static checks:\n- " + "\n- ".join(problems))
        if parsed.code is not None and plan.name != "debug":
            self._check_novelty(parsed.code, context, siblings)

    def _check_novelty(self, code: str, context: DesignContext,
                       siblings: list[ParsedAnswer] = ()) -> None:
        """Raise ``NearDuplicateError`` when ``code`` is a near-duplicate of the parent, of
        a module that completed an evaluation (a failed one may be fixed by a small change)
        or of an accepted ``siblings`` module of the same answer."""
        if self.novelty_threshold is None:
            return
        others = evaluated_modules(context, self.code_for, self._forms)
        others += [(f"module {i + 1} of this answer", normal_form(p.code or "")) for i, p in enumerate(siblings)]
        match = closest(code, others)
        if match is not None and match.similarity >= self.novelty_threshold:
            raise NearDuplicateError(
                f"The module is too similar to {match.label} ({match.similarity:.0%} of its normalised "
                "code is the same, after renaming and reordering): it would score the same and was not "
                "run. Make a substantive change to the model, features, training or scoring.")

    def _proposal(self, parsed: ParsedAnswer, context: DesignContext, plan: AskPlan,
                  answers: int) -> Proposal:
        meta = {"answer_form": parsed.form, "answers": answers}
        common = dict(proposer=self.name, family=context.parent_family, model=self.model,
                      ask=plan.name, rationale=parsed.rationale, meta=meta)
        if parsed.code is None and context.parent_family in context.families:
            return Proposal(kind=ProposalKind.PARAMS,
                            params={**context.parent_params, **parsed.params}, **common)
        if parsed.code is None:  # params for a code parent: same code, new constructor args
            return Proposal(kind=ProposalKind.CODE, code=plan.base_code,
                            params={**context.parent_params, **parsed.params}, **common)
        return Proposal(kind=ProposalKind.CODE, code=parsed.code,
                        params=kept_params(parsed.code, context.parent_params), **common)

    def _reask(self, problem: str) -> str:
        return self.templates.render("reask.j2", problems=problem)

    def _imports_text(self) -> str:
        third = sorted(m for m in self.allowed_imports if m not in STDLIB_ALLOWED)
        std = sorted(m for m in self.allowed_imports if m in STDLIB_ALLOWED and m != "__future__")
        return ", ".join(third) + "; standard library: " + ", ".join(std)


def kept_params(code: str, parent_params: dict) -> dict:
    """The parent's params (e.g. tuned by search) that ``code``'s ``SPACE`` declares and admits:
    a new module of the same family of ideas starts where the search left its constants."""
    space, kept = declared_space(code), {}
    for name, value in parent_params.items():
        if name in space:
            try:
                kept[name] = space[name].check(value)
            except ValueError:
                continue
    return kept
