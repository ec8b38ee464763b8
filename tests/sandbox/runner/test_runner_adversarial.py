"""Adversarial suite (issue 4): hostile candidates, each bounded in time and size, each
also asserting that no process of the run survives.

Tier A is the default and must pass everything; B (bubblewrap without cgroup/uid drop)
runs the isolation cases; C (insecure) only the cases it claims to handle -- attacks
that need namespaces (network, files, kill(-1)) are exactly why C is refused by default.
"""
from __future__ import annotations

import errno
import hashlib
import math
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import (CANDIDATES, SMALL, K, N_USERS, assert_clean, observed, run,
                      wait_then_assert_clean)
from sandbox.outcome import Outcome
from sandbox.runner import IsolationTier, seccomp

pytestmark = pytest.mark.sandbox
A, B, C = IsolationTier.A, IsolationTier.B, IsolationTier.C
ISOLATING = pytest.mark.parametrize("tier", [A, B], ids=["tierA", "tierB"])
ALL = pytest.mark.parametrize("tier", [A, B, C], ids=["tierA", "tierB", "tierC"])
SHORT = SMALL.model_copy(update={"wall_seconds": 3.0})


# --- network ----------------------------------------------------------------------------
@ISOLATING
def test_tcp_and_udp_to_loopback_never_arrive(tier, workspace):
    tcp = socket.create_server(("127.0.0.1", 0))
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    tcp.setblocking(False)
    udp.setblocking(False)
    with tcp, udp:
        r1, out1, id1 = run(tier, workspace, mode="tcp", port=tcp.getsockname()[1])
        r2, out2, id2 = run(tier, workspace, mode="udp", port=udp.getsockname()[1])
        with pytest.raises(BlockingIOError):
            tcp.accept()
        with pytest.raises(BlockingIOError):
            udp.recvfrom(100)
    # Inside, the private loopback may accept the UDP datagram; it never reaches the host.
    assert observed(r1)["tcp"].startswith("err:")
    assert r1.outcome is r2.outcome is Outcome.COMPLETED
    assert_clean(id1, tier)
    assert_clean(id2, tier)


# --- secrets ----------------------------------------------------------------------------
@ISOLATING
def test_labels_shadow_and_dotenv_are_unreadable(tier, workspace):
    paths = [str(workspace.labels), "/etc/shadow", str(workspace.dotenv),
             str(workspace.root / "labels.npy"), str(workspace.inputs.parent)]
    result, output, run_id = run(tier, workspace, mode="read_files", paths=paths)
    assert result.outcome is Outcome.COMPLETED, result.message
    seen = observed(result)
    assert all(v.startswith("err:") for v in seen.values()), seen
    assert "SEALED" not in result.stdout_tail + result.stderr_tail
    assert_clean(run_id, tier)


@ISOLATING
def test_api_key_not_in_environment_nor_proc_environ(tier, workspace, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-SECRET-0123456789")
    result, output, run_id = run(tier, workspace, mode="env")
    assert result.outcome is Outcome.COMPLETED, result.message
    assert observed(result)["found"] == []
    assert "SECRET-0123" not in result.stdout_tail + result.stderr_tail
    assert_clean(run_id, tier)


@ISOLATING
def test_code_data_and_harness_dirs_are_read_only(tier, workspace):
    repo_entry = Path(__file__).resolve().parents[3] / "sandbox" / "entry.py"
    guarded = [repo_entry, CANDIDATES / "behave.py", workspace.inputs / "train.npz"]
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in guarded}
    paths = ["/sandbox/candidate.py", "/sandbox/entry.py", "/sandbox/sdk/agent_sdk.py",
             "/inputs/train.npz", "/inputs/new.txt", "/usr/lib/os-release", *map(str, guarded)]
    result, output, run_id = run(tier, workspace, mode="write_dirs", paths=paths)
    assert result.outcome is Outcome.COMPLETED, result.message
    assert all(v.startswith("err:") for v in observed(result).values()), observed(result)
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in guarded} == before
    assert not (workspace.inputs / "new.txt").exists()
    assert_clean(run_id, tier)


