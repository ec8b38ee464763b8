"""``design --model relay/DIR``: the prompt lands in DIR, the answer written there is evaluated."""
from __future__ import annotations

import json
import threading
import time

import pytest

from designer.families import load_families
from tests.integration.clirun import TINY, cli

pytestmark = [pytest.mark.sandbox, pytest.mark.slow, pytest.mark.integration]


def test_design_round_trip_through_a_relay_folder(tmp_path):
    ws, relay = tmp_path / "ws", tmp_path / "relay"
    cli(ws, "init")
    ease = load_families()["ease"]
    module = ease.render(ease.validate({"l2": 150.0}))
    seen: list[str] = []

    def person() -> None:  # reads the prompt file, writes the answer file
        prompt = relay / "0001-prompt.md"
        deadline = time.monotonic() + 300
        while not prompt.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        seen.append(prompt.read_text())
        (relay / "0001-answer.md").write_text(f"EASE with a lighter l2.\n\n```python\n{module}```\n")

    thread = threading.Thread(target=person, daemon=True)
    thread.start()
    result = cli(ws, "design", "--agent", "recommender", "--proposer", "llm", "--model", f"relay/{relay}",
                 "--iterations", "1", "--llm-timeout", "300", "--json", *TINY)
    thread.join(5)
    assert seen and "### system" in seen[0] and "# Current version (the parent)" in seen[0]
    summary = json.loads(result.stdout)
    assert summary["iterations"] == 1
    history = json.loads(cli(ws, "history", "--agent", "recommender", "--json").stdout)
    mine = [e for e in history if e["proposer"] == "llm" and e["stage"] == "full"]
    assert mine
    exp = json.loads(cli(ws, "history", "show", str(mine[0]["id"]), "--json").stdout)
    assert exp["proposal"]["rationale"] == "EASE with a lighter l2." and exp["proposal"]["model"] == f"relay/{relay}"
