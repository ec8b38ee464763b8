"""Insights: the LLM summarises what worked and what failed for an agent."""
from __future__ import annotations

from designer.llm.budget import LLMBudget
from designer.llm.calls import CallRecorder, recorded_call
from designer.llm.client import LLMClient
from designer.llm.context_view import insight_bullets
from designer.llm.history_view import history_lines
from designer.llm.errors import LLMRequestError
from designer.llm.prompts import PromptBudget, PromptTemplates, fit_prompt, head, load_prompt_templates
from designer.proposal import DesignContext

INSIGHT_CHARS = 3000
SYSTEM = ("You are a senior machine-learning engineer keeping the lab notebook of a "
          "recommender-model design project. Be brief, concrete and factual.")


def summarise(client: LLMClient, model: str, context: DesignContext, recorder: CallRecorder,
              budget: LLMBudget, *, templates: PromptTemplates | None = None,
              prompt_budget: PromptBudget | None = None, session_id: str = "",
              temperature: float = 0.2, timeout: float = 300.0) -> str:
    """Ask the model what worked and what failed for ``context.agent``; return the text.

    Reads ``context.history`` (newest kept first when cut), ``failures`` and earlier
    ``insights``; validation numbers only. The call is recorded with purpose "insight".
    Returns the stripped answer bounded to ``INSIGHT_CHARS``. Raises
    ``BudgetExhaustedError`` before the call when spent, ``LLMRequestError`` for an empty
    answer, and the client's ``LLMError`` subclasses.
    """
    templates = templates or load_prompt_templates(None)
    prompt_budget = prompt_budget or PromptBudget()
    # newest first, so the budget cuts the oldest; the template prints them oldest first
    history = history_lines(context)
    failures = [{"kind": f.kind.value, "message": head(f.message, prompt_budget.message_chars)}
                for f in context.failures]
    roomy = prompt_budget.model_copy(update={"max_items": max(prompt_budget.max_items, 40),
                                             "history_items": max(prompt_budget.history_items, 80)})
    user = fit_prompt(templates, "insight.j2",
                      {"agent": context.agent.model_dump(),
                       "insights": insight_bullets(context.insights, prompt_budget, own=context.agent.name)},
                      {"history": history, "failures": failures}, roomy,
                      order=("history", "failures"))
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]
    completion, _ = recorded_call(client, messages, model=model, temperature=temperature,
                                  timeout=timeout, recorder=recorder, budget=budget,
                                  purpose="insight", agent_name=context.agent.name,
                                  session_id=session_id)
    text = completion.text.strip()
    if not text:
        raise LLMRequestError(f"the model {model} returned an empty insight")
    return head(text, INSIGHT_CHARS)