# --- memory, time, processes --------------------------------------------------------------
@ALL
def test_allocating_30_gb_is_out_of_memory(tier, workspace):
    result, _, run_id = run(tier, workspace, mode="alloc")
    assert result.outcome is Outcome.OUT_OF_MEMORY, result.message + result.stderr_tail
    assert result.wall_seconds < 20
    assert_clean(run_id, tier)


@ALL
@pytest.mark.parametrize("mode", ["busy", "sleep", "sigterm"])
def test_loops_sleeps_and_sigterm_ignorers_time_out(tier, workspace, mode):
    result, _, run_id = run(tier, workspace, mode=mode, limits=SHORT)
    assert result.outcome is Outcome.TIMED_OUT
    assert 3.0 <= result.wall_seconds < 6.0
    assert_clean(run_id, tier)


@pytest.mark.parametrize("tier", [A, C], ids=["tierA", "tierC"])
def test_cpu_limit_kills(tier, workspace):
    limits = SMALL.model_copy(update={"cpu_seconds": 1.5, "wall_seconds": 15})
    result, _, run_id = run(tier, workspace, mode="busy", limits=limits)
    assert result.outcome is Outcome.KILLED_BY_LIMIT, result.message
    assert_clean(run_id, tier)


@pytest.mark.parametrize("mode", ["forkbomb", "threads"])
def test_fork_bomb_and_1000_threads_hit_the_process_limit(workspace, mode):
    result, _, run_id = run(A, workspace, mode=mode)
    assert result.outcome is Outcome.KILLED_BY_LIMIT, result.message + result.stderr_tail[-500:]
    assert result.wall_seconds < 20
    assert_clean(run_id, A)


# --- disk ---------------------------------------------------------------------------------
@ALL
@pytest.mark.parametrize("mode", ["bigfile", "manyfiles", "filltmp"])
def test_disk_filling_is_stopped_by_quotas(tier, workspace, mode):
    result, output, run_id = run(tier, workspace, mode=mode)
    assert result.outcome is Outcome.KILLED_BY_LIMIT, result.message + result.stderr_tail[-300:]
    total = sum(p.stat().st_size for p in output.rglob("*") if p.is_file())
    assert total <= SMALL.output_mb * 2**20
    assert_clean(run_id, tier)


# --- escaping the group -------------------------------------------------------------------
@ALL
@pytest.mark.parametrize("mode, outcome", [("daemon_exit", Outcome.COMPLETED),
                                           ("daemon_timeout", Outcome.TIMED_OUT)])
def test_setsid_double_fork_daemon_dies_with_the_run(tier, workspace, mode, outcome):
    # The daemon writes its marker 1 s after the run's normal end, or 1 s after the timeout.
    delay = 1.0 if mode == "daemon_exit" else SHORT.wall_seconds + 1.0
    result, output, run_id = run(tier, workspace, mode=mode, limits=SHORT, delay=delay)
    assert result.outcome is outcome, result.message
    wait_then_assert_clean(run_id, tier, 2.0)
    assert not (output / "marker").exists()


@ALL
def test_100_mb_on_stdout_and_stderr_neither_deadlocks_nor_bloats(tier, workspace):
    result, _, run_id = run(tier, workspace, mode="spew")
    assert result.outcome is Outcome.COMPLETED, result.message
    assert len(result.stdout_tail) <= SMALL.log_bytes and len(result.stderr_tail) <= SMALL.log_bytes
    assert result.stdout_tail.endswith("y\n")
    assert_clean(run_id, tier)


@ISOLATING
def test_kill_minus_one_hits_only_the_sandbox(tier, workspace):
    bystander = subprocess.Popen(["sleep", "30"])
    try:
        result, _, run_id = run(tier, workspace, mode="killall")
        assert bystander.poll() is None, "kill(-1, 9) escaped the sandbox"
        assert result.outcome in (Outcome.COMPLETED, Outcome.FAILED)
        assert_clean(run_id, tier)
    finally:
        bystander.kill()
        bystander.wait()


@ALL
def test_opening_10k_files_fails_on_nofile(tier, workspace):
    result, _, run_id = run(tier, workspace, mode="openfiles")
    assert result.outcome is Outcome.FAILED and result.error_type == "OSError"
    assert "Too many open files" in result.message
    assert_clean(run_id, tier)


