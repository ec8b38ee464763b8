"""The view of /usr a sandbox gets and the syscall filter's availability, without a sandbox."""
from __future__ import annotations

import os
import sys

import pytest

from sandbox.runner import IsolationTier, SandboxSetupError, probe_tier
from sandbox.runner import seccomp
from sandbox.runner.mounts import elf_interpreter, interpreter_view, resolve_links


def test_symlink_chains_are_resolved_component_by_component(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "ld.so").write_text("")
    (tmp_path / "lib").symlink_to("real")                      # relative
    (tmp_path / "lib64").mkdir()
    (tmp_path / "lib64" / "ld.so").symlink_to(tmp_path / "lib" / "ld.so")  # absolute, via a link
    links, real = resolve_links(str(tmp_path / "lib64" / "ld.so"))
    assert real == str(tmp_path / "real" / "ld.so")
    assert links == [(str(tmp_path / "lib64" / "ld.so"), str(tmp_path / "lib" / "ld.so")),
                     (str(tmp_path / "lib"), "real")]


def test_the_loader_of_this_interpreter_is_found():
    loader = elf_interpreter(os.path.realpath(sys.executable))
    assert loader and os.path.exists(loader)
    assert elf_interpreter(__file__) is None


def test_the_view_of_usr_excludes_what_the_interpreter_does_not_need():
    view = interpreter_view(sys.executable)
    args = " ".join(view.bwrap_args())
    assert all(p.startswith("/usr/") for p in view.binds)
    for hidden in ("/usr/local/etc", "/usr/local/src", "/usr/share", "/usr/include"):
        assert hidden not in args
    assert not any(p in ("/usr", "/usr/lib", "/usr/bin") for p in view.binds)


def test_without_libseccomp_tier_a_is_unavailable_and_says_why(monkeypatch):
    if probe_tier()[0] is not IsolationTier.A:
        pytest.skip("tier A unavailable here anyway")

    def missing():
        raise SandboxSetupError("no seccomp filter: Unable to find libseccomp")
    seccomp.program.cache_clear()
    monkeypatch.setattr(seccomp, "_library", missing)
    try:
        tier, reasons = probe_tier()
        assert tier is IsolationTier.B and any("libseccomp" in r for r in reasons), reasons
    finally:
        seccomp.program.cache_clear()
