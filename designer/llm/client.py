"""The LLM client seam: a Protocol, its value type, retries and the factory.

Two implementations speak to real servers: ``OpenAIClient`` (the openai SDK, any
OpenAI-compatible endpoint: OpenAI, vLLM, Ollama, llama.cpp) and ``LiteLLMClient``
(every provider litellm knows). Both translate third-party errors into ``LLMError``
subclasses and retry transient ones (429, 5xx, timeouts, connection errors) through
``call_with_retries``.
"""
from __future__ import annotations

import logging
import random
import time
from typing import Any, Callable, Literal, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from designer.llm.errors import LLMError, LLMServerError, LLMUnavailableError

logger = logging.getLogger(__name__)
T = TypeVar("T")


class Completion(BaseModel):
    """One answer of the model. ``latency_seconds`` covers all retries of the call."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0          # 0 when the price of the model is unknown
    latency_seconds: float = 0.0
    model: str


class LLMClient(Protocol):
    """Sends chat messages, returns one ``Completion``.

    ``messages`` are OpenAI-style dicts (``role``, ``content``). ``json_schema``, when
    given, is ``{"name": str, "schema": {...}}`` and asks for a JSON answer of that shape
    (servers that cannot do it may ignore it). Raises ``LLMError`` subclasses only.
    """

    def complete(self, messages: list[dict], *, model: str, temperature: float,
                 json_schema: dict | None = None, timeout: float,
                 max_tokens: int | None = None) -> Completion: ...


class RetryPolicy(BaseModel):
    """Bounded exponential backoff with full jitter: delay_n = U(0, min(max, base * 2**n))."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_attempts: int = Field(4, ge=1, description="attempts per call, the first included")
    base_delay: float = Field(1.0, ge=0, description="seconds before the first retry (before jitter)")
    max_delay: float = Field(30.0, ge=0, description="cap of one wait, also caps Retry-After")

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (0-based)."""
        if retry_after is not None:
            return min(self.max_delay, max(0.0, retry_after))
        return random.uniform(0, min(self.max_delay, self.base_delay * 2 ** attempt))


def call_with_retries(fn: Callable[[], T], policy: RetryPolicy, *, where: str,
                      sleep: Callable[[float], None] = time.sleep) -> T:
    """Run ``fn`` and retry it while it raises a retryable ``LLMError``.

    After the last attempt the last error is re-raised with the number of attempts in its
    message. Non-retryable errors propagate at once. ``where`` names the endpoint in logs.
    """
    for attempt in range(policy.max_attempts):
        try:
            return fn()
        except LLMError as e:
            if not e.retryable or attempt == policy.max_attempts - 1:
                if e.retryable and policy.max_attempts > 1:
                    e.args = (f"{e.args[0]} (gave up after {policy.max_attempts} attempts)",)
                raise
            wait = policy.delay(attempt, getattr(e, "retry_after", None))
            logger.warning("LLM call to %s failed (%s); retry %d/%d in %.1fs", where, e,
                           attempt + 1, policy.max_attempts - 1, wait)
            sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover


def classify_status(status: int | None, message: str, *, url: str,
                    retry_after: float | None = None) -> LLMError:
    """Map an HTTP status of a refused call to our error classes (used by both clients)."""
    from designer.llm.errors import LLMAuthenticationError, LLMRequestError

    if status in (401, 403):
        return LLMAuthenticationError(
            f"the LLM at {url} refused the key (HTTP {status}): {message}; set the provider's "
            "key in the environment (e.g. OPENAI_API_KEY)")
    if status is not None and (status == 429 or status >= 500):
        return LLMServerError(f"the LLM at {url} answered HTTP {status}: {message}",
                              status=status, retry_after=retry_after)
    return LLMRequestError(f"the LLM at {url} refused the request (HTTP {status}): {message}")


def unavailable(url: str, reason: str) -> LLMUnavailableError:
    """The one clear error for a dead endpoint."""
    return LLMUnavailableError(
        f"cannot reach the LLM at {url}: {reason}; start the server or fix --api-base")


def short_message(e: BaseException, limit: int = 500) -> str:
    """``str(e)`` on one bounded line-ish string (for error messages)."""
    text = str(e).strip() or type(e).__name__
    return text if len(text) <= limit else text[:limit] + "..."


def retry_after_seconds(headers: Any) -> float | None:
    """Seconds from a numeric ``Retry-After`` header, else None."""
    try:
        return float(headers.get("retry-after"))
    except (TypeError, ValueError, AttributeError):
        return None


def transport_failure(e: BaseException) -> tuple[str, str] | None:
    """Find a transport failure in ``e``'s cause chain: ``("timeout"|"connect", root message)``.

    SDKs wrap socket errors several times (litellm even as HTTP 500 "Connection error.");
    the root cause (e.g. "[Errno 111] Connection refused") is what a user needs to read.
    """
    chain: list[BaseException] = []
    cur: BaseException | None = e
    while cur is not None and cur not in chain:
        chain.append(cur)
        cur = cur.__cause__ or cur.__context__
    names = [type(c).__name__.lower() for c in chain]
    root = short_message(chain[-1])
    if any(isinstance(c, TimeoutError) or "timeout" in n for c, n in zip(chain, names)):
        return "timeout", root
    if any(isinstance(c, ConnectionError) or "connecterror" in n or "apiconnectionerror" in n
           for c, n in zip(chain, names)):
        return "connect", root
    return None


Backend = Literal["auto", "openai", "litellm"]