@ISOLATING
def test_unshare_mount_and_ptrace_are_refused(tier, workspace):
    result, output, run_id = run(tier, workspace, mode="syscalls", target_pid=os.getpid())
    assert result.outcome is Outcome.COMPLETED, result.message
    seen = observed(result)
    assert seen["unshare_user"] == seen["unshare_net"] == seen["mount"] == seen["ptrace"] == -1, seen
    assert seen["kill_parent"].startswith("err:")
    assert_clean(run_id, tier)


# --- hostile outputs ----------------------------------------------------------------------
@ALL
@pytest.mark.parametrize("params, needle", [
    ({"mode": "symlink_out"}, "symlink"),
    ({"mode": "pickle_out", "n_rows": N_USERS, "k": K}, "pickle"),
    ({"mode": "huge_shape", "k": K}, "shape"),
    ({"nan": True}, "float"),
], ids=["symlink", "pickle", "1e9-rows", "nan"])
def test_hostile_outputs_are_invalid(tier, workspace, params, needle):
    if params.get("mode") == "symlink_out":
        params = {**params, "labels": str(workspace.labels)}
    start = time.monotonic()
    result, _, run_id = run(tier, workspace, **params)
    assert result.outcome is Outcome.INVALID_OUTPUT, result.message
    assert needle in result.message and "SEALED" not in result.message
    assert time.monotonic() - start < 15
    assert_clean(run_id, tier)


@ALL
def test_forged_metrics_file_is_ignored(tier, workspace):
    """A metrics.json beside valid recommendations never scores the run: the run is
    INVALID_OUTPUT (naming the file) and, at tier A, the file never reaches the host."""
    result, output, run_id = run(tier, workspace, mode="forged_metrics")
    assert result.outcome is Outcome.INVALID_OUTPUT, result.message
    assert "metrics.json" in result.message
    if tier is A:
        assert sorted(p.name for p in output.iterdir()) == []
    else:  # written in place; the runner read it nowhere
        assert (output / "metrics.json").exists() and (output / "recommendations.npy").exists()
    assert_clean(run_id, tier)


# --- host-side breakage from candidate output (issue 13) ----------------------------------
SPARSE_8 = [f"f{i}.bin" for i in range(8)]


@ALL
@pytest.mark.parametrize("names, size_mb, outcome", [
    (SPARSE_8, 60, Outcome.KILLED_BY_LIMIT),                    # 480 MB apparent, ~0 on disk
    (["recommendations.npy"], 60, Outcome.INVALID_OUTPUT),      # a 60 MB sparse "array"
], ids=["8-sparse-files", "sparse-recommendations"])
def test_sparse_files_count_at_apparent_size_and_are_never_copied(tier, workspace, names, size_mb,
                                                                   outcome):
    result, output, run_id = run(tier, workspace, mode="sparse", names=names, size_mb=size_mb,
                                 n_rows=N_USERS, k=K)
    assert result.outcome is outcome, result.message + result.stderr_tail[-300:]
    if tier is A:  # nothing the harness does not read reaches the host, dense or not
        assert list(output.iterdir()) == []
    else:  # written in place by the candidate, still sparse: nothing copied them dense
        assert sum(p.lstat().st_blocks * 512 for p in output.iterdir()) < 2**20
    assert_clean(run_id, tier)


@ALL
def test_deep_directory_tree_in_the_output_is_invalid_output(tier, workspace):
    start = time.monotonic()
    result, output, run_id = run(tier, workspace, mode="deeptree", depth=30)  # 6000 chars deep
    assert result.outcome is Outcome.INVALID_OUTPUT, result.message + result.stderr_tail[-300:]
    assert "unexpected entries" in result.message and "d" * 200 in result.message
    assert time.monotonic() - start < 15
    if tier is A:
        assert list(output.iterdir()) == []
    assert_clean(run_id, tier)


