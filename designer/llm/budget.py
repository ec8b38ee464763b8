"""The run's LLM spending limit (USD and number of calls)."""
from __future__ import annotations

import logging
import threading

from designer.llm.client import Completion
from designer.llm.errors import BudgetExhaustedError

logger = logging.getLogger(__name__)


class LLMBudget:
    """Counts calls and USD; ``check()`` before each call raises ``BudgetExhaustedError``.

    ``None`` limits mean unlimited. Failed calls count as calls (they may be billed).
    A model whose price is unknown costs 0, so only ``max_calls`` can stop it. Thread-safe.
    """

    def __init__(self, max_usd: float | None = None, max_calls: int | None = None):
        self.max_usd, self.max_calls = max_usd, max_calls
        self.spent_usd = 0.0
        self.calls = 0
        self._lock = threading.Lock()
        self._warned_free = False

    def check(self) -> None:
        """Raise ``BudgetExhaustedError`` if one more call would exceed a limit."""
        with self._lock:
            if self.max_calls is not None and self.calls >= self.max_calls:
                raise BudgetExhaustedError(
                    f"LLM call budget spent: {self.calls} of {self.max_calls} calls; "
                    "raise --max-calls to continue")
            if self.max_usd is not None and self.spent_usd >= self.max_usd:
                raise BudgetExhaustedError(
                    f"LLM budget spent: ${self.spent_usd:.4f} of ${self.max_usd:.4f}; "
                    "raise --budget-usd to continue")

    def charge(self, completion: Completion | None) -> None:
        """Count one call (``None`` for a failed call) and its cost."""
        with self._lock:
            self.calls += 1
            if completion is not None:
                self.spent_usd += completion.cost_usd
                if (completion.cost_usd == 0 and completion.completion_tokens
                        and self.max_usd is not None and not self._warned_free):
                    self._warned_free = True
                    logger.warning("the price of %s is unknown (cost 0): --budget-usd cannot "
                                   "stop this run; use --max-calls", completion.model)

    @property
    def remaining_usd(self) -> float | None:
        return None if self.max_usd is None else max(0.0, self.max_usd - self.spent_usd)
