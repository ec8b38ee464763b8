"""The syscall filter of the bubblewrap tiers: deny what a recommender never needs.

Compiled once per process with libseccomp (through ``pyseccomp``) into a classic BPF
program, handed to bubblewrap as ``--seccomp FD`` (a memfd); bubblewrap installs it, with
``no_new_privs``, right before it execs the interpreter, so it binds the candidate and
every process it starts. Denied calls fail with EPERM (``clone3``: ENOSYS, so that libc
falls back to ``clone``, whose namespace flags are then checked); everything else is
allowed. Syscalls of another ABI than the native one (i386 via ``int 0x80``, x32) kill
the process: libseccomp's default for a foreign architecture.
"""
from __future__ import annotations

import errno
import functools
import os

from sandbox.runner.errors import SandboxSetupError

DENIED = (
    # kernel attack surface with a long CVE history, useless to numpy/torch
    "io_uring_setup", "io_uring_enter", "io_uring_register", "bpf", "perf_event_open",
    "userfaultfd", "keyctl", "add_key", "request_key", "personality",
    # other processes and namespaces
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd", "unshare", "setns",
    # mounts and file systems
    "mount", "umount2", "pivot_root", "chroot", "open_tree", "move_mount", "fsopen", "fsconfig",
    "fsmount", "fspick", "mount_setattr", "name_to_handle_at", "open_by_handle_at", "quotactl",
    "swapon", "swapoff",
    # the machine itself
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "reboot",
    "acct", "syslog", "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "sethostname",
    "setdomainname", "iopl", "ioperm", "lookup_dcookie", "uselib", "vhangup",
)
# (CLONE_NEWTIME, 0x80, lies in clone()'s exit-signal byte: only unshare/clone3 take it.)
NAMESPACE_FLAGS = {"CLONE_NEWNS": 0x00020000, "CLONE_NEWCGROUP": 0x02000000, "CLONE_NEWUTS": 0x04000000,
                   "CLONE_NEWIPC": 0x08000000, "CLONE_NEWUSER": 0x10000000, "CLONE_NEWPID": 0x20000000,
                   "CLONE_NEWNET": 0x40000000}
_HINT = ("tier A needs libseccomp (Debian: libseccomp2) and the pyseccomp package: "
         "run `bash scripts/setup.sh`")


def _library():
    try:
        import pyseccomp
    except (ImportError, RuntimeError, OSError) as exc:  # RuntimeError: no libseccomp.so
        raise SandboxSetupError(f"no seccomp filter: {exc}; {_HINT}") from exc
    return pyseccomp


@functools.lru_cache(maxsize=1)
def program() -> bytes:
    """The compiled BPF program; raises ``SandboxSetupError`` without libseccomp."""
    sc = _library()
    filt = sc.SyscallFilter(sc.ALLOW)
    for name in DENIED:
        try:
            filt.add_rule(sc.ERRNO(errno.EPERM), name)
        except (OSError, ValueError, RuntimeError):
            pass  # a syscall this architecture does not have
    for flag in NAMESPACE_FLAGS.values():  # clone(flags, ...): flags is arg 0 on x86-64 and arm64
        filt.add_rule(sc.ERRNO(errno.EPERM), "clone", sc.Arg(0, sc.MASKED_EQ, flag, flag))
    try:
        filt.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
    except (OSError, ValueError, RuntimeError):
        pass
    with os.fdopen(os.memfd_create("agenticrs-seccomp-build", os.MFD_CLOEXEC), "w+b") as f:
        filt.export_bpf(f)
        f.seek(0)
        return f.read()


def program_fd() -> int:
    """A close-on-exec memfd holding ``program()``, positioned at 0 (for ``--seccomp``)."""
    fd = os.memfd_create("agenticrs-seccomp", os.MFD_CLOEXEC)
    os.write(fd, program())
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def available() -> str | None:
    """None when the filter can be compiled here, else the reason it cannot."""
    try:
        program()
    except SandboxSetupError as exc:
        return str(exc)
    return None