@ALL
def test_forged_timings_are_replaced_by_the_parents_clocks(tier, workspace):
    # The candidate patches time.perf_counter, reports fit -3223 s and a 0 s recommend()
    # that sleeps 0.3 s, and silences the entry's true report line.
    result, _, run_id = run(tier, workspace, mode="forge_time")
    assert result.outcome is Outcome.COMPLETED, result.message + result.stderr_tail[-300:]
    assert 0.0 <= result.fit_seconds < 5.0
    assert 0.3 <= result.recommend_seconds < 5.0
    assert result.fit_seconds + result.recommend_seconds <= result.wall_seconds
    assert result.reported_fit_seconds is None  # impossible: rejected
    assert result.reported_recommend_seconds == 0.0  # plausible, kept, but only advisory
    assert result.cpu_seconds is not None and result.cpu_seconds < result.wall_seconds * 2 + 1
    assert_clean(run_id, tier)


@ALL
def test_measured_phase_timings_agree_with_an_honest_candidate(tier, workspace):
    result, _, _ = run(tier, workspace, mode="none", slow_recommend=0.2)
    assert result.outcome is Outcome.COMPLETED, result.message
    assert abs(result.recommend_seconds - result.reported_recommend_seconds) < 0.1
    assert abs(result.fit_seconds - result.reported_fit_seconds) < 0.1


# --- syscall filter and the view of /usr (issue 13, item 4) -------------------------------
def _native_numbers(names) -> dict[str, int]:
    import pyseccomp
    numbers = {name: pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, name) for name in names}
    return {name: nr for name, nr in numbers.items() if nr >= 0}  # < 0: not on this arch


@ISOLATING
def test_syscalls_a_recommender_never_needs_are_denied(tier, workspace):
    """Every name of ``seccomp.DENIED``, clone with a namespace flag and clone3, called
    from candidate code (io_uring_setup, keyctl, add_key, personality... succeed without)."""
    numbers = _native_numbers([*seccomp.DENIED, "clone", "clone3"])
    assert {"io_uring_setup", "keyctl", "personality", "mount", "unshare", "bpf"} <= set(numbers)
    result, _, run_id = run(tier, workspace, mode="denied_syscalls", numbers=numbers)
    assert result.outcome is Outcome.COMPLETED, result.message + result.stderr_tail[-500:]
    seen = observed(result)
    assert seen.pop("seccomp") == "2", "no seccomp filter installed"
    assert seen.pop("clone3") == [-1, errno.ENOSYS]  # libc falls back to clone, checked below
    refused = {name: ret_errno for name, ret_errno in seen.items() if ret_errno != [-1, errno.EPERM]}
    assert refused == {}, f"reachable, or not answered EPERM: {refused}"
    assert len(seen) == len(numbers) - 1
    assert_clean(run_id, tier)


@ISOLATING
def test_numpy_scipy_torch_threads_and_fork_still_work_under_the_filter(tier, workspace):
    limits = SMALL.model_copy(update={"memory_mb": 1536, "wall_seconds": 60})
    result, _, run_id = run(tier, workspace, mode="compute", limits=limits)
    assert result.outcome is Outcome.COMPLETED, result.message + result.stderr_tail[-800:]
    seen = observed(result)
    assert seen["threads"] == 2 and seen["thread_ok"] is True
    assert all(math.isfinite(seen[k]) for k in ("torch", "numpy", "scipy"))
    assert_clean(run_id, tier)


@ISOLATING
def test_only_the_parts_of_usr_the_interpreter_needs_are_visible(tier, workspace):
    hidden = ["/usr/local/etc", "/usr/local/src", "/usr/local", "/usr/share", "/usr/include",
              "/usr/sbin", "/usr/lib/python3/dist-packages", "/etc"]
    present = [p for p in hidden if os.path.exists(p) and p != "/etc"]
    assert "/usr/local/etc" in present or "/usr/share" in present  # the check means something
    result, _, run_id = run(tier, workspace, mode="list_dirs", paths=hidden + ["/usr/bin", "/"])
    assert result.outcome is Outcome.COMPLETED, result.message + result.stderr_tail[-500:]
    seen = observed(result)
    assert {p: seen[p] for p in hidden if not seen[p].startswith("err:") and p != "/etc"} == {}
    assert "passwd" not in seen["/etc"] and "shadow" not in seen["/etc"]
    assert seen["/usr/bin"].startswith("ok:") and "python" in seen["/usr/bin"]
    assert_clean(run_id, tier)
