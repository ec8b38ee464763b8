"""One exception root per package, so the CLI turns every expected error into one line:
``DesignerError``, ``SandboxError``, ``KnowledgeBaseError`` (``SessionStop`` is a signal)."""
from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

from designer.errors import DesignerError
from designer.proposal import SessionStop
from knowledge_base.errors import KnowledgeBaseError
from sandbox.errors import SandboxError

ROOTS = {"designer": DesignerError, "sandbox": SandboxError, "knowledge_base": KnowledgeBaseError}
SKIP = ("sandbox.sdk", "sandbox.entry", "knowledge_base.migrations")   # run inside the sandbox / by alembic


def exceptions_defined_in(package: str):
    root = importlib.import_module(package)
    for info in pkgutil.walk_packages(root.__path__, prefix=f"{package}."):
        if info.name.startswith(SKIP):
            continue
        module = importlib.import_module(info.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, BaseException) and cls.__module__ == info.name:
                yield cls


@pytest.mark.parametrize("package", sorted(ROOTS))
def test_every_exception_of_a_package_is_under_its_root(package):
    found = list(exceptions_defined_in(package))
    assert found, package
    strays = [f"{c.__module__}.{c.__qualname__}" for c in found
              if not issubclass(c, ROOTS[package]) and not issubclass(c, SessionStop)]
    assert not strays, f"not under {ROOTS[package].__name__}: {strays}"
