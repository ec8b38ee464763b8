"""How what the parent observed becomes an outcome, for the cases a live run hits by a race."""
from __future__ import annotations

import errno

from sandbox.limits import Limits
from sandbox.outcome import Outcome
from sandbox.runner.classify import GroupStats, classify
from sandbox.runner.process import Execution

FORK_TRACEBACK = ('Traceback (most recent call last):\n  File "/sandbox/candidate.py", line 9, in fit\n'
                  '    os.fork()\nBlockingIOError: [Errno 11] Resource temporarily unavailable\n')


def _error_exit(error_type: str, err: int | None, traceback: str) -> Execution:
    reports = [{"event": "start", "pid": 7},
               {"event": "error", "pid": 7, "phase": "fit", "error_type": error_type,
                "message": "[Errno 11] Resource temporarily unavailable", "errno": err,
                "traceback": traceback}]
    return Execution(returncode=1, wall_seconds=0.5, rusage_cpu=0.4, rusage_maxrss_mb=30.0, reports=reports)


def test_a_fork_refused_by_the_process_rlimit_is_the_process_limit_too() -> None:
    """RLIMIT_NPROC and pids.max sit at the same count: whichever refuses the fork first,
    the author reads that the process limit was reached, not that their code failed."""
    no_cgroup_refusal = GroupStats(oom_killed=False, pids_limited=False, cpu_seconds=0.4, peak_memory_mb=30.0)
    verdict = classify(_error_exit("BlockingIOError", errno.EAGAIN, FORK_TRACEBACK), Limits(),
                       no_cgroup_refusal, via_bwrap=True)
    assert verdict.outcome is Outcome.KILLED_BY_LIMIT
    assert f"process/thread limit of {Limits().max_processes} reached" in verdict.message


def test_eagain_elsewhere_is_the_candidates_failure() -> None:
    tb = FORK_TRACEBACK.replace("os.fork()", "sock.recv(10)")
    verdict = classify(_error_exit("BlockingIOError", errno.EAGAIN, tb), Limits(), None, via_bwrap=True)
    assert verdict.outcome is Outcome.FAILED
    assert verdict.message.startswith("BlockingIOError in fit")
