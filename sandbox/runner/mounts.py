"""Which parts of the host's /usr a sandbox sees: only what its interpreter needs.

``interpreter_view(python)`` asks the sandbox interpreter itself: its real binary, its
standard library, the folders of every shared object it maps after importing the
stdlib's C extensions, and the chain of symlinks that leads the kernel to its ELF
loader (``/lib64/ld-linux-x86-64.so.2`` -> ``/usr/lib64/...`` -> ``/lib/...``). The rest
of /usr (``/usr/local``, ``/usr/share``, ``/usr/include``, other binaries and the
system's site-packages) is not mounted. numpy, scipy and torch live in the sandbox venv,
which is bound whole (``python_paths``).
"""
from __future__ import annotations

import json
import os
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sandbox.runner.errors import SandboxSetupError

_PT_INTERP = 3
# Imported by the probe so that the libraries of the stdlib's C extensions are mapped.
_PROBE = """
import importlib, json, os, sys
for name in ("ctypes", "hashlib", "ssl", "lzma", "bz2", "zlib", "decimal", "uuid", "sqlite3",
             "mmap", "_multiprocessing"):
    try:
        importlib.import_module(name)
    except ImportError:  # an interpreter built without it: nothing to mount for it
        pass
maps = set()
for line in open("/proc/self/maps"):
    fields = line.split()
    if len(fields) > 5 and fields[5].startswith("/"):
        maps.add(fields[5])
print(json.dumps({"executable": os.path.realpath(sys.executable),
                  "stdlib": os.path.dirname(os.__file__), "maps": sorted(maps)}))
"""


@dataclass(frozen=True)
class InterpreterView:
    """bubblewrap needs: ``binds`` (real paths, bound read-only at the same place) and
    ``symlinks`` ((link, target) to recreate, in resolution order)."""

    binds: tuple[str, ...]
    symlinks: tuple[tuple[str, str], ...]

    def bwrap_args(self) -> list[str]:
        args = []
        for link, target in self.symlinks:
            args += ["--symlink", target, link]
        for path in self.binds:
            args += ["--ro-bind", path, path]
        return args


def interpreter_view(python: str) -> InterpreterView:
    """What of /usr ``python`` needs; raises ``SandboxSetupError`` when it does not run."""
    try:
        out = subprocess.run([python, "-I", "-c", _PROBE], capture_output=True, check=True,
                             timeout=60, env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
        info = json.loads(out.stdout)
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        raise SandboxSetupError(f"sandbox Python {python} does not run: {exc}") from exc
    wanted = [info["executable"], info["stdlib"],
              *(os.path.dirname(m) for m in info["maps"] if m != info["executable"])]
    symlinks: list[tuple[str, str]] = []
    loader = elf_interpreter(info["executable"])
    if loader:
        links, real = resolve_links(loader)
        symlinks += links
        wanted.append(real)
    binds = _outermost(p for p in wanted if p.startswith("/usr/") and os.path.exists(p))
    needed = [(link, target) for link, target in symlinks
               if not any(_below(link, b) for b in binds) and Path(link).parts[1] == "usr"]
    return InterpreterView(tuple(binds), tuple(dict.fromkeys(needed)))


def elf_interpreter(path: str) -> str | None:
    """The PT_INTERP (dynamic loader) path of a 64-bit ELF file, or None."""
    with open(path, "rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF" or head[4] != 2:
            return None
        order = "<" if head[5] == 1 else ">"
        phoff, = struct.unpack_from(order + "Q", head, 0x20)
        phentsize, phnum = struct.unpack_from(order + "HH", head, 0x36)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
        for i in range(phnum):
            base = i * phentsize
            if struct.unpack_from(order + "I", table, base)[0] == _PT_INTERP:
                offset, = struct.unpack_from(order + "Q", table, base + 8)
                size, = struct.unpack_from(order + "Q", table, base + 32)
                f.seek(offset)
                return f.read(size).rstrip(b"\0").decode()
    return None


def resolve_links(path: str, max_links: int = 40) -> tuple[list[tuple[str, str]], str]:
    """Resolve ``path`` component by component: ([(symlink, its target), ...], real path)."""
    links: list[tuple[str, str]] = []
    current = Path("/")
    todo = list(Path(path).parts[1:])
    while todo:
        name = todo.pop(0)
        if name == "..":
            current = current.parent
            continue
        candidate = current / name
        if not candidate.is_symlink():
            current = candidate
            continue
        if len(links) >= max_links:
            raise SandboxSetupError(f"too many symlinks resolving {path}")
        target = os.readlink(candidate)
        links.append((str(candidate), target))
        todo = [*Path(target).parts[1 if target.startswith("/") else 0:], *todo]
        current = Path("/") if target.startswith("/") else current
    return links, str(current)


def _below(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _outermost(paths) -> list[str]:
    """The paths not below another one of them, sorted."""
    unique = sorted(set(paths))
    return [p for p in unique if not any(p != q and _below(p, q) for q in unique)]
