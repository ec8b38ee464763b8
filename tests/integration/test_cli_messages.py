"""Messages that led people astray (issue 15 item 6) now say what happened and what to do,
through the real console script."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from designer.settings import DesignSettings, PromotionConfig
from sandbox.limits import Limits
from tests.integration.clirun import TINY, cli

DOCS = Path(__file__).resolve().parents[2] / "docs"
SLOW_AGENT = ("import time\nimport numpy as np\n\nclass Agent:\n    def __init__(self, **p):\n        pass\n"
              "    def fit(self, train):\n        time.sleep(60)\n"
              "    def recommend(self, users, k):\n        return np.zeros((len(users), k), dtype=np.int64)\n")


@pytest.mark.sandbox
def test_a_champion_that_times_out_points_to_the_flag_and_the_experiment(ws):
    result = cli(ws, "design", "--agent", "recommender", "--iterations", "1", "--wall-limit", "0.01", *TINY,
                 check=False)
    assert result.returncode == 1
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: the champion's baseline run (experiment ") and "ended TIMED_OUT" in line
    assert "raise the limit with --wall-limit SECONDS (now 0.01)" in line and "--status FAILED" not in line
    exp = int(re.search(r"agenticrs history show (\d+)", line).group(1))
    assert json.loads(cli(ws, "history", "show", str(exp), "--json").stdout)["status"] == "TIMED_OUT"


@pytest.mark.sandbox
def test_evaluate_names_the_outcome_and_the_flag_of_a_limit(ws, tmp_path):
    agent = tmp_path / "slow.py"
    agent.write_text(SLOW_AGENT)
    result = cli(ws, "evaluate", str(agent), "--wall-limit", "2", "--json", *TINY, check=False)
    assert result.returncode == 1
    error = json.loads(result.stdout)["error"]
    assert error.startswith("TIMED_OUT: ") and "None" not in error
    assert "raise it with --wall-limit SECONDS (now 2)" in error


def test_a_file_with_other_columns_is_told_about_the_columns_flag(ws, tmp_path):
    data = tmp_path / "events.csv"
    data.write_text("uid,iid,ts\n1,1,1\n1,2,2\n1,3,3\n")
    result = cli(ws, "evaluate", "ease", "--dataset", str(data), check=False)
    assert result.returncode == 1
    assert "--columns user=COL,item=COL,timestamp=COL[,rating=COL]" in result.stderr
    assert "columns={" not in result.stderr and "found ['uid', 'iid', 'ts']" in result.stderr


def test_init_refuses_a_data_dir_that_does_not_exist(tmp_path):
    result = cli(tmp_path / "ws", "init", "--data-dir", str(tmp_path / "nonexistent"), check=False)
    assert result.returncode == 2 and "is not a folder" in result.stderr
    assert not (tmp_path / "ws").exists()


def test_a_config_typo_lists_the_valid_keys_and_every_key_is_documented(ws, tmp_path):
    config = tmp_path / "typo.toml"
    config.write_text("seeed = 3\n\n[limits]\nwall_second = 4\n")
    result = cli(ws, "evaluate", "ease", "--config", str(config), *TINY, check=False)
    assert result.returncode == 2
    assert "unknown key 'seeed'; valid top-level keys: " in result.stderr and " seed," in result.stderr
    assert "unknown key 'limits.wall_second'; valid keys of [limits]: wall_seconds," in result.stderr
    doc = (DOCS / "cli.md").read_text()
    settings = doc[doc.index("## Settings: `config.toml`"):doc.index("## JSON keys")]
    for model in (DesignSettings, Limits, PromotionConfig):
        for key, field in model.model_fields.items():
            table = f"`[{key}]`" if key in ("limits", "promotion") else f"| `{key}` |"
            assert field.exclude or table in settings, key
