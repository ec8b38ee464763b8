"""Spawn one launch, watch it against wall and CPU limits, kill its whole group, reap it."""
from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import time
from dataclasses import dataclass, field
from typing import Callable

from sandbox.limits import Limits
from sandbox.runner.errors import SandboxSetupError
from sandbox.runner.launch import Launch
from sandbox.runner.logs import ReportReader, TailReader

_REPORT_BYTES = 64 * 1024
_CPU_POLL_SECONDS = 0.25


@dataclass
class Execution:
    """What the parent observed. ``returncode`` follows Popen (-N for signal N).

    ``marks``: phase name -> seconds from the spawn to the arrival of the entry's first
    ``phase`` line for it, on the parent's clock (``wall_seconds`` ends at the reaping).
    """

    returncode: int
    wall_seconds: float
    rusage_cpu: float
    rusage_maxrss_mb: float
    timed_out: bool = False
    cpu_exceeded: bool = False
    stdout: str = ""
    stderr: str = ""
    reports: list[dict] = field(default_factory=list)
    readers_drained: bool = True
    marks: dict[str, float] = field(default_factory=dict)


def _spawn(launch: Launch, out_w: int, err_w: int, rep_w: int) -> subprocess.Popen:
    try:
        return subprocess.Popen(
            launch.argv, stdin=subprocess.DEVNULL, stdout=out_w, stderr=err_w,
            pass_fds=(rep_w, *launch.pass_fds), env=launch.env, cwd=launch.cwd,
            preexec_fn=launch.preexec, start_new_session=True, close_fds=True)
    except (OSError, subprocess.SubprocessError) as exc:
        raise SandboxSetupError(f"cannot start {launch.argv[0]}: {exc}; check the set-up "
                                "(bash scripts/setup-sandbox-python.sh as root)") from exc
    finally:
        for fd in (out_w, err_w, rep_w, *launch.parent_fds):
            os.close(fd)


def _watch(pid: int, limits: Limits, cpu_usage: Callable[[], float | None] | None) -> tuple[bool, bool]:
    """Block until exit, wall deadline or CPU budget; return (timed_out, cpu_exceeded)."""
    deadline = time.monotonic() + limits.wall_seconds
    pidfd = os.pidfd_open(pid)
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return True, False
            if poller.poll(min(left, _CPU_POLL_SECONDS) * 1000):
                return False, False
            used = cpu_usage() if cpu_usage else None
            if used is not None and used > limits.cpu_seconds:
                return False, True
    finally:
        os.close(pidfd)


def _parse_reports(raw: bytes) -> list[dict]:
    out = []
    for line in raw.splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict):
            out.append(item)
    return out


def execute(build: Callable[[int], Launch], limits: Limits, *, kill_group: Callable[[int], None],
            cpu_usage: Callable[[], float | None] | None = None) -> Execution:
    """Run ``build(report_fd)`` to its end or to a limit; ``kill_group(pid)`` kills every process.

    ``report_fd`` is the number of the report pipe's write end, the same in the child.

    ``kill_group`` is called on timeout/CPU excess and once more after the main process
    is reaped (to sweep daemons). Output pipes are drained by bounded ``TailReader``s.
    """
    pipes = [os.pipe2(os.O_CLOEXEC) for _ in range(3)]
    report_w = pipes[2][1]
    try:
        launch = build(report_w)
    except BaseException:
        for fd in (fd for pair in pipes for fd in pair):
            os.close(fd)
        raise
    start = time.monotonic()
    proc = _spawn(launch, pipes[0][1], pipes[1][1], report_w)
    readers = [TailReader(pipes[0][0], limits.log_bytes, "stdout"),
               TailReader(pipes[1][0], limits.log_bytes, "stderr"),
               ReportReader(pipes[2][0], _REPORT_BYTES, "report")]
    timed_out, cpu_exceeded = _watch(proc.pid, limits, cpu_usage)
    if timed_out or cpu_exceeded:
        kill_group(proc.pid)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - start
    kill_group(proc.pid)
    join_deadline = time.monotonic() + 5.0  # a surviving daemon (tier C) may hold a pipe
    drained = all([r.join(max(0.0, join_deadline - time.monotonic())) for r in readers])
    return Execution(returncode=proc.returncode, wall_seconds=wall,
                     rusage_cpu=usage.ru_utime + usage.ru_stime,
                     rusage_maxrss_mb=usage.ru_maxrss / 1024, timed_out=timed_out,
                     cpu_exceeded=cpu_exceeded, stdout=readers[0].text(), stderr=readers[1].text(),
                     reports=_parse_reports(readers[2].tail()), readers_drained=drained,
                     marks={k: t - start for k, t in dict(readers[2].marks).items()})


def killpg_quietly(pgid: int) -> None:
    """SIGKILL a process group, ignoring a group that is already gone."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def kill_by_environ(marker: bytes) -> int:
    """SIGKILL every process whose initial environment holds ``marker``; return the count.

    Tier C's best-effort sweep for processes that left the process group (setsid
    daemons). A candidate can dodge it by exec'ing with a new environment: tier C is
    insecure by definition.
    """
    killed = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if marker not in f.read().split(b"\0"):
                    continue
            os.kill(int(pid), signal.SIGKILL)
            killed += 1
        except OSError:
            pass
    return killed
