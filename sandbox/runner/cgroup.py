"""Per-run control groups (v2 when it is the mounted hierarchy, else v1).

Layout: ``<our own cgroup>/agenticrs/<run-id>`` in each needed hierarchy (v1: memory,
pids, cpu, cpuacct and, if mounted, freezer). The child joins the group before it execs
bubblewrap (``open_procs_fds`` + writing ``b"0"`` in the pre-exec hook), so every process
of the run is inside. ``kill_all`` freezes the group (beating fork races), SIGKILLs every
member and waits until it is empty; ``remove`` deletes the directories.
"""
from __future__ import annotations

import errno
import json
import os
import signal
import time
from pathlib import Path

from sandbox.limits import Limits
from sandbox.runner.errors import SandboxSetupError

_V1_REQUIRED = ("memory", "pids", "cpu", "cpuacct")
_V2_REQUIRED = ("memory", "pids", "cpu")
_PARENT = "agenticrs"
_CFS_PERIOD_US = 100_000


def _mounts() -> tuple[dict[str, tuple[Path, str]], tuple[Path, str] | None]:
    """v1 controller -> (mountpoint, mount root) and the v2 (mountpoint, root), if any."""
    v1: dict[str, tuple[Path, str]] = {}
    v2 = None
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        fields, rfields = left.split(), right.split()
        if len(fields) < 5 or len(rfields) < 3:
            continue
        root, mountpoint, fstype = fields[3], Path(fields[4]), rfields[0]
        if fstype == "cgroup2":
            v2 = (mountpoint, root)
        elif fstype == "cgroup":
            for opt in rfields[2].split(","):
                v1.setdefault(opt, (mountpoint, root))
    return v1, v2


def _own_paths() -> dict[str, str]:
    """controller (or "" for v2) -> our cgroup path, from /proc/self/cgroup."""
    own = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for name in controllers.split(",") if controllers else [""]:
            own[name.removeprefix("name=")] = path
    return own


def _join(mountpoint: Path, mount_root: str, own: str) -> Path:
    rel = own[len(mount_root):] if own.startswith(mount_root) else own
    return mountpoint / rel.lstrip("/")


def _write(path: Path, value: str | int, required: bool = True) -> None:
    try:
        path.write_text(str(value))
    except OSError as exc:
        if required:
            raise SandboxSetupError(f"cannot write {value!r} to {path}: {exc}; "
                                    "tier A needs root and writable cgroups") from exc


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _read_key(path: Path, key: str) -> int | None:
    """The value of ``key`` in a flat-keyed file (memory.oom_control, pids.events...)."""
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, ValueError):
        pass
    return None


def _v2_usable(v2: tuple[Path, str] | None) -> bool:
    if v2 is None or v2[0] != Path("/sys/fs/cgroup"):
        return False
    try:
        present = (v2[0] / "cgroup.controllers").read_text().split()
    except OSError:
        return False
    return all(c in present for c in _V2_REQUIRED)


