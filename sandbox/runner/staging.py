"""Tier-A plumbing that needs root: output tmpfs, read-only input view, per-slot locks.

The candidate writes into a private tmpfs of ``Limits.output_mb`` (a hard quota: a full
tmpfs answers ENOSPC, nothing reaches the host disk); after the run the parent validates
and copies the regular files into the caller's output folder and unmounts the tmpfs.
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import fcntl
import os
import logging
import tempfile
from pathlib import Path
from typing import Iterator

from sandbox.runner.errors import SandboxSetupError

logger = logging.getLogger(__name__)
STATE_DIR = Path(os.environ.get("AGENTICRS_SANDBOX_STATE", "/run/agenticrs"))
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC, _MS_REMOUNT, _MS_BIND = 1, 2, 4, 8, 32, 4096
_MS_PRIVATE = 1 << 18
_MNT_DETACH = 2
_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def _state_dir() -> Path:
    # 0711: sandbox uids may traverse (bubblewrap resolves bind sources by path) but not list.
    STATE_DIR.mkdir(mode=0o711, parents=True, exist_ok=True)
    os.chmod(STATE_DIR, 0o711)
    return STATE_DIR


def _mount(source: bytes | None, target: Path, fstype: bytes | None, flags: int,
           data: bytes | None, what: str) -> None:
    if _libc.mount(source, str(target).encode(), fstype, flags, data) != 0:
        err = ctypes.get_errno()
        raise SandboxSetupError(f"cannot mount {what} at {target}: {os.strerror(err)}; "
                                "tier A needs root with CAP_SYS_ADMIN")


def _unmount(target: Path) -> None:
    _libc.umount2(str(target).encode(), _MNT_DETACH)


@contextlib.contextmanager
def slot_lock(slot: int) -> Iterator[None]:
    """Serialise runs of one slot (they share a uid) across threads and processes."""
    fd = os.open(_state_dir() / f"slot-{slot}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def output_tmpfs(slot: int, run_id: str, size_mb: int, uid: int) -> Iterator[Path]:
    """A fresh tmpfs of ``size_mb`` owned by ``uid`` (mode 0700), unmounted on exit."""
    target = Path(tempfile.mkdtemp(prefix=f"out-{slot}.{run_id}.", dir=_state_dir()))
    opts = f"size={size_mb}m,nr_inodes=65536,mode=0700,uid={uid},gid={uid}".encode()
    try:
        _mount(b"tmpfs", target, b"tmpfs", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC, opts, "the output tmpfs")
    except SandboxSetupError:
        target.rmdir()
        raise
    try:
        yield target
    finally:
        discard(target)


@contextlib.contextmanager
def readonly_view(slot: int, source: Path, run_id: str) -> Iterator[Path]:
    """A read-only bind mount of ``source`` at a path every uid can traverse.

    bubblewrap resolves bind sources by path as the sandbox uid, so a caller's inputs
    folder below a 0700 directory (e.g. pytest's tmp) would be unreachable without it.
    """
    target = Path(tempfile.mkdtemp(prefix=f"in-{slot}.{run_id}.", dir=_state_dir()))
    try:
        _mount(str(source).encode(), target, None, _MS_BIND, None, "the inputs")
        _mount(None, target, None, _MS_PRIVATE, None, "the inputs private")
        _mount(None, target, None, _MS_REMOUNT | _MS_BIND | _MS_RDONLY | _MS_NOSUID | _MS_NODEV,
               None, "the inputs read-only")
    except SandboxSetupError:
        _unmount(target)
        target.rmdir()
        raise
    try:
        yield target
    finally:
        _unmount(target)
        target.rmdir()


def cgroup_record(slot: int, run_id: str) -> Path:
    """Where a run of ``slot`` records its cgroup directories (see ``RunCgroup.create``)."""
    return _state_dir() / f"cg-{slot}.{run_id}.json"


def stale_runs() -> dict[tuple[int, str], list[Path]]:
    """(slot, run id) -> what runs of every slot left in the state folder.

    Staging folders (``in-``/``out-``) and cgroup records (``cg-``). Only a slot whose lock
    is held (``slot_lock``, or ``idle_slot`` yielding True) may be swept: runs of one slot
    never overlap, so what is found then belongs to a parent that died (SIGKILL, OOM).
    """
    found: dict[tuple[int, str], list[Path]] = {}
    for path in _state_dir().iterdir():
        kind, _, rest = path.name.partition("-")
        slot_str, _, tail = rest.partition(".")
        if kind in ("in", "out", "cg") and slot_str.isdigit() and "." in tail:
            found.setdefault((int(slot_str), tail.rsplit(".", 1)[0]), []).append(path)
    return found


@contextlib.contextmanager
def idle_slot(slot: int) -> Iterator[bool]:
    """Take the lock of ``slot`` without waiting; yields False when a live run holds it."""
    fd = os.open(_state_dir() / f"slot-{slot}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def discard(path: Path) -> bool:
    """Unmount (lazily) and remove a staging mount point; True when it is gone.

    Never walks what is below: once unmounted the folder is empty, and a candidate-made
    tree (deeper than PATH_MAX, say) vanishes with its tmpfs. A folder that is still not
    empty is left for the next sweep.
    """
    _unmount(path)
    try:
        path.rmdir()
    except FileNotFoundError:
        pass
    except OSError as exc:
        logger.error("cannot remove sandbox staging folder %s: %s", path, exc)
        return False
    return True
