"""``agenticrs evaluate`` flags through the real sandbox: --params, --test, --columns, ml-100k."""
from __future__ import annotations

import json

import numpy as np
import pytest

from tests.integration.clirun import TINY, cli

pytestmark = [pytest.mark.sandbox, pytest.mark.slow, pytest.mark.integration]


def evaluate(ws, *args: str, check: bool = True):
    result = cli(ws, "evaluate", *args, "--json", check=check)
    return json.loads(result.stdout) if result.returncode == 0 else result


def test_params_change_the_agent_and_bad_params_are_usage_errors(ws):
    default = evaluate(ws, "ease", *TINY)
    strong = evaluate(ws, "ease", "--params", '{"l2": 10000}', *TINY)
    assert default["outcome"] == strong["outcome"] == "COMPLETED"
    assert strong["metrics"]["ndcg@10"] != default["metrics"]["ndcg@10"]
    assert strong["metrics"]["ndcg@10"] == evaluate(ws, "ease", "--params", '{"l2": 10000}', *TINY)["metrics"]["ndcg@10"]
    not_json = cli(ws, "evaluate", "ease", "--params", "l2=5", *TINY, check=False)
    assert not_json.returncode == 2 and "--params" in not_json.stderr and "Traceback" not in not_json.stderr
    unknown = cli(ws, "evaluate", "ease", "--params", '{"depth": 3}', *TINY, check=False)
    assert unknown.returncode == 2 and "depth" in unknown.stderr and "Traceback" not in unknown.stderr
    outside = cli(ws, "evaluate", "ease", "--params", '{"l2": 100000}', *TINY, check=False)
    assert outside.returncode == 2 and "outside" in outside.stderr and "Traceback" not in outside.stderr


def test_test_flag_scores_the_sealed_test_split(ws):
    validation = evaluate(ws, "popularity", *TINY)
    test = evaluate(ws, "popularity", "--test", *TINY)
    assert (validation["stage"], test["stage"]) == ("validation", "test")
    assert test["outcome"] == "COMPLETED" and test["metrics"] != validation["metrics"]
    shown = cli(ws, "evaluate", "popularity", "--test", *TINY).stdout
    assert "sealed test metrics" in shown


def test_columns_map_an_interactions_file_with_other_names(ws, tmp_path):
    rng = np.random.default_rng(0)
    rows = [(f"u{u}", f"i{i}", t) for u in range(120) for t, i in
            enumerate(rng.choice(80, size=int(rng.integers(12, 25)), replace=False))]
    data = tmp_path / "log.csv"
    data.write_text("uid,iid,ts\n" + "".join(f"{u},{i},{t}\n" for u, i, t in rows))

    mapped = evaluate(ws, "popularity", "--dataset", str(data), "--columns", "user=uid,item=iid,timestamp=ts")
    assert mapped["outcome"] == "COMPLETED" and 0 < mapped["metrics"]["ndcg@10"] <= 1
    assert mapped["dataset"] != "synthetic"
    unmapped = cli(ws, "evaluate", "popularity", "--dataset", str(data), check=False)
    assert unmapped.returncode == 1 and "Traceback" not in unmapped.stderr
    assert "user" in unmapped.stderr and "uid" in unmapped.stderr
    bad_role = cli(ws, "evaluate", "popularity", "--dataset", str(data), "--columns", "who=uid", check=False)
    assert bad_role.returncode == 2 and "unknown role" in bad_role.stderr


def test_ml100k_from_its_folder(ws, ml100k_dir):
    data = evaluate(ws, "popularity", "--dataset", "ml-100k", "--data-dir", str(ml100k_dir))
    assert data["outcome"] == "COMPLETED" and data["dataset"].startswith("ml-100k")
    assert 0 < data["metrics"]["ndcg@10"] < 1
