"""``SandboxRunner``: one implementation of the ``Runner`` protocol for every tier.

Life cycle of a run: validate the request -> (A) lock the slot, mount the output tmpfs,
create the cgroup -> spawn (bwrap for A/B, the bare interpreter for C) -> watch wall and
CPU limits -> kill the whole group and reap -> classify -> validate the output ->
(A) copy ``recommendations.npy`` out (nothing else, size-checked), remove the cgroup,
unmount. Output folders are only ever scanned at their top level, never walked.
"""
from __future__ import annotations

import contextlib
import logging
import os
import stat
import uuid
from pathlib import Path

import numpy as np

from sandbox.outcome import Outcome
from sandbox.runner.cgroup import RunCgroup
from sandbox.runner.classify import GroupStats, Verdict, classify, exit_signal, final_report
from sandbox.runner.errors import InvalidOutputError, InvalidRequestError, SandboxSetupError
from sandbox.runner.launch import Launch, bwrap_launch, direct_launch, make_preexec, tier_rlimits
from sandbox.runner.models import IsolationTier, RunRequest, RunResult
from sandbox.runner.output import (RECOMMENDATIONS, copy_expected, read_recommendations,
                                   recommendations_cap, scan_output)
from sandbox.runner.process import Execution, execute, kill_by_environ, killpg_quietly
from sandbox.runner.timing import phase_seconds, plausible
from sandbox.runner.staging import (cgroup_record, discard, idle_slot, output_tmpfs, readonly_view,
                                    slot_lock, stale_runs)

logger = logging.getLogger(__name__)
UID_BASE = int(os.environ.get("AGENTICRS_SANDBOX_UID_BASE", "61000"))


def _input_shape(inputs: Path, world_readable: bool) -> tuple[int, int]:
    """(number of users to recommend for, n_items); raises ``InvalidRequestError``."""
    for name in ("train.npz", "users.npy"):
        path = inputs / name
        if not path.is_file():
            raise InvalidRequestError(f"{path} missing: the harness must write train.npz and users.npy")
        if world_readable and not os.stat(path).st_mode & stat.S_IROTH:
            raise InvalidRequestError(f"{path} is not world-readable; the sandbox uid must read it "
                                      "(write inputs with umask 022)")
    if world_readable and os.stat(inputs).st_mode & 0o005 != 0o005:
        raise InvalidRequestError(f"{inputs} must be world-readable and searchable (chmod 755)")
    users = np.load(inputs / "users.npy", mmap_mode="r", allow_pickle=False)
    with np.load(inputs / "train.npz", allow_pickle=False) as z:
        return int(users.shape[0]), int(z["n_items"])


def _check_request(request: RunRequest, tier: IsolationTier) -> tuple[int, int]:
    if not request.candidate.is_file():
        raise InvalidRequestError(f"candidate {request.candidate} is not a file")
    if not request.output.is_dir() or any(request.output.iterdir()):
        raise InvalidRequestError(f"output {request.output} must be an existing empty folder")
    return _input_shape(request.inputs, world_readable=tier is IsolationTier.A)


