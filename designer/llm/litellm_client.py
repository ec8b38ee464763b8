"""``LiteLLMClient``: every provider litellm knows (imported lazily: it takes seconds)."""
from __future__ import annotations

import os
import time
from typing import Any

from designer.llm.client import (Completion, RetryPolicy, call_with_retries, classify_status,
                                 retry_after_seconds, short_message, transport_failure,
                                 unavailable)
from designer.llm.errors import LLMError, LLMRequestError, LLMTimeoutError
from designer.llm.redact import redact

_litellm: Any = None


def _import_litellm() -> Any:
    """Import litellm once, with its price map read from the package (no network)."""
    global _litellm
    if _litellm is None:
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        import litellm

        litellm.telemetry = False
        litellm.suppress_debug_info = True
        _litellm = litellm
    return _litellm


class LiteLLMClient:
    """Chat completions through ``litellm.completion`` (its own retries off; ours apply).

    Keys come from the provider's usual environment variable (litellm reads them). For
    ``openai/<name>`` with an ``api_base`` and no ``OPENAI_API_KEY``, ``"not-needed"`` is
    sent (local servers). Cost is ``litellm.completion_cost`` when the model's price is
    known, else 0.
    """

    def __init__(self, api_base: str | None = None, *, retry: RetryPolicy | None = None):
        self.api_base = api_base
        self.retry = retry or RetryPolicy()

    @property
    def url(self) -> str:
        return self.api_base or "the provider's default endpoint"

    def complete(self, messages: list[dict], *, model: str, temperature: float,
                 json_schema: dict | None = None, timeout: float,
                 max_tokens: int | None = None) -> Completion:
        """See ``LLMClient.complete``. Raises ``LLMError`` subclasses only."""
        litellm = _import_litellm()
        start = time.monotonic()
        kwargs = self._kwargs(model, temperature, json_schema, timeout, max_tokens)
        response = call_with_retries(lambda: self._once(litellm, messages, kwargs, timeout),
                                     self.retry, where=self.url)
        return self._completion(litellm, response, model, time.monotonic() - start)

    def _kwargs(self, model, temperature, json_schema, timeout, max_tokens) -> dict:
        kwargs: dict[str, Any] = dict(model=model, temperature=temperature, timeout=timeout,
                                      num_retries=0, max_retries=0)
        if self.api_base:
            kwargs["api_base"] = self.api_base
            if model.startswith("openai/") and not os.environ.get("OPENAI_API_KEY"):
                kwargs["api_key"] = "not-needed"
        if json_schema is not None:
            kwargs["response_format"] = {"type": "json_schema", "json_schema": json_schema}
        if max_tokens is not None:
            kwargs["max_tokens"] = max_tokens
        return kwargs

    def _once(self, litellm, messages, kwargs, timeout):
        try:
            return litellm.completion(messages=messages, **kwargs)
        except Exception as e:  # translate every litellm/SDK error at the boundary
            raise self._translate(litellm, e, timeout) from e

    def _translate(self, litellm, e: Exception, timeout: float) -> LLMError:
        message = redact(short_message(e)) or type(e).__name__
        status = getattr(e, "status_code", None)
        transport = transport_failure(e)
        if isinstance(e, litellm.Timeout) or status == 408 or (transport and transport[0] == "timeout"):
            return LLMTimeoutError(f"the LLM at {self.url} did not answer within {timeout:g}s")
        if transport:
            return unavailable(self.url, redact(transport[1]) or message)
        if isinstance(status, int) and status >= 400:
            response = getattr(e, "response", None)
            headers = getattr(response, "headers", None)
            return classify_status(status, message, url=self.url,
                                   retry_after=retry_after_seconds(headers))
        return LLMRequestError(f"the LLM call through litellm failed: {message}")

    def _completion(self, litellm, response, model: str, latency: float) -> Completion:
        try:
            text = response.choices[0].message.content or ""
        except (AttributeError, IndexError, TypeError) as e:
            raise LLMRequestError(f"the LLM at {self.url} sent a response without choices") from e
        usage = getattr(response, "usage", None)
        return Completion(text=text, prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
                          completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
                          cost_usd=_cost(litellm, response), latency_seconds=latency, model=model)


def _cost(litellm, response) -> float:
    """The call's USD price from litellm's local price map; 0 when the model is unknown."""
    try:
        return float(litellm.completion_cost(completion_response=response) or 0.0)
    except Exception:  # unknown model / provider: cost unknown, not an error
        return 0.0
