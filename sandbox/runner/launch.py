"""What to exec for one run: argv, environment, inherited fds and the pre-exec hook.

Tiers A and B wrap the interpreter in bubblewrap. The entry script, the candidate and the
SDK are handed over as fds opened by the parent (``--ro-bind-data``: copied into the
sandbox), so the sandbox uid needs no path to them. Besides them it sees only the parts
of /usr its interpreter needs (``mounts.interpreter_view``), /etc/ld.so.cache, the
interpreter's prefixes, the inputs (read-only), the output, and a private /proc, /dev and
size-limited /tmp; the root itself is read-only. With ``seccomp`` a syscall filter
(``seccomp.program``) is installed before the interpreter starts.
"""
from __future__ import annotations

import json
import math
import os
import resource
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from sandbox.limits import Limits
from sandbox.runner import seccomp as syscall_filter
from sandbox.runner.models import IsolationTier, RunRequest

ENTRY = Path(__file__).resolve().parent.parent / "entry.py"
SDK_FILE = Path(__file__).resolve().parent.parent / "sdk" / "agent_sdk.py"
PIPELINE_SDK_FILE = SDK_FILE.with_name("agent_pipeline.py")   # the composition runner
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
               "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")
_MIB = 2**20


@dataclass
class Launch:
    """One ready-to-spawn command. The parent closes ``parent_fds`` right after spawning."""

    argv: list[str]
    env: dict[str, str]
    cwd: str
    pass_fds: list[int] = field(default_factory=list)
    parent_fds: list[int] = field(default_factory=list)
    preexec: Callable[[], None] | None = None


def sandbox_env(request: RunRequest, run_id: str) -> dict[str, str]:
    """The whole environment of the candidate: nothing of the parent's is inherited."""
    threads = str(request.threads)
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "TMPDIR": "/tmp", "USER": "sandbox",
           "LOGNAME": "sandbox", "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1",
           "PYTHONHASHSEED": str(request.config.seed % 2**32),
           "AGENTICRS_FIDELITY": str(request.config.fidelity),
           "AGENTICRS_RUN_ID": run_id}
    env.update({var: threads for var in THREAD_VARS})
    return env


def _entry_config(request: RunRequest) -> dict[str, Any]:
    """The config as ``sandbox/entry.py`` reads it (plain JSON: no pydantic in the sandbox)."""
    return request.config.model_dump(include={"k", "params", "fidelity", "seed"})


def rlimits(limits: Limits, *, nproc: int | None, memory: bool) -> list[tuple[int, tuple[int, int]]]:
    """The rlimits of a run. ``memory`` adds RLIMIT_DATA (tiers without a memory cgroup)."""
    cpu = math.ceil(limits.cpu_seconds)
    fsize = max(limits.output_mb, limits.tmp_mb) * _MIB
    out = [(resource.RLIMIT_CPU, (cpu, cpu + 5)),
           (resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files)),
           (resource.RLIMIT_FSIZE, (fsize, fsize)),
           (resource.RLIMIT_CORE, (0, 0))]
    if nproc is not None:
        out.append((resource.RLIMIT_NPROC, (nproc, nproc)))
    if memory:
        out.append((resource.RLIMIT_DATA, (limits.memory_mb * _MIB, limits.memory_mb * _MIB)))
    return out


def make_preexec(limits_list, cgroup_fds: list[int], uid: int | None) -> Callable[[], None]:
    """Pre-exec hook: join the cgroup (as root), set rlimits, then drop to ``uid``.

    Runs in the forked child; it only makes plain syscalls (no locks, no imports).
    """
    def preexec() -> None:
        for fd in cgroup_fds:
            os.write(fd, b"0")  # "0" = the writing process
        for res, value in limits_list:
            resource.setrlimit(res, value)
        if uid is not None:
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
    return preexec


def _open(path: Path, flags: int) -> int:
    return os.open(path, flags | os.O_CLOEXEC)


