"""Find the best isolation tier of this machine and build a runner for it (fail closed)."""
from __future__ import annotations

import json
import logging
import os
import shutil
import stat
import subprocess
import sys
import uuid
from pathlib import Path

from sandbox.limits import Limits
from sandbox.runner.cgroup import RunCgroup
from sandbox.runner import seccomp
from sandbox.runner.errors import InsecureSandboxError, SandboxSetupError
from sandbox.runner.mounts import interpreter_view
from sandbox.runner.models import IsolationTier
from sandbox.runner.runner import UID_BASE, SandboxRunner

logger = logging.getLogger(__name__)
DEFAULT_PYTHON = "/opt/agenticrs/sandbox-python/bin/python"
_SETUP_HINT = "run `bash scripts/setup-sandbox-python.sh` as root"
_ORDER = [IsolationTier.A, IsolationTier.B, IsolationTier.C]


def sandbox_python(explicit: str | None = None) -> str | None:
    """``explicit`` / $AGENTICRS_SANDBOX_PYTHON / the default path, if it exists."""
    path = explicit or os.environ.get("AGENTICRS_SANDBOX_PYTHON") or DEFAULT_PYTHON
    return path if os.path.isfile(path) else None


def world_executable(path: str) -> bool:
    """True when any uid can execute ``path`` (every parent directory searchable)."""
    real = Path(os.path.realpath(path))
    if not os.stat(real).st_mode & stat.S_IXOTH:
        return False
    return all(os.stat(p).st_mode & stat.S_IXOTH for p in real.parents)


def _bwrap_works(uid: int | None) -> str | None:
    """None when bwrap can unshare everything (as ``uid``), else the reason it cannot."""
    def drop() -> None:
        if uid is not None:
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
    try:
        proc = subprocess.run(["bwrap", "--unshare-all", "--unshare-user", "--as-pid-1", "--die-with-parent",
                               "--ro-bind", "/", "/", "true"],
                              capture_output=True, timeout=10, preexec_fn=drop, env={"PATH": "/usr/bin:/bin"})
    except (OSError, subprocess.SubprocessError) as exc:
        return f"bubblewrap cannot start: {exc}"
    if proc.returncode != 0:
        return f"bubblewrap cannot create namespaces: {proc.stderr.decode(errors='replace').strip()}"
    return None


def _tier_a_blockers() -> list[str]:
    reasons = []
    if os.geteuid() != 0:
        return ["not root: no per-run cgroup and no dedicated uid (tier A needs root)"]
    python = sandbox_python()
    if python is None:
        reasons.append(f"no sandbox Python at {DEFAULT_PYTHON}: {_SETUP_HINT}")
    elif not world_executable(python):
        reasons.append(f"sandbox Python {python} is not executable by other uids: {_SETUP_HINT}")
    try:
        group = RunCgroup.create(f"probe-{uuid.uuid4().hex[:8]}", Limits())
        group.remove()
    except SandboxSetupError as exc:
        reasons.append(str(exc))
    if (why := _bwrap_works(UID_BASE)) is not None:
        reasons.append(why)
    if (why := seccomp.available()) is not None:
        reasons.append(why)
    return reasons


def probe_tier() -> tuple[IsolationTier, list[str]]:
    """The best tier available here and the reasons it is not better (empty for A).

    A needs root, writable cgroups, bubblewrap usable by an unprivileged uid, the
    sandbox Python and libseccomp (the syscall filter); B needs bubblewrap (and gets the
    filter when libseccomp is there); C always works but is insecure.
    """
    if shutil.which("bwrap") is None:
        return IsolationTier.C, ["bubblewrap not installed: apt-get install bubblewrap"]
    reasons = _tier_a_blockers()
    if not reasons:
        return IsolationTier.A, []
    if (why := _bwrap_works(None)) is not None:
        return IsolationTier.C, reasons + [why]
    return IsolationTier.B, reasons


def python_paths(python: str) -> list[str]:
    """Host folders the interpreter needs, outside /usr (which every sandbox binds)."""
    try:
        out = subprocess.run([python, "-I", "-c", "import sys, json; print(json.dumps([sys.prefix, sys.base_prefix]))"],
                             capture_output=True, check=True, timeout=30, env={"PATH": "/usr/bin:/bin"})
    except (OSError, subprocess.SubprocessError) as exc:
        raise SandboxSetupError(f"sandbox Python {python} does not run: {exc}; {_SETUP_HINT}") from exc
    prefixes = json.loads(out.stdout) + [str(Path(os.path.realpath(python)).parent.parent)]
    keep = [p for p in dict.fromkeys(prefixes) if p != "/usr" and not p.startswith("/usr/")]
    return [p for p in keep if not any(p != q and p.startswith(q.rstrip("/") + "/") for q in keep)]


def _choose_python(tier: IsolationTier, explicit: str | None) -> str:
    python = sandbox_python(explicit)
    if python is not None:
        if tier is IsolationTier.A and not world_executable(python):
            raise SandboxSetupError(f"sandbox Python {python} is not executable by the sandbox uid "
                                    f"(a 0700 parent directory?); {_SETUP_HINT}")
        return python
    if explicit:
        raise SandboxSetupError(f"sandbox Python {explicit} does not exist; {_SETUP_HINT}")
    if tier is IsolationTier.A:
        raise SandboxSetupError(f"no sandbox Python at {DEFAULT_PYTHON}; {_SETUP_HINT}")
    return sys.executable


def make_runner(*, allow_insecure: bool = False, force_tier: IsolationTier | None = None,
                slot: int = 0, python: str | None = None) -> SandboxRunner:
    """A runner at the best tier (or ``force_tier``, which may not exceed the best).

    Raises ``InsecureSandboxError`` when the tier cannot isolate network and labels (C)
    and ``allow_insecure`` is False; ``SandboxSetupError`` when ``force_tier`` is not
    available. Logs a warning for every degraded tier.
    """
    best, reasons = probe_tier()
    tier = IsolationTier(force_tier) if force_tier is not None else best
    if _ORDER.index(tier) < _ORDER.index(best):
        raise SandboxSetupError(f"isolation tier {tier.value} unavailable (best is {best.value}): "
                                + "; ".join(reasons))
    if tier is not IsolationTier.A and force_tier is not None:
        reasons = reasons + [f"tier {tier.value} forced by the caller"]
    if not tier.secure and not allow_insecure:
        raise InsecureSandboxError(
            f"isolation tier {tier.value} cannot isolate the network nor the sealed labels ("
            + "; ".join(reasons) + "). Fix the set-up, or pass --allow-insecure-sandbox "
            "(allow_insecure=True) to run candidates anyway on a machine you can afford to lose.")
    if tier is not IsolationTier.A:
        logger.warning("sandbox degraded to tier %s%s: %s", tier.value,
                       "" if tier.secure else " (INSECURE)", "; ".join(reasons))
    chosen = _choose_python(tier, python)
    if tier is IsolationTier.C:
        runner = SandboxRunner(tier, slot=slot, python=chosen, python_paths=python_paths(chosen))
    else:
        runner = SandboxRunner(tier, slot=slot, python=chosen, python_paths=python_paths(chosen),
                               usr_args=interpreter_view(chosen).bwrap_args(),
                               seccomp=seccomp.available() is None)
    if tier is IsolationTier.A:
        runner.sweep_leftovers()  # what processes killed earlier left, on any idle slot
    return runner


