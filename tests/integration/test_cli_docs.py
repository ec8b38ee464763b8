"""The CLI does what its docs say (issue 15 item 8), through the real console script."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from designer.families import BUILTIN_TEMPLATE_DIR
from tests.designer.llm.fake_llm_server import ScriptedLLMServer
from tests.integration.clirun import BIN, TINY, cli

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_global_options_work_after_the_command(ws):
    """docs/cli.md: `--workspace`, `--db` and `-v/--verbose` are accepted before or after the command."""
    for args in (["agents", "list", "-v"], ["history", "--limit", "1", "--verbose"], ["-v", "agents", "list"]):
        result = cli(ws, *args, check=False)
        assert result.returncode == 0, (args, result.stderr)


def test_a_wrong_workspace_hint_never_suggests_runs_runs(ws):
    env = {k: v for k, v in os.environ.items() if k not in ("AGENTICRS_DB", "AGENTICRS_WORKSPACE")}
    inside = subprocess.run([str(BIN), "agents", "list"], cwd=ws, capture_output=True, text=True, env=env)
    assert inside.returncode == 1
    assert f"you are inside the workspace {ws.resolve()}: pass --workspace {ws.resolve()}" in inside.stderr
    assert "init --workspace" not in inside.stderr and "Traceback" not in inside.stderr


@pytest.mark.sandbox
def test_evaluate_takes_config_and_workspace_families(ws, tmp_path):
    config = tmp_path / "eval.toml"
    config.write_text("k = 5\n")
    data = json.loads(cli(ws, "evaluate", "ease", "--config", str(config), "--json", *TINY).stdout)
    assert "ndcg@5" in data["metrics"] and "ndcg@10" not in data["metrics"]
    missing = cli(ws, "evaluate", "ease", "--config", str(tmp_path / "nope.toml"), *TINY, check=False)
    assert missing.returncode == 2 and "nope.toml does not exist" in missing.stderr

    mine = ws / "templates" / "agents"
    mine.mkdir(parents=True)
    spec = yaml.safe_load((BUILTIN_TEMPLATE_DIR / "ease.yaml").read_text()) | {"name": "myease"}
    (mine / "myease.yaml").write_text(yaml.safe_dump(spec))
    shutil.copy(BUILTIN_TEMPLATE_DIR / "ease.py.j2", mine / "myease.py.j2")
    data = json.loads(cli(ws, "evaluate", "myease", "--json", *TINY).stdout)
    assert data["outcome"] == "COMPLETED" and data["target"] == "myease"


@pytest.mark.sandbox
def test_agent_gets_its_params_as_the_contract_doc_says(ws, tmp_path):
    agent = tmp_path / "agent.py"
    agent.write_text(
        "import numpy as np\n\nclass Agent:\n    def __init__(self, depth=1):\n"
        "        assert depth == 3, f'got depth={depth}'\n"
        "    def fit(self, train):\n        self.n = train.n_items\n        self.seen = train.matrix()\n"
        "    def recommend(self, users, k):\n        out = np.full((len(users), k), -1, dtype=np.int64)\n"
        "        for r, u in enumerate(users):\n            seen = set(self.seen[u].indices)\n"
        "            free = [i for i in range(self.n) if i not in seen][:k]\n            out[r, :len(free)] = free\n"
        "        return out\n")
    data = json.loads(cli(ws, "evaluate", str(agent), "--params", '{"depth": 3}', "--json", *TINY).stdout)
    assert data["outcome"] == "COMPLETED", data["error"]
    contract = (DOCS / "agent-contract.md").read_text()
    assert "`Agent(**params)`" in contract and "with **no arguments**" not in contract


@pytest.mark.sandbox
@pytest.mark.slow
def test_workspace_prompt_overrides_reach_the_llm(ws):
    default = (BUILTIN_TEMPLATE_DIR.parent / "prompts" / "system.j2").read_text()
    (ws / "prompts").mkdir()
    (ws / "prompts" / "system.j2").write_text("WORKSPACE-PROMPT-OVERRIDE\n" + default)
    with ScriptedLLMServer() as server:
        server.push("No change.\n\n```json\n{\"l2\": 300}\n```\n")
        cli(ws, "design", "--agent", "recommender", "--proposer", "llm", "--model", "openai/scripted",
            "--api-base", server.url, "--iterations", "1", "--max-calls", "1", *TINY,
            env={"OPENAI_API_KEY": "sk-test"}, check=False)
        assert server.requests, "design made no LLM call"
        assert "WORKSPACE-PROMPT-OVERRIDE" in server.requests[0].text
