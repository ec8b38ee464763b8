"""The LLM subpackage's exception tree: one level deep, messages say what to do next.

Third-party exceptions (openai, litellm, httpx) are translated into these at the client
boundary with ``raise ... from e``. Messages never carry API keys (see ``redact``).

Which errors stop a run and which only fail an iteration:

- fatal for the run: ``LLMUnavailableError``, ``LLMAuthenticationError``,
  ``BudgetExhaustedError`` (a clean stop: the loop catches it and ends the session);
- one iteration fails (the proposer turns them into ``ProposalError``):
  ``LLMTimeoutError``, ``LLMServerError``, ``LLMRequestError``, ``AnswerParseError``.
"""
from __future__ import annotations

from designer.errors import DesignerError
from designer.proposal import SessionStop


class LLMError(DesignerError):
    """Root of every error raised by ``designer.llm``."""

    retryable: bool = False


class LLMUnavailableError(LLMError):
    """The endpoint could not be reached (connection refused, DNS, ...) after all retries."""

    retryable = True


class LLMTimeoutError(LLMError):
    """The server did not answer within the call's timeout (after all retries)."""

    retryable = True


class LLMServerError(LLMError):
    """HTTP 429 or 5xx from the server (after all retries). ``status`` holds the code."""

    retryable = True

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class LLMAuthenticationError(LLMError):
    """HTTP 401/403: the key is missing or wrong. Never retried."""


class LLMRequestError(LLMError):
    """Any other refused request (HTTP 4xx) or an unusable response body. Never retried."""


class BudgetExhaustedError(LLMError, SessionStop):
    """The run's LLM budget (USD or calls) is spent: stop the run cleanly."""


class AnswerParseError(LLMError):
    """The model's answer holds no usable module; the message is written to be sent back."""


class NearDuplicateError(AnswerParseError):
    """The answer's module is a near-duplicate of one already evaluated (see ``designer.llm.novelty``)."""