class SandboxRunner:
    """Runs candidates at one isolation ``tier``; build it with ``make_runner``.

    ``slot`` selects the sandbox uid (``UID_BASE + slot``, tier A): give each concurrent
    worker its own slot; runs of one slot are serialised by a lock. ``usr_args``: bwrap
    arguments mounting the parts of /usr the interpreter needs (None: all of /usr);
    ``seccomp``: install the syscall filter (tiers A and B).
    """

    def __init__(self, tier: IsolationTier, *, slot: int = 0, python: str,
                 python_paths: list[str], usr_args: list[str] | None = None,
                 seccomp: bool = False) -> None:
        self.tier = tier
        self.slot = slot
        self.python = python
        self.python_paths = python_paths
        self.usr_args = usr_args
        self.seccomp = seccomp
        self.uid = UID_BASE + slot

    def run(self, request: RunRequest) -> RunResult:
        """Run ``request``; candidate failures are outcomes, only ``SandboxError`` is raised."""
        n_rows, n_items = _check_request(request, self.tier)
        run_id = request.config.run_id or f"s{self.slot}-{uuid.uuid4().hex[:12]}"
        with contextlib.ExitStack() as stack:
            in_dir, out_dir, cgroup = self._prepare(stack, request, run_id)
            exe = self._execute(request, run_id, (in_dir, out_dir), cgroup)
            stats = self._teardown(cgroup)
            verdict = classify(exe, request.limits, stats, via_bwrap=self.tier is not IsolationTier.C)
            recs = None
            if verdict.outcome is None:
                verdict, recs = self._check_output(out_dir, request, n_rows, n_items)
            if out_dir != request.output and verdict.outcome is Outcome.COMPLETED:
                copy_expected(out_dir, request.output, RECOMMENDATIONS,
                              recommendations_cap(n_rows, request.config.k))
        if self.tier is IsolationTier.A:
            self.sweep_leftovers()
        return self._result(exe, verdict, stats, recs)

    # --- steps --------------------------------------------------------------------
    def _prepare(self, stack: contextlib.ExitStack, request: RunRequest,
                 run_id: str) -> tuple[Path, Path, RunCgroup | None]:
        """(inputs as the sandbox sees them, output folder it writes, cgroup or None)."""
        if self.tier is not IsolationTier.A:
            return request.inputs, request.output, None
        stack.enter_context(slot_lock(self.slot))
        self.sweep_leftovers(held=self.slot)
        in_dir = stack.enter_context(readonly_view(self.slot, request.inputs.resolve(), run_id))
        out_dir = stack.enter_context(output_tmpfs(self.slot, run_id, request.limits.output_mb, self.uid))
        record = cgroup_record(self.slot, run_id)
        cgroup = RunCgroup.create(run_id, request.limits, record=record)
        stack.callback(self._drop_cgroup, cgroup, record)
        return in_dir, out_dir, cgroup

    def sweep_leftovers(self, held: int | None = None) -> None:
        """Kill and remove what crashed runs of *any* idle slot left (tier A; needs root).

        Called at the start of every run (``held``: the slot whose lock we hold) and at
        its end. A slot whose lock a live run holds is skipped; a crashed run's cgroup is
        found through its record, wherever the crashed parent's own cgroup was.
        """
        by_slot: dict[int, dict[str, list[Path]]] = {}
        for (slot, run_id), paths in stale_runs().items():
            by_slot.setdefault(slot, {})[run_id] = paths
        for slot, runs in sorted(by_slot.items()):
            with contextlib.ExitStack() as stack:
                if slot != held and not stack.enter_context(idle_slot(slot)):
                    continue
                for run_id, paths in runs.items():
                    paths = [p for p in paths if os.path.lexists(p)]  # gone: cleaned by its run
                    if paths:
                        self._sweep_run(run_id, paths)

    def _sweep_run(self, run_id: str, paths: list[Path]) -> None:
        logger.warning("sweeping leftovers of crashed sandbox run %s: %s", run_id, [str(p) for p in paths])
        records = [p for p in paths if p.name.startswith("cg-")]
        groups = [g for g in map(RunCgroup.from_record, records) if g is not None]
        if not groups:  # no (readable) record: the groups below our own cgroup
            groups = [RunCgroup.existing(run_id)]
        if all([self._remove_cgroup(g) for g in groups]):
            for record in records:
                record.unlink(missing_ok=True)
        for path in paths:
            if path not in records:
                discard(path)

    def _drop_cgroup(self, cgroup: RunCgroup, record: Path) -> None:
        if self._remove_cgroup(cgroup):
            record.unlink(missing_ok=True)

    @staticmethod
    def _remove_cgroup(cgroup: RunCgroup) -> bool:
        if not (cgroup.kill_all() and cgroup.remove()):
            logger.error("cgroup %s could not be emptied/removed; processes may survive",
                         cgroup.unique_dirs())
            return False
        return True

    def _launch(self, request: RunRequest, run_id: str, dirs: tuple[Path, Path],
                cgroup: RunCgroup | None, report_fd: int) -> Launch:
        if self.tier is IsolationTier.C:
            launch = direct_launch(request, run_id=run_id, python=self.python, report_fd=report_fd)
        else:
            launch = bwrap_launch(request, run_id=run_id, python=self.python,
                                  python_paths=self.python_paths, inputs_dir=dirs[0],
                                  output_dir=dirs[1],
                                  report_fd=report_fd, as_root=os.geteuid() == 0 and cgroup is None,
                                  usr_args=self.usr_args, seccomp=self.seccomp)
        cgroup_fds = cgroup.open_procs_fds() if cgroup else []
        launch.parent_fds += cgroup_fds
        uid = self.uid if self.tier is IsolationTier.A else None
        launch.preexec = make_preexec(tier_rlimits(self.tier, request.limits), cgroup_fds, uid)
        return launch

    def _execute(self, request: RunRequest, run_id: str, dirs: tuple[Path, Path],
                 cgroup: RunCgroup | None) -> Execution:
        def kill_group(pid: int) -> None:
            if cgroup is not None:
                cgroup.kill_all()
            killpg_quietly(pid)
            if self.tier is IsolationTier.C:
                kill_by_environ(f"AGENTICRS_RUN_ID={run_id}".encode())

        exe = execute(lambda report_fd: self._launch(request, run_id, dirs, cgroup, report_fd),
                      request.limits, kill_group=kill_group,
                      cpu_usage=cgroup.cpu_seconds if cgroup else None)
        if not exe.reports and self.tier is not IsolationTier.C and "bwrap:" in exe.stderr:
            raise SandboxSetupError(f"bubblewrap could not start the sandbox: {exe.stderr.strip()[-500:]}")
        return exe

    @staticmethod
    def _teardown(cgroup: RunCgroup | None) -> GroupStats | None:
        if cgroup is None:
            return None
        return GroupStats(oom_killed=cgroup.oom_killed(), pids_limited=cgroup.pids_limited(),
                          cpu_seconds=cgroup.cpu_seconds(), peak_memory_mb=cgroup.peak_memory_mb())

    def _check_output(self, out_dir: Path, request: RunRequest, n_rows: int,
                      n_items: int) -> tuple[Verdict, np.ndarray | None]:
        """Quota (apparent sizes), then surprises, then the ids; never walks the folder.
        (The verdict, the recommendations read when COMPLETED.)"""
        try:
            scan = scan_output(out_dir, {RECOMMENDATIONS})
        except OSError as exc:  # e.g. a tier-B/C candidate made the folder unreadable
            return Verdict(Outcome.INVALID_OUTPUT, f"output folder unreadable: {exc}", "InvalidOutputError"), None
        if scan.apparent_bytes > request.limits.output_mb * 2**20:
            return Verdict(Outcome.KILLED_BY_LIMIT, f"output quota exceeded: {scan.apparent_bytes / 2**20:.1f} MB "
                           f"> {request.limits.output_mb} MB (apparent size: sparse files count in full)"), None
        if scan.surprises:
            return Verdict(Outcome.INVALID_OUTPUT, "unexpected entries in the output folder: "
                           f"{', '.join(scan.surprises[:5])}; only {RECOMMENDATIONS} (written by the "
                           "entry) belongs there: keep scratch files in /tmp", "InvalidOutputError"), None
        try:
            recs = read_recommendations(out_dir, n_rows, request.config.k, n_items)
        except InvalidOutputError as exc:
            return Verdict(Outcome.INVALID_OUTPUT, str(exc), "InvalidOutputError"), None
        return Verdict(Outcome.COMPLETED, "completed"), recs

    def _result(self, exe: Execution, verdict: Verdict, stats: GroupStats | None,
                recs: np.ndarray | None) -> RunResult:
        report = final_report(exe.reports) or {}
        sig = exit_signal(exe.returncode, self.tier is not IsolationTier.C)
        fit, recommend = phase_seconds(exe.marks, exe.wall_seconds, verdict.outcome is Outcome.COMPLETED)
        return RunResult(
            outcome=verdict.outcome, exit_code=-sig if sig else exe.returncode,
            wall_seconds=exe.wall_seconds,
            cpu_seconds=stats.cpu_seconds if stats and stats.cpu_seconds is not None else exe.rusage_cpu,
            peak_memory_mb=(stats.peak_memory_mb if stats and stats.peak_memory_mb is not None
                            else exe.rusage_maxrss_mb),
            tier=self.tier, stdout_tail=exe.stdout, stderr_tail=exe.stderr,
            error_type=verdict.error_type, message=verdict.message,
            traceback_tail=verdict.traceback, fit_seconds=fit, recommend_seconds=recommend,
            reported_fit_seconds=_advisory(report, "fit_seconds", exe.wall_seconds),
            reported_recommend_seconds=_advisory(report, "recommend_seconds", exe.wall_seconds),
            recommendations=recs)


def _advisory(report: dict, key: str, wall: float) -> float | None:
    """The entry's own claim for ``key``, dropped (and logged) when it is impossible."""
    value = report.get(key)
    checked = plausible(value, wall)
    if value is not None and checked is None:
        logger.warning("sandbox entry reported an impossible %s=%r (wall %.3f s): ignored", key, value, wall)
    return checked