def _root_binds(usr_args: list[str] | None) -> list[str]:
    """``usr_args`` (all of /usr when None) plus the merged-/usr symlinks (or real dirs)."""
    args = ["--ro-bind", "/usr", "/usr"] if usr_args is None else list(usr_args)
    for name in ("bin", "sbin", "lib", "lib32", "lib64"):
        host = Path("/") / name
        if host.is_symlink():
            args += ["--symlink", os.readlink(host), str(host)]
        elif host.is_dir():
            args += ["--ro-bind", str(host), str(host)]
    if Path("/etc/ld.so.cache").exists():
        args += ["--ro-bind", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    return args


def bwrap_launch(request: RunRequest, *, run_id: str, python: str, python_paths: list[str],
                 inputs_dir: Path, output_dir: Path, report_fd: int, as_root: bool,
                 usr_args: list[str] | None = None, seccomp: bool = False) -> Launch:
    """bubblewrap command for tiers A and B (no network, no host files but the listed ones).

    ``inputs_dir``/``output_dir`` must be reachable by path for the uid running bwrap.
    ``usr_args``: bwrap arguments that mount the needed parts of /usr (None: all of it).
    """
    fds = {"entry": _open(ENTRY, os.O_RDONLY), "candidate": _open(request.candidate, os.O_RDONLY),
           "sdk": _open(SDK_FILE, os.O_RDONLY), "pipeline_sdk": _open(PIPELINE_SDK_FILE, os.O_RDONLY)}
    if seccomp:
        fds["seccomp"] = syscall_filter.program_fd()
    env = sandbox_env(request, run_id)
    # --as-pid-1: the interpreter is the namespace init, so bwrap reaps it (rusage) and
    # its exit kills every other process of the namespace (daemons included).
    argv = ["bwrap", "--unshare-all", "--unshare-user", "--disable-userns", "--as-pid-1", "--die-with-parent",
            "--new-session", "--clearenv", "--hostname", "sandbox", *_root_binds(usr_args)]
    if as_root:  # bwrap keeps capabilities when its real uid is 0
        argv += ["--cap-drop", "ALL"]
    for path in python_paths:
        argv += ["--ro-bind", path, path]
    argv += ["--proc", "/proc", "--dev", "/dev",
             "--size", str(request.limits.tmp_mb * _MIB), "--tmpfs", "/tmp",
             "--dir", "/sandbox/sdk",
             "--ro-bind-data", str(fds["entry"]), "/sandbox/entry.py",
             "--ro-bind-data", str(fds["candidate"]), "/sandbox/candidate.py",
             "--ro-bind-data", str(fds["sdk"]), "/sandbox/sdk/agent_sdk.py",
             "--ro-bind-data", str(fds["pipeline_sdk"]), "/sandbox/sdk/agent_pipeline.py",
             "--ro-bind", str(inputs_dir), "/inputs",
             "--bind", str(output_dir), "/output",
             "--remount-ro", "/", "--chdir", "/tmp"]
    if seccomp:
        argv += ["--seccomp", str(fds["seccomp"])]
    for key, value in env.items():
        argv += ["--setenv", key, value]
    spec = {"candidate": "/sandbox/candidate.py", "inputs": "/inputs", "output": "/output",
            "sdk": "/sandbox/sdk", "config": _entry_config(request), "report_fd": report_fd,
            "threads": request.threads}
    argv += ["--", python, "-I", "-B", "/sandbox/entry.py", json.dumps(spec)]
    fd_list = list(fds.values())
    return Launch(argv=argv, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")}, cwd="/",
                  pass_fds=fd_list, parent_fds=fd_list)


def direct_launch(request: RunRequest, *, run_id: str, python: str, report_fd: int) -> Launch:
    """Tier C: the interpreter runs on the host, with a clean environment only."""
    env = sandbox_env(request, run_id)
    env["HOME"] = env["TMPDIR"] = str(request.output)
    spec = {"candidate": str(request.candidate.resolve()), "inputs": str(request.inputs.resolve()),
            "output": str(request.output.resolve()), "sdk": str(SDK_FILE.parent),
            "config": _entry_config(request), "report_fd": report_fd,
            "threads": request.threads}
    return Launch(argv=[python, "-I", "-B", str(ENTRY), json.dumps(spec)], env=env,
                  cwd=str(request.output))


def count_tasks(uid: int) -> int:
    """Threads currently owned by ``uid`` (RLIMIT_NPROC counts them all)."""
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            if os.stat(f"/proc/{pid}").st_uid == uid:
                total += len(os.listdir(f"/proc/{pid}/task"))
        except OSError:
            pass
    return total


def tier_rlimits(tier: IsolationTier, limits: Limits) -> list:
    """rlimits per tier; NPROC only where it means something (not for root)."""
    if tier is IsolationTier.A:  # dedicated uid: the whole count is ours
        return rlimits(limits, nproc=limits.max_processes + 4, memory=False)
    uid = os.getuid()
    nproc = None if uid == 0 else count_tasks(uid) + limits.max_processes
    return rlimits(limits, nproc=nproc, memory=True)
