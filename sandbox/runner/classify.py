"""Turn what the parent observed into an ``Outcome`` (and a message for the author)."""
from __future__ import annotations

import errno
import signal
from dataclasses import dataclass

from sandbox.limits import Limits
from sandbox.outcome import Outcome
from sandbox.runner.process import Execution

_QUOTA_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}
_LIMIT_SIGNALS = {signal.SIGXCPU: "CPU time limit (RLIMIT_CPU)",
                  signal.SIGXFSZ: "file size limit (RLIMIT_FSIZE)"}


@dataclass(frozen=True)
class GroupStats:
    """Cgroup measurements of a tier-A run (None fields where unavailable)."""

    oom_killed: bool
    pids_limited: bool
    cpu_seconds: float | None
    peak_memory_mb: float | None


@dataclass(frozen=True)
class Verdict:
    """``outcome`` None means: exited cleanly, the output decides (COMPLETED/INVALID)."""

    outcome: Outcome | None
    message: str
    error_type: str | None = None
    traceback: str = ""


def exit_signal(returncode: int, via_bwrap: bool) -> int | None:
    """The signal that ended the candidate; bwrap reports a child's signal N as 128+N."""
    if returncode < 0:
        return -returncode
    if via_bwrap and 128 < returncode <= 128 + 64:
        return returncode - 128
    return None


def final_report(reports: list[dict]) -> dict | None:
    """The last ok/error line of the entry's own process (forked children are ignored)."""
    starts = [r for r in reports if r.get("event") == "start"]
    pid = starts[0].get("pid") if starts else None
    finals = [r for r in reports if r.get("event") in ("ok", "error")
              and (pid is None or r.get("pid") == pid)]
    return finals[-1] if finals else None


def _signame(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def classify(exe: Execution, limits: Limits, stats: GroupStats | None, via_bwrap: bool) -> Verdict:
    """Classify in order of certainty: parent-side facts first, candidate claims last."""
    sig = exit_signal(exe.returncode, via_bwrap)
    report = final_report(exe.reports) or {}
    error_type = report.get("error_type") if report.get("event") == "error" else None
    if exe.timed_out:
        return Verdict(Outcome.TIMED_OUT, f"wall-clock limit of {limits.wall_seconds:g} s reached; "
                       "every process of the run was killed")
    if exe.cpu_exceeded:
        return Verdict(Outcome.KILLED_BY_LIMIT, f"CPU limit of {limits.cpu_seconds:g} s reached (all processes)")
    if (stats and stats.oom_killed) or error_type == "MemoryError":
        return Verdict(Outcome.OUT_OF_MEMORY, f"memory limit of {limits.memory_mb} MB reached",
                       error_type or "MemoryError", report.get("traceback", ""))
    if sig in _LIMIT_SIGNALS:
        return Verdict(Outcome.KILLED_BY_LIMIT, f"killed by {_signame(sig)}: {_LIMIT_SIGNALS[sig]}")
    if error_type is not None:
        return _classify_error(report, stats, limits)
    if stats and stats.pids_limited and exe.returncode != 0:
        return Verdict(Outcome.KILLED_BY_LIMIT, f"process/thread limit of {limits.max_processes} reached")
    if sig is not None:
        return Verdict(Outcome.FAILED, f"killed by {_signame(sig)}", _signame(sig))
    if exe.returncode != 0:
        return Verdict(Outcome.FAILED, f"exited with code {exe.returncode} without an error report "
                       "(os._exit or a crash in native code?)", "ExitCode")
    return Verdict(None, "exited cleanly")


def _refused_fork(report: dict) -> bool:
    """A fork refused with EAGAIN: RLIMIT_NPROC (set next to pids.max, the two race at the
    limit) refused it before the cgroup counted a refusal."""
    return (report.get("error_type") == "BlockingIOError" and report.get("errno") == errno.EAGAIN
            and "fork" in report.get("traceback", ""))


def _classify_error(report: dict, stats: GroupStats | None, limits: Limits) -> Verdict:
    error_type, phase = report.get("error_type"), report.get("phase", "?")
    message = f"{error_type} in {phase}: {report.get('message', '')}"
    tb = report.get("traceback", "")
    if (stats and stats.pids_limited) or _refused_fork(report):
        return Verdict(Outcome.KILLED_BY_LIMIT, f"process/thread limit of {limits.max_processes} "
                       f"reached ({message})", error_type, tb)
    if report.get("errno") in _QUOTA_ERRNOS:
        return Verdict(Outcome.KILLED_BY_LIMIT, f"disk quota reached: output {limits.output_mb} MB, "
                       f"/tmp {limits.tmp_mb} MB ({message})", error_type, tb)
    if phase == "output":
        return Verdict(Outcome.INVALID_OUTPUT, f"recommend() returned an unsavable value ({message})",
                       error_type, tb)
    return Verdict(Outcome.FAILED, message, error_type, tb)
