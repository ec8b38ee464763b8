"""One recorded LLM call: send, time, charge the budget and record, whatever happens."""
from __future__ import annotations

import time
from typing import Any, Callable, Protocol

from designer.llm.budget import LLMBudget
from designer.llm.client import Completion, LLMClient
from designer.llm.errors import LLMError
from designer.llm.redact import redact
from knowledge_base.models import LLMCallDraft


class CallRecorder(Protocol):
    """Where every LLM call goes (the loop wires it to the KB's LLM-call table)."""

    def record(self, draft: LLMCallDraft) -> None: ...


class NullRecorder:
    """Records nothing (for scripts and tests that do not care)."""

    def record(self, draft: LLMCallDraft) -> None:
        return None


def recorded_call(client: LLMClient, messages: list[dict], *, model: str, temperature: float,
                  timeout: float, recorder: CallRecorder, budget: LLMBudget, purpose: str,
                  agent_name: str, session_id: str, json_schema: dict | None = None,
                  max_tokens: int | None = None,
                  accept: Callable[[Completion], Any] | None = None) -> tuple[Completion, Any]:
    """``budget.check()``, call ``client.complete``, judge the answer, charge and record.

    ``accept(completion)`` (optional) turns the answer into a result or raises an
    ``LLMError`` (e.g. ``AnswerParseError``); its message is recorded as the call's error
    ("answer rejected: ...") and the error re-raised. Returns ``(completion, result)``.
    The recorded prompt is the messages flattened (role headers); prompt, response and
    error pass through ``redact``. Raises what the client raises (after recording it) and
    ``BudgetExhaustedError`` before any call when the budget is spent.
    """
    budget.check()
    start = time.monotonic()
    draft = dict(agent_name=agent_name, session_id=session_id, model=model, purpose=purpose,
                 prompt=redact(flatten(messages)) or "")
    try:
        completion = client.complete(messages, model=model, temperature=temperature,
                                     json_schema=json_schema, timeout=timeout,
                                     max_tokens=max_tokens)
    except LLMError as e:
        budget.charge(None)
        recorder.record(LLMCallDraft(**draft, latency_seconds=time.monotonic() - start,
                                     error=redact(f"{type(e).__name__}: {e}")))
        raise
    budget.charge(completion)
    result, error = None, None
    try:
        result = accept(completion) if accept else None
    except LLMError as e:
        error = e
    recorder.record(LLMCallDraft(
        **draft, response=redact(completion.text) or "", prompt_tokens=completion.prompt_tokens,
        completion_tokens=completion.completion_tokens, cost_usd=completion.cost_usd,
        latency_seconds=completion.latency_seconds,
        error=redact(f"answer rejected: {error}") if error else None))
    if error is not None:
        raise error
    return completion, result


def flatten(messages: list[dict]) -> str:
    """Messages as one text with ``### role`` headers (how prompts are stored)."""
    return "\n\n".join(f"### {m.get('role', '?')}\n{m.get('content', '')}" for m in messages)
