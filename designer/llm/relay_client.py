"""``RelayClient``: the model is whoever answers files in a folder (``--model relay/DIR``).

Each call writes ``DIR/NNNN-prompt.md`` (the messages with ``### role`` headers) and
``DIR/NNNN-prompt.json`` (the messages as a list), then waits for ``DIR/NNNN-answer.md``.
A person, a chat UI or an external coding agent writes the answer; the relay reads it once
its size has stopped changing (writers may also write a temporary name and rename it).
Numbers continue after the highest prompt already in the folder, so sessions resume. A
retried call reuses its prompt file. No tokens are counted by a tokenizer: the counts are
characters / 4, and the cost is 0.
"""
from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Callable

from designer.llm.calls import flatten
from designer.llm.client import Completion
from designer.llm.errors import LLMTimeoutError, LLMUnavailableError

PREFIX = "relay/"
PROMPT = re.compile(r"^(\d{4,})-prompt\.md$")


def relay_folder(model: str) -> Path | None:
    """``DIR`` of a ``relay/DIR`` model name, else None."""
    return Path(model[len(PREFIX):]).expanduser() if model.startswith(PREFIX) else None


class RelayClient:
    """Implements ``LLMClient`` through prompt and answer files in ``folder``."""

    def __init__(self, folder: Path | str, *, poll: float = 0.5,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        self.folder = Path(folder)
        self.poll, self.clock, self.sleep = poll, clock, sleep
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise LLMUnavailableError(f"cannot use the relay folder {self.folder}: {e}; "
                                      "pass --model relay/DIR with a writable DIR") from e

    def complete(self, messages: list[dict], *, model: str, temperature: float,
                 json_schema: dict | None = None, timeout: float,
                 max_tokens: int | None = None) -> Completion:
        """Write the prompt, wait up to ``timeout`` seconds for the answer file, return it.

        Raises ``LLMTimeoutError`` (naming the file to write) when no answer came in time.
        """
        start = self.clock()
        text = flatten(messages)
        number = self._number(text)
        prompt = self.folder / f"{number:04d}-prompt.md"
        if not prompt.exists():
            self._write(prompt.with_suffix(".json"), json.dumps(messages, indent=1))
            self._write(prompt, text)
        answer = self.folder / f"{number:04d}-answer.md"
        reply = self._wait(answer, start, timeout)
        return Completion(text=reply, prompt_tokens=len(text) // 4, completion_tokens=len(reply) // 4,
                          cost_usd=0.0, latency_seconds=self.clock() - start, model=model)

    def _number(self, text: str) -> int:
        """The last prompt's number if it has the same text and no answer yet (a retry), else the next."""
        numbers = sorted(int(m.group(1)) for p in self.folder.iterdir() if (m := PROMPT.match(p.name)))
        if numbers:
            last = numbers[-1]
            pending = not (self.folder / f"{last:04d}-answer.md").exists()
            if pending and (self.folder / f"{last:04d}-prompt.md").read_text(encoding="utf-8") == text:
                return last
            return last + 1
        return 1

    def _wait(self, answer: Path, start: float, timeout: float) -> str:
        size = -1
        while self.clock() - start < timeout:
            if answer.exists():
                now = answer.stat().st_size
                if now == size and now > 0:
                    return answer.read_text(encoding="utf-8")
                size = now
            self.sleep(self.poll)
        raise LLMTimeoutError(f"no answer in {answer} after {timeout:.0f} s; write the answer to that "
                              "file (or raise --llm-timeout)")

    @staticmethod
    def _write(path: Path, text: str) -> None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
