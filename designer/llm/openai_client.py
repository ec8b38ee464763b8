"""``OpenAIClient``: the openai SDK against any OpenAI-compatible server."""
from __future__ import annotations

import os
import time

from designer.llm.client import (Completion, RetryPolicy, call_with_retries, classify_status,
                                 retry_after_seconds, short_message, transport_failure,
                                 unavailable)
from designer.llm.errors import LLMError, LLMRequestError, LLMTimeoutError
from designer.llm.redact import redact

DEFAULT_BASE = "https://api.openai.com/v1"


class OpenAIClient:
    """Chat completions through ``openai.OpenAI`` (the SDK's own retries are off; ours apply).

    The key is read from ``OPENAI_API_KEY`` (``"not-needed"`` when unset, for local
    servers). A model named ``openai/<name>`` is sent as ``<name>``. ``prices``, if given,
    is ``(usd_per_million_prompt_tokens, usd_per_million_completion_tokens)``; otherwise
    cost is 0 (unknown).
    """

    def __init__(self, api_base: str | None = None, *, retry: RetryPolicy | None = None,
                 prices: tuple[float, float] | None = None):
        import openai  # a light import; kept local so the module loads without it

        self.url = api_base or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE
        self.retry = retry or RetryPolicy()
        self.prices = prices
        self._openai = openai
        self._sdk = openai.OpenAI(api_key=os.environ.get("OPENAI_API_KEY") or "not-needed",
                                  base_url=self.url, max_retries=0)

    def complete(self, messages: list[dict], *, model: str, temperature: float,
                 json_schema: dict | None = None, timeout: float,
                 max_tokens: int | None = None) -> Completion:
        """See ``LLMClient.complete``. Raises ``LLMError`` subclasses only."""
        start = time.monotonic()
        name = model.removeprefix("openai/")
        extra: dict = {}
        if json_schema is not None:
            extra["response_format"] = {"type": "json_schema", "json_schema": json_schema}
        if max_tokens is not None:
            extra["max_tokens"] = max_tokens
        response = call_with_retries(
            lambda: self._once(messages, name, temperature, timeout, extra), self.retry,
            where=self.url)
        return self._completion(response, model, time.monotonic() - start)

    def _once(self, messages, name, temperature, timeout, extra):
        try:
            return self._sdk.chat.completions.create(
                model=name, messages=messages, temperature=temperature, timeout=timeout, **extra)
        except Exception as e:  # translate every SDK error at the boundary
            raise self._translate(e, timeout) from e

    def _translate(self, e: Exception, timeout: float) -> LLMError:
        o = self._openai
        message = redact(short_message(e)) or type(e).__name__
        if isinstance(e, o.APITimeoutError):
            return LLMTimeoutError(f"the LLM at {self.url} did not answer within {timeout:g}s")
        if isinstance(e, o.APIConnectionError):
            transport = transport_failure(e)
            return unavailable(self.url, redact(transport[1]) if transport else message)
        if isinstance(e, o.APIStatusError):
            return classify_status(e.status_code, message, url=self.url,
                                   retry_after=retry_after_seconds(e.response.headers))
        return LLMRequestError(f"unexpected error from the LLM at {self.url}: {message}")

    def _completion(self, response, model: str, latency: float) -> Completion:
        try:
            text = response.choices[0].message.content or ""
        except (AttributeError, IndexError, TypeError) as e:
            raise LLMRequestError(f"the LLM at {self.url} sent a response without choices") from e
        usage = getattr(response, "usage", None)
        prompt = int(getattr(usage, "prompt_tokens", 0) or 0)
        completion = int(getattr(usage, "completion_tokens", 0) or 0)
        cost = 0.0
        if self.prices:
            cost = (prompt * self.prices[0] + completion * self.prices[1]) / 1e6
        return Completion(text=text, prompt_tokens=prompt, completion_tokens=completion,
                          cost_usd=cost, latency_seconds=latency, model=model)
