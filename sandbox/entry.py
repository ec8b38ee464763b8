"""The script that runs INSIDE the isolation: load inputs, run one candidate agent, save.

Executed as a file (``python -I -B entry.py SPEC_JSON``), never imported as
``sandbox.entry``: it may import only the standard library, numpy and the agent SDK
(torch only if the candidate imports it). ``SPEC_JSON`` holds ``candidate`` (the .py
file), ``inputs`` (folder with train.npz and users.npy), ``output`` (writable folder),
``sdk`` (folder holding agent_sdk.py), ``config`` ({"k", "params", "fidelity", "seed"}),
``threads`` and ``report_fd``.

Protocol with the parent, over the inherited pipe ``report_fd`` (one JSON object a line):
first ``{"event": "start", "pid": P}``, then ``{"event": "phase", "phase": "fit"}`` right
before ``fit()`` and ``{"event": "phase", "phase": "recommend"}`` right before
``recommend()`` (the parent stamps their arrival with its own clock), then from the same
pid either
``{"event": "ok", "fit_seconds": .., "recommend_seconds": ..}`` (exit 0) or
``{"event": "error", "phase": .., "error_type": .., "message": .., "errno": ..,
"traceback": ..}`` (exit 1, traceback also on stderr). The candidate runs in this very
process and CAN forge these lines (timings, error types); the parent measures wall time,
CPU time, memory and the phase durations itself and keeps the timings of the ``ok`` line
as advisory only.
"""
import json
import os
import sys
import time
import traceback

_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")
_TAIL = 4000
# Bound before any candidate code runs: patching os.write, json.dumps or time.perf_counter
# later changes nothing here (the parent's own clocks are what counts anyway).
_write, _dumps, _clock = os.write, json.dumps, time.perf_counter


def _report(fd, **fields):
    if fd is None:
        return
    try:
        _write(fd, (_dumps(fields, default=str) + "\n").encode())
    except OSError:
        pass  # the candidate may have closed the pipe; the parent copes


def _set_threads(spec):
    """Thread counts must be in the environment BEFORE numpy/torch are imported."""
    config = spec["config"]  # k, params, fidelity, seed: RunConfig, resolved by the runner
    n = int(spec["threads"])
    for var in _THREAD_VARS:
        os.environ[var] = str(n)
    os.environ["AGENTICRS_FIDELITY"] = str(config["fidelity"])
    os.environ["AGENTICRS_INPUTS"] = str(spec.get("inputs", ""))  # a pipeline reads its sources there
    return int(n)


def _torch_threads(n, seed):
    """Threads and seed for torch, only if the candidate imported it (importing costs ~3 s)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    torch.manual_seed(seed)


def _import_candidate(path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("candidate", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["candidate"] = module
    spec.loader.exec_module(module)
    return module


def _save(output, recs):
    """Save as int64 when the values are integers; otherwise as-is for the parent to reject."""
    import numpy as np

    arr = np.asarray(recs)
    if arr.dtype.kind in "iu":
        arr = arr.astype(np.int64, copy=False)
    elif arr.dtype.kind == "f" and arr.size and np.isfinite(arr).all() and (arr == np.round(arr)).all():
        arr = arr.astype(np.int64)
    path = os.path.join(output, "recommendations.npy")
    try:
        os.unlink(path)  # never write through a link the candidate planted
    except FileNotFoundError:
        pass
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as f:
        np.save(f, arr, allow_pickle=False)


def _run(spec, n_threads, state, fd=None):
    state["phase"] = "setup"
    import random

    import numpy as np

    sys.path.insert(0, spec["sdk"])
    from agent_sdk import TrainData

    config = spec["config"]
    train = TrainData.load(spec["inputs"])
    users = np.load(os.path.join(spec["inputs"], "users.npy"), allow_pickle=False)
    seed = int(config["seed"])
    random.seed(seed)
    np.random.seed(seed % 2**32)
    state["phase"] = "import"
    module = _import_candidate(spec["candidate"])
    state["phase"] = "init"
    agent = module.Agent(**config["params"])
    state["phase"] = "fit"
    _torch_threads(n_threads, seed)
    _report(fd, event="phase", phase="fit")
    start = _clock()
    agent.fit(train)
    state["fit_seconds"] = _clock() - start
    state["phase"] = "recommend"
    if "torch" in sys.modules and sys.modules["torch"].get_num_threads() != n_threads:
        sys.modules["torch"].set_num_threads(n_threads)  # torch imported lazily in fit()
    _report(fd, event="phase", phase="recommend")
    start = _clock()
    recs = agent.recommend(users, int(config["k"]))
    state["recommend_seconds"] = _clock() - start
    state["phase"] = "output"
    _save(spec["output"], recs)


def _exit(code):
    # os._exit: candidate threads and atexit hooks must not keep the run alive.
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    os._exit(code)


def main(argv):
    spec = json.loads(argv[1])
    fd = spec.get("report_fd")
    n_threads = _set_threads(spec)
    _report(fd, event="start", pid=os.getpid())
    state = {"phase": "setup"}
    try:
        _run(spec, n_threads, state, fd)
    except BaseException as exc:  # noqa: BLE001 - SystemExit from a candidate is a failure too
        tb = traceback.format_exc()
        _report(fd, event="error", pid=os.getpid(), phase=state["phase"],
                error_type=type(exc).__name__, message=str(exc)[:_TAIL],
                errno=getattr(exc, "errno", None), traceback=tb[-_TAIL:],
                fit_seconds=state.get("fit_seconds"))
        sys.stderr.write(tb)
        _exit(1)
    _report(fd, event="ok", pid=os.getpid(), fit_seconds=state["fit_seconds"],
            recommend_seconds=state["recommend_seconds"])
    _exit(0)


if __name__ == "__main__":
    main(sys.argv)
