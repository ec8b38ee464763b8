"""``--executor ray`` on a real local Ray cluster (2 CPUs on 127.0.0.1, torn down after):
each experiment recorded once, a killed worker's job retried and recorded once, a job
whose worker dies twice is a classified FAILED result."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import uuid
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.integration.clirun import BIN, cli

pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.integration, pytest.mark.sandbox]
SMALL = ["--dataset", "synthetic", "--n-users", "200", "--n-items", "100"]
TASK_TITLE = "ray::run_on_node"   # a Ray worker's process title while it runs that task


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """A head node started by ``ray start --head --block`` in its own process group: stopping
    it ends exactly its processes (``ray stop`` would end every Ray on the machine)."""

    def __init__(self, root: Path):
        pytest.importorskip("ray", reason="the ray extra: pip install -e '.[ray]'")
        self.port, self.node_dir = _free_port(), root / "node"
        self.address = f"127.0.0.1:{self.port}"
        self.temp_dir = tempfile.mkdtemp(prefix="ray-", dir="/tmp")   # unix socket paths: <= 107 bytes
        ray_bin = Path(sys.executable).with_name("ray")
        env = os.environ | {"AGENTICRS_RAY_NODE_DIR": str(self.node_dir), "RAY_USAGE_STATS_ENABLED": "0"}
        self.proc = subprocess.Popen(
            [str(ray_bin), "start", "--head", "--block", "--node-ip-address", "127.0.0.1", "--port", str(self.port),
             "--num-cpus", "2", "--include-dashboard=false", "--object-store-memory", str(80 * 2**20),
             "--temp-dir", self.temp_dir, "--disable-usage-stats"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True)
        self._wait_started()

    def _wait_started(self, timeout: float = 90) -> None:
        lines: list[str] = []
        timer = threading.Timer(timeout, self.stop)
        timer.start()
        for line in self.proc.stdout:
            lines.append(line)
            if "Ray runtime started" in line:
                timer.cancel()
                threading.Thread(target=lambda: [None for _ in self.proc.stdout], daemon=True).start()
                return
        timer.cancel()
        raise AssertionError("ray start --head failed:\n" + "".join(lines[-30:]))

    def busy_workers(self) -> list[int]:
        """Pids of this cluster's Ray workers running ``run_on_node`` (not the children they
        fork for the sandbox, which carry the same title until they exec)."""
        table = subprocess.run(["ps", "-eo", "pid=,ppid=,args="], capture_output=True, text=True).stdout
        rows = [line.split(None, 2) for line in table.splitlines() if len(line.split(None, 2)) == 3]
        parent = {int(p): int(pp) for p, pp, _ in rows}
        title = {int(p): a for p, _, a in rows}

        def ours(pid: int) -> bool:
            while pid > 1:
                if pid == self.proc.pid:
                    return True
                pid = parent.get(pid, 1)
            return False
        return [p for p, a in title.items() if a.startswith(TASK_TITLE) and ours(p)
                and not title.get(parent[p], "").startswith("ray::")]

    def kill_busy_worker(self, timeout: float, exclude: tuple[int, ...] = ()) -> int:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if busy := [p for p in self.busy_workers() if p not in exclude]:
                os.kill(busy[0], signal.SIGKILL)
                return busy[0]
            time.sleep(0.05)
        raise AssertionError(f"no Ray worker ran a job within {timeout} s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()   # --block: ends the processes it started
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        shutil.rmtree(self.temp_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    # A token of this cluster's own, for it and every driver the tests start: another Ray on
    # the machine (a private local cluster writes ~/.ray/auth_token, which Ray then picks up)
    # must not change the token under the tests' feet.
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": uuid.uuid4().hex + uuid.uuid4().hex}
    saved = {k: os.environ.get(k) for k in (*auth, "RAY_AUTH_TOKEN_PATH")}
    os.environ.pop("RAY_AUTH_TOKEN_PATH", None)
    os.environ.update(auth)
    try:
        started = Cluster(tmp_path_factory.mktemp("raycluster"))
        yield started
        started.stop()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _experiments(ws: Path):
    from designer.workspace import Workspace
    from knowledge_base.store import Store
    with Store.open(Workspace.open(ws).db_url) as store:
        return store.list_experiments(limit=1000)


def _assert_recorded_once(ws: Path) -> list:
    rows = _experiments(ws)
    twice = [k for k, n in Counter((e.stage, e.code_hash) for e in rows).items() if n > 1]
    assert rows and not twice, f"recorded more than once: {twice}"
    assert all(e.status.value == "COMPLETED" for e in rows), [(e.id, e.stage, e.status) for e in rows]
    return rows


@pytest.mark.timeout(300)
def test_design_through_ray_records_each_experiment_once(cluster, ws):
    summary = json.loads(cli(ws, "design", "--agent", "recommender", "--iterations", "3", "--auto-approve",
                             "--json", "--executor", "ray", "--address", cluster.address, *SMALL).stdout)
    assert summary["iterations"] == 3 and summary["failed"] == 0, summary
    assert summary["best_reward"] > summary["baseline_reward"], summary
    rows = _assert_recorded_once(ws)
    folder = ws / "experiments" / f"{rows[0].id:06d}"
    assert (folder / "agent.py").is_file() and (folder / "validation.stderr.log").is_file()
    # the runs happened on the Ray worker: its node-local input cache, its scratch cleaned
    assert any((cluster.node_dir / "cache" / "inputs").iterdir())
    assert not any((cluster.node_dir / "runs").iterdir())


@pytest.mark.timeout(300)
def test_a_killed_ray_worker_is_retried_and_its_job_recorded_once(cluster, ws):
    env = {k: v for k, v in os.environ.items() if k not in ("AGENTICRS_DB", "AGENTICRS_WORKSPACE")}
    proc = subprocess.Popen([str(BIN), "--workspace", str(ws), "design", "--agent", "recommender",
                             "--iterations", "2", "--auto-approve", "--json", "--executor", "ray",
                             "--address", cluster.address, *SMALL],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env | {"NO_COLOR": "1"})
    try:
        killed = cluster.kill_busy_worker(timeout=120)
        assert proc.poll() is None, "design ended before its worker could be killed"
        out, errors = proc.communicate(timeout=240)
    finally:
        proc.kill()
    assert proc.returncode == 0, errors
    assert not Path(f"/proc/{killed}").exists()
    summary = json.loads(out)
    assert summary["failed"] == 0, f"the killed worker's job was not retried: {summary}\n{errors}"
    _assert_recorded_once(ws)


@pytest.mark.timeout(180)
def test_a_job_whose_worker_dies_twice_is_a_failed_result(cluster, tmp_path):
    from designer.ray_executor import RayExecutor
    from designer.settings import DesignSettings
    from sandbox.evaluation import EvaluationJob
    from sandbox.outcome import Outcome

    settings = DesignSettings(dataset="synthetic", n_users=200, n_items=100)
    executor = RayExecutor(settings, tmp_path / "cache", address=cluster.address)
    try:
        job = EvaluationJob(code="import time\ntime.sleep(120)\n")
        results: list = []
        runner = threading.Thread(target=lambda: results.append(executor.evaluate(job, tmp_path / "run")))
        runner.start()
        first = cluster.kill_busy_worker(timeout=60)
        second = cluster.kill_busy_worker(timeout=60, exclude=(first,))   # the retry, on a new worker process
        runner.join(60)
    finally:
        executor.close()
    assert first != second and len(results) == 1, results
    result = results[0]
    assert result.outcome is Outcome.FAILED and result.error_type == "WorkerCrashedError", result
    assert "Ray worker died, after one retry" in result.message


def test_the_core_package_imports_no_ray_and_address_needs_the_ray_executor(ws):
    probe = "import sys, designer.cli.design, designer.loop, designer.ray_executor; assert 'ray' not in sys.modules"
    subprocess.run([sys.executable, "-c", probe], check=True)
    result = cli(ws, "design", "--agent", "recommender", "--address", "auto", *SMALL, check=False)
    assert result.returncode == 2 and "--executor ray" in result.stderr


def test_a_cluster_nobody_runs_is_one_clear_error_at_once(ws):
    pytest.importorskip("ray", reason="the ray extra: pip install -e '.[ray]'")
    start = time.time()
    result = cli(ws, "design", "--agent", "recommender", "--executor", "ray", "--address", f"127.0.0.1:{_free_port()}",
                 *SMALL, check=False, timeout=120)
    assert result.returncode == 2 and "ray start --head" in result.stderr, result.stderr
    assert time.time() - start < 60
