"""Evaluation on a Ray cluster: the same sandbox, on whichever node runs the task.

The driver (the ``design`` process) submits one Ray task per run. The task builds, once per
worker process, a ``LocalExecutor`` over the split (taken from Ray's object store, or read
from a folder every node mounts) and runs the job in a free sandbox slot of its node
(``SlotPool``, shared with every other process of that node). It returns the validated
``EvaluationResult`` and the run's log texts; the driver writes the logs into the experiment
folder. Only the driver writes the knowledge base and git.

A worker that dies or a node that leaves: Ray runs the task once more, elsewhere if it can
(``max_retries=1``; candidate failures are results, never exceptions, hence
``retry_exceptions=False``). A second loss is a FAILED result that says so. Each job gives
exactly one result: never lost, never counted twice.

Ray is the optional extra ``agenticrs[ray]``; it is imported lazily, here only.
"""
from __future__ import annotations

import logging
import os
import pickle
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Any

from designer.errors import UsageError
from designer.executor import LocalExecutor, dataset_key, load_split
from designer.settings import DesignSettings
from sandbox.evaluation import EvaluationJob, EvaluationResult
from sandbox.harness.splits import Split
from sandbox.outcome import Outcome

log = logging.getLogger(__name__)

SHARED_DIR_ENV = "AGENTICRS_RAY_SHARED_DIR"   # a folder every node mounts at the same path
NODE_DIR_ENV = "AGENTICRS_RAY_NODE_DIR"       # node-local scratch: input cache, run folders
TASK_OPTIONS = {"num_cpus": 1, "max_retries": 1, "retry_exceptions": False}


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UsageError("--executor ray needs Ray: pip install 'agenticrs[ray]' "
                         "(on the driver and on every node)") from None
    return ray


class RayExecutor:
    """Evaluates jobs as Ray tasks on the cluster at ``address`` (``auto``: the one this
    machine joined; ``HOST:PORT``: a head node; None: a private local cluster).

    ``shared_dir`` (default: ``$AGENTICRS_RAY_SHARED_DIR``), a folder mounted at the same
    path on every node, carries the split instead of the object store. Raises
    ``UsageError`` when Ray is missing, the cluster unreachable, or no node can build the
    sandbox. ``evaluate`` is thread-safe; call ``close`` when done.
    """

    def __init__(self, settings: DesignSettings, cache_dir: Path, address: str | None = None,
                 split: Split | None = None, shared_dir: Path | None = None):
        self.ray = _ray()
        self.split = split or load_split(settings, cache_dir)
        self.dataset_key = dataset_key(settings.dataset, self.split)
        self.settings = settings
        _connect(self.ray, address)
        shared = shared_dir or (Path(os.environ[SHARED_DIR_ENV]) if os.environ.get(SHARED_DIR_ENV) else None)
        self._source = _publish(self.ray, self.split, shared)
        self._run = self.ray.remote(**TASK_OPTIONS)(run_on_node)
        self.tier = self._probe()

    def _probe(self) -> str:
        """The sandbox tier of a node (and a warm worker): fails early on a broken node."""
        probe = self.ray.remote(num_cpus=1, max_retries=1)(probe_node)
        try:
            return self.ray.get(probe.remote(self._source, self.settings))
        except self.ray.exceptions.RayTaskError as e:
            raise UsageError(f"a Ray node cannot evaluate candidates: {e.cause!r}. Install agenticrs and the "
                             "sandbox Python on every node (docs/scale.md)") from e

    def evaluate(self, job: EvaluationJob, run_dir: Path) -> EvaluationResult:
        """Run ``job`` on some node; write its code and logs into ``run_dir``. Errors of the
        harness on the node (not of the candidate) are raised as they would be locally."""
        ref = self._run.remote(self._source, self.settings, job)
        try:
            result, logs = self.ray.get(ref)
        except self.ray.exceptions.RayTaskError as e:   # the harness failed on the node: as locally
            raise (e.cause if isinstance(e.cause, Exception) else e) from e
        except self.ray.exceptions.RayError as e:
            result, logs = lost_result(e), {}
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "agent.py").write_text(job.code)
        for name, text in logs.items():
            (run_dir / Path(name).name).write_text(text)
        return result

    def close(self) -> None:
        self.ray.shutdown()


def _connect(ray: Any, address: str | None) -> None:
    quiet = {"logging_level": logging.WARNING, "log_to_driver": False, "ignore_reinit_error": True}
    try:
        if address is None:   # "local": a new cluster, never one left behind by `ray start`
            ray.init(address="local", include_dashboard=False, **quiet)
        else:
            _require_listening(ray, address)
            ray.init(address=address, **quiet)
    except ConnectionError as e:
        raise UsageError(f"no Ray cluster at {address}: start one with `ray start --head` "
                         f"(docs/scale.md) or drop --address for a local one ({e})") from e
    _route_cluster_errors_to_logging(ray)


