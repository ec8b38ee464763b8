"""LLM structural innovation: clients, prompts, answer parsing, the LLM proposer, insights.

Public API (what the loop and the CLI use)::

    make_client(model, api_base, *, backend="auto", retry=RetryPolicy()) -> LLMClient
    LLMBudget(max_usd, max_calls)
    LLMProposer(client, model=..., recorder=..., budget=..., session_id=..., ...)
    summarise(client, model, context, recorder, budget, *, session_id=...) -> str
    load_prompt_templates(workspace_dir) -> PromptTemplates
    attach_data_card(proposer, split, k) -> str    # the data card every prompt shows

``make_client("relay/DIR")`` is the file relay: prompts written to DIR, answers read from it.

litellm is imported lazily (only by ``LiteLLMClient`` on its first call).
"""
from designer.llm.budget import LLMBudget
from designer.llm.calls import CallRecorder, NullRecorder
from designer.llm.backends import choose_backend, make_client
from designer.llm.client import Completion, LLMClient, RetryPolicy
from designer.llm.context_view import AskPolicy
from designer.llm.data_card import attach_data_card
from designer.llm.errors import (AnswerParseError, BudgetExhaustedError, LLMAuthenticationError,
                                 LLMError, LLMRequestError, LLMServerError, LLMTimeoutError,
                                 LLMUnavailableError, NearDuplicateError)
from designer.llm.insights import summarise
from designer.llm.prompts import PromptBudget, PromptTemplates, load_prompt_templates
from designer.llm.proposer import LLMProposer

__all__ = [
    "AnswerParseError", "AskPolicy", "BudgetExhaustedError", "CallRecorder", "Completion",
    "LLMAuthenticationError", "LLMBudget", "LLMClient", "LLMError", "LLMProposer",
    "LLMRequestError", "LLMServerError", "LLMTimeoutError", "LLMUnavailableError",
    "NearDuplicateError", "NullRecorder", "PromptBudget", "PromptTemplates", "RetryPolicy",
    "attach_data_card", "choose_backend", "load_prompt_templates", "make_client", "summarise",
]
