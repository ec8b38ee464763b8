"""Which LLM client a model name gets: ``choose_backend`` and ``make_client``.

The factory sits above the clients (``openai_client``, ``litellm_client``, ``relay_client``),
which sit above ``client`` (the protocol, retries and status classification they share):
imports go one way only (an import-linter contract in pyproject.toml).
"""
from __future__ import annotations

from typing import Any

from designer.llm.client import Backend, LLMClient, RetryPolicy
from designer.llm.litellm_client import LiteLLMClient
from designer.llm.openai_client import OpenAIClient
from designer.llm.relay_client import RelayClient, relay_folder


def choose_backend(model: str, api_base: str | None) -> Literal["openai", "litellm"]:
    """The backend ``make_client`` picks for ``model`` when ``backend="auto"``.

    - a bare name (``gpt-4o-mini``, ``qwen2.5-coder``) -> the openai SDK, sent as is;
    - ``openai/<name>`` with an ``api_base`` -> the openai SDK with ``<name>`` (an
      OpenAI-compatible server; no slow litellm import, same wire protocol);
    - any other ``provider/<name>`` (``anthropic/...``, ``ollama/...``, ``openai/...``
      without ``api_base``) -> litellm, which knows the provider and its prices.
    """
    if "/" not in model:
        return "openai"
    if model.split("/", 1)[0] == "openai" and api_base:
        return "openai"
    return "litellm"


def make_client(model: str, api_base: str | None = None, *, backend: Backend = "auto",
                retry: RetryPolicy | None = None, **kwargs: Any) -> LLMClient:
    """Build the client for ``model`` (then call ``complete(model=model, ...)`` with the same name).

    ``backend="auto"`` follows ``choose_backend``; "openai" or "litellm" force one.
    ``OpenAIClient`` strips a leading ``openai/`` itself, so callers always pass the name
    the user typed (that name is what the KB records). Extra ``kwargs`` go to the client's
    constructor. Keys are read from the environment by the clients, never passed here.
    ``relay/DIR`` is the file relay (``RelayClient``): prompts written to DIR, answers read
    from it, whatever ``backend`` and ``api_base`` say.
    """
    if (folder := relay_folder(model)) is not None:
        return RelayClient(folder)
    if backend == "auto":
        backend = choose_backend(model, api_base)
    retry = retry or RetryPolicy()
    if backend == "openai":
        return OpenAIClient(api_base=api_base, retry=retry, **kwargs)
    return LiteLLMClient(api_base=api_base, retry=retry, **kwargs)