def _require_listening(ray: Any, address: str) -> None:
    """Raises ``ConnectionError`` unless the cluster's head answers on its port: Ray itself
    retries a dead address for minutes (``auto`` resolves as Ray does, through its last
    `ray start` or ``RAY_ADDRESS``)."""
    resolve = getattr(getattr(getattr(ray, "_private", None), "services", None), "canonicalize_bootstrap_address", None)
    target = resolve(address) if resolve is not None else address
    if not target or ":" not in target:
        return
    host, _, port = target.rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=10).close()
    except (OSError, ValueError) as e:
        raise ConnectionError(f"nothing answers at {target}: {e}") from e


def _route_cluster_errors_to_logging(ray: Any) -> None:
    """Ray's driver prints the cluster's error messages ("A worker died ...") on stdout,
    whatever ``log_to_driver`` says; on stdout they would corrupt ``--json``. Send them to
    this module's logger instead (pinned Ray: a private hook, left alone if it moved)."""
    worker = getattr(getattr(ray, "_private", None), "worker", None)
    original = getattr(worker, "print_to_stdstream", None)
    if original is None or getattr(original, "_agenticrs", False):
        return

    def to_logging(data: dict, ignore_prefix: bool = False) -> None:
        if data.get("pid") != "raylet":
            return original(data, ignore_prefix=ignore_prefix)
        for line in data.get("lines", []):
            log.warning("ray: %s", line)
    to_logging._agenticrs = True
    worker.print_to_stdstream = to_logging


def _publish(ray: Any, split: Split, shared: Path | None) -> tuple[str, Any]:
    """How tasks get the split: ``("ref", [ObjectRef])`` (boxed in a list so that Ray does
    not fetch it for every task) or ``("path", file)`` on the shared folder."""
    if shared is None:
        return "ref", [ray.put(split)]
    target = shared / "splits" / f"{split.fingerprint}.pkl"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as handle:
            pickle.dump(split, handle, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, target)
    return "path", str(target)


def lost_result(error: Exception) -> EvaluationResult:
    """The classified outcome of a run whose worker or node was lost twice."""
    ray = _ray()
    if isinstance(error, ray.exceptions.OutOfMemoryError):
        outcome, what = Outcome.OUT_OF_MEMORY, "the Ray node ran out of memory and killed the worker"
    elif isinstance(error, ray.exceptions.NodeDiedError):
        outcome, what = Outcome.FAILED, "the Ray node running it left the cluster"
    else:
        outcome, what = Outcome.FAILED, "the Ray worker died"
    first = str(error).strip().splitlines()
    return EvaluationResult(outcome=outcome, tier="ray", error_type=type(error).__name__,
                            message=f"{what}, after one retry ({first[0] if first else type(error).__name__})",
                            traceback_tail=str(error)[-4000:])


# ---- node side: runs in Ray worker processes ---------------------------------------------

_NODE_EXECUTORS: dict[tuple, LocalExecutor] = {}


def _node_dir() -> Path:
    folder = Path(os.environ.get(NODE_DIR_ENV) or Path(tempfile.gettempdir()) / "agenticrs-ray")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _node_executor(source: tuple[str, Any], settings: DesignSettings) -> LocalExecutor:
    """This worker process's executor for the split of ``source`` (built once, cached)."""
    kind, where = source
    key = (kind, str(where), settings.slots, settings.allow_insecure_sandbox)
    if key not in _NODE_EXECUTORS:
        if kind == "ref":
            split = _ray().get(where[0])
        else:
            with open(where, "rb") as handle:
                split = pickle.load(handle)
        _NODE_EXECUTORS[key] = LocalExecutor(settings, _node_dir() / "cache", split=split)
    return _NODE_EXECUTORS[key]


def probe_node(source: tuple[str, Any], settings: DesignSettings) -> str:
    """Ray task: build this worker's executor; its sandbox tier."""
    return _node_executor(source, settings).tier


def run_on_node(source: tuple[str, Any], settings: DesignSettings,
                job: EvaluationJob) -> tuple[EvaluationResult, dict[str, str]]:
    """Ray task: evaluate ``job`` in a free sandbox slot of this node, in a scratch folder
    removed afterwards. Returns the result and the run's log files by name."""
    executor = _node_executor(source, settings)
    runs = _node_dir() / "runs"
    runs.mkdir(exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(dir=runs, prefix="run-"))
    try:
        os.chmod(run_dir, 0o755)   # as an experiment folder: the sandbox uid reads the candidate
        result = executor.evaluate(job, run_dir)
        logs = {p.name: p.read_text(errors="replace") for p in sorted(run_dir.glob("*.log"))}
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    return result, logs