class RunCgroup:
    """The cgroup directories of one run; see the module docstring for the life cycle."""

    def __init__(self, dirs: dict[str, Path], version: int) -> None:
        self.dirs = dirs
        self.version = version

    @classmethod
    def create(cls, run_id: str, limits: Limits, record: Path | None = None) -> "RunCgroup":
        """Create and configure the run's groups; raises ``SandboxSetupError``.

        ``record``: a file where the absolute directories are written *before* they are
        created, so that a sweeper finds them even from another cgroup than ours (the
        paths hang below the creator's own cgroup) after this process died.
        """
        v1, v2 = _mounts()
        own = _own_paths()
        if _v2_usable(v2):
            return cls._create_v2(v2, own.get("", "/"), run_id, limits, record)
        group = cls._v1_dirs(v1, own, run_id)
        if record is not None:
            group.save(record)
        group._mkdirs()
        group._limit_v1(limits)
        return group

    def save(self, record: Path) -> None:
        """Write the directories to ``record`` (JSON), for ``from_record``."""
        record.write_text(json.dumps({"version": self.version,
                                      "dirs": {k: str(v) for k, v in self.dirs.items()}}))

    @classmethod
    def from_record(cls, record: Path) -> "RunCgroup | None":
        """The groups named in ``record``, or None when it is unreadable."""
        try:
            data = json.loads(record.read_text())
            return cls({k: Path(v) for k, v in data["dirs"].items()}, int(data["version"]))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None

    @classmethod
    def existing(cls, run_id: str) -> "RunCgroup":
        """The groups a run named ``run_id`` would have (to sweep a crashed run's leftovers)."""
        v1, v2 = _mounts()
        own = _own_paths()
        if _v2_usable(v2):
            base = _join(*v2, own.get("", "/"))
            return cls({"unified": next((p / _PARENT / run_id for p in (base, v2[0])
                                         if (p / _PARENT / run_id).exists()), base / _PARENT / run_id)}, 2)
        return cls._v1_dirs(v1, own, run_id)

    @classmethod
    def _v1_dirs(cls, v1, own: dict[str, str], run_id: str) -> "RunCgroup":
        missing = [c for c in _V1_REQUIRED if c not in v1]
        if missing:
            raise SandboxSetupError(f"cgroup controllers not mounted: {', '.join(missing)}")
        dirs = {ctrl: _join(*v1[ctrl], own.get(ctrl, "/")) / _PARENT / run_id
                for ctrl in (*_V1_REQUIRED, "freezer") if ctrl in v1}
        return cls(dirs, 1)

    @classmethod
    def _create_v2(cls, v2, own: str, run_id: str, limits: Limits, record: Path | None) -> "RunCgroup":
        base = _join(*v2, own)
        # A v2 group with processes cannot delegate controllers: fall back to the root.
        for parent in (base, v2[0]):
            try:
                _write(parent / "cgroup.subtree_control", "+memory +pids +cpu")
                (parent / _PARENT).mkdir(exist_ok=True)
                _write(parent / _PARENT / "cgroup.subtree_control", "+memory +pids +cpu")
                break
            except (SandboxSetupError, OSError):
                continue
        else:
            raise SandboxSetupError(f"cannot delegate cgroup v2 controllers below {base}")
        group = cls({"unified": parent / _PARENT / run_id}, 2)
        if record is not None:
            group.save(record)
        group._mkdirs()
        d = group.dirs["unified"]
        _write(d / "memory.max", limits.memory_mb * 2**20)
        _write(d / "memory.swap.max", 0, required=False)
        _write(d / "pids.max", limits.max_processes)
        _write(d / "cpu.max", f"{int(limits.cpu_quota * _CFS_PERIOD_US)} {_CFS_PERIOD_US}")
        return group

    def _mkdirs(self) -> None:
        created = []
        for d in self.unique_dirs():
            try:
                d.mkdir(parents=True)
                created.append(d)
            except OSError as exc:
                for done in created:  # only ours: an existing group may belong to a live run
                    done.rmdir()
                raise SandboxSetupError(f"cannot create cgroup {d}: {exc} (run ids must be "
                                        "unique among live runs)") from exc

    def _limit_v1(self, limits: Limits) -> None:
        mem = self.dirs["memory"]
        _write(mem / "memory.limit_in_bytes", limits.memory_mb * 2**20)
        _write(mem / "memory.memsw.limit_in_bytes", limits.memory_mb * 2**20, required=False)
        _write(self.dirs["pids"] / "pids.max", limits.max_processes)
        _write(self.dirs["cpu"] / "cpu.cfs_period_us", _CFS_PERIOD_US)
        _write(self.dirs["cpu"] / "cpu.cfs_quota_us", int(limits.cpu_quota * _CFS_PERIOD_US))

    def unique_dirs(self) -> list[Path]:
        """Distinct directories (co-mounted v1 controllers share one)."""
        return list(dict.fromkeys(self.dirs.values()))

    def open_procs_fds(self) -> list[int]:
        """Write-only, close-on-exec fds of every ``cgroup.procs``; the child writes b"0"."""
        return [os.open(d / "cgroup.procs", os.O_WRONLY | os.O_CLOEXEC) for d in self.unique_dirs()]

    # --- measurements -------------------------------------------------------------
    def cpu_seconds(self) -> float | None:
        if self.version == 2:
            usec = _read_key(self.dirs["unified"] / "cpu.stat", "usage_usec")
            return None if usec is None else usec / 1e6
        ns = _read_int(self.dirs["cpuacct"] / "cpuacct.usage")
        return None if ns is None else ns / 1e9

    def peak_memory_mb(self) -> float | None:
        name = "memory.peak" if self.version == 2 else "memory.max_usage_in_bytes"
        value = _read_int(self._dir("memory") / name)
        return None if value is None else value / 2**20

    def oom_killed(self) -> bool:
        if self.version == 2:
            return (_read_key(self.dirs["unified"] / "memory.events", "oom_kill") or 0) > 0
        return (_read_key(self.dirs["memory"] / "memory.oom_control", "oom_kill") or 0) > 0

    def pids_limited(self) -> bool:
        """True when a fork/clone was refused by ``pids.max``."""
        return (_read_key(self._dir("pids") / "pids.events", "max") or 0) > 0

    def _dir(self, ctrl: str) -> Path:
        return self.dirs["unified"] if self.version == 2 else self.dirs[ctrl]

    def pids(self) -> set[int]:
        found: set[int] = set()
        for d in self.unique_dirs():
            try:
                found.update(int(p) for p in (d / "cgroup.procs").read_text().split())
            except OSError:
                pass
        return found

    # --- teardown -----------------------------------------------------------------
    def kill_all(self, timeout: float = 5.0) -> bool:
        """Freeze, SIGKILL every member, thaw; True when the group is empty afterwards."""
        if not self.pids():
            return True
        self._freeze(True)
        try:
            for pid in self.pids():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        finally:
            self._freeze(False)
        deadline = time.monotonic() + timeout
        while self.pids():
            if time.monotonic() > deadline:
                return False
            for pid in self.pids():  # late forks of a group we could not freeze
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.005)
        return True

    def _freeze(self, frozen: bool) -> None:
        if self.version == 2:
            _write(self.dirs["unified"] / "cgroup.freeze", int(frozen), required=False)
            return
        if "freezer" not in self.dirs:
            return
        state = self.dirs["freezer"] / "freezer.state"
        _write(state, "FROZEN" if frozen else "THAWED", required=False)
        deadline = time.monotonic() + 1.0
        while frozen and time.monotonic() < deadline:
            try:
                if state.read_text().strip() == "FROZEN":
                    return
            except OSError:
                return
            time.sleep(0.002)

    def remove(self, timeout: float = 2.0) -> bool:
        """rmdir every directory (retrying while exiting tasks leave); True when all gone."""
        deadline = time.monotonic() + timeout
        remaining = [d for d in self.unique_dirs() if d.exists()]
        while remaining:
            for d in list(remaining):
                try:
                    d.rmdir()
                    remaining.remove(d)
                except FileNotFoundError:
                    remaining.remove(d)
                except OSError as exc:
                    if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                        return False
            if remaining:
                time.sleep(0.005)
        return True
