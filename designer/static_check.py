"""Cheap checks of a candidate module before it reaches the sandbox.

These are early feedback for the proposer (each problem is one sentence that goes into the
next prompt), not a security boundary: the sandbox is. They catch the common mistakes of
generated code (syntax, a missing method of the contract, an import the sandbox does not
have) in milliseconds instead of a sandbox run.
"""
from __future__ import annotations

import ast

from designer.families import SPACE_NAME, declared_space, space_problems

STDLIB_ALLOWED = frozenset({
    "__future__", "abc", "array", "bisect", "collections", "contextlib", "copy", "dataclasses",
    "datetime", "decimal", "enum", "fractions", "functools", "hashlib", "heapq", "itertools",
    "json", "logging", "math", "numbers", "operator", "random", "re", "statistics", "string",
    "struct", "textwrap", "time", "types", "typing", "warnings",
})
"""Pure-computation standard library. Left out on purpose: os, sys, subprocess, socket,
ctypes, multiprocessing, threading, shutil, pathlib, io, pickle, marshal, importlib,
builtins, signal, resource (process, file, network or interpreter control)."""

DEFAULT_ALLOWED_IMPORTS = STDLIB_ALLOWED | {"numpy", "scipy", "torch", "agent_sdk"}

FORBIDDEN_CALLS = frozenset({"__import__", "exec", "eval", "compile", "open", "breakpoint",
                             "input", "globals", "vars"})

ROLE_METHODS: dict[str, tuple[str, ...]] = {
    "recommender": (),
    "ranker": ("score",),
    "reranker": ("rerank",),
    "router": ("route",),
}
BASE_METHODS = ("__init__", "fit", "recommend")


def check_module(code: str, *, role: str | None = None, max_bytes: int = 200_000,
                 allowed_imports: frozenset[str] = DEFAULT_ALLOWED_IMPORTS) -> list[str]:
    """Return the problems of ``code`` as agent module text; an empty list means OK.

    Checks, in order: size <= ``max_bytes``; it parses; it imports only top-level modules
    in ``allowed_imports`` (no relative imports); it calls none of ``FORBIDDEN_CALLS`` and
    does not import ``importlib``-like machinery; it defines ``class Agent`` with
    ``__init__``, ``fit``, ``recommend`` and the extra method of ``role`` (see
    ``ROLE_METHODS``; an unknown role adds nothing). Methods inherited from a base class
    defined in the same module count. A module-level ``SPACE`` (the parameters search may
    tune) must be a valid typed spec whose names ``Agent.__init__`` accepts. Never raises
    on bad input.
    """
    size = len(code.encode("utf-8", "replace"))
    if size > max_bytes:
        return [f"The module is {size} bytes, over the limit of {max_bytes} bytes; write a shorter module."]
    try:
        tree = ast.parse(code)
    except SyntaxError as e:
        return [f"The module does not parse: SyntaxError at line {e.lineno}: {e.msg}."]
    except ValueError as e:  # e.g. null bytes
        return [f"The module does not parse: {e}."]
    return (_import_problems(tree, allowed_imports) + _call_problems(tree)
            + _contract_problems(tree, role) + _space_check(code, tree))


def _import_problems(tree: ast.Module, allowed: frozenset[str]) -> list[str]:
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            problems.append(f"Line {node.lineno}: relative imports are not available; "
                            "the agent is a single module.")
            continue
        names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                 else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
        for name in names:
            top = name.split(".")[0]
            if top not in allowed:
                problems.append(f"Line {node.lineno}: import of '{name}' is not allowed; the "
                                f"sandbox provides only {_allowed_hint(allowed)}.")
    return problems


def _allowed_hint(allowed: frozenset[str]) -> str:
    third = sorted(m for m in allowed if m not in STDLIB_ALLOWED)
    return ", ".join(third) + " and pure-computation standard library modules (math, random, collections, ...)"


def _call_problems(tree: ast.Module) -> list[str]:
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id in FORBIDDEN_CALLS:
            problems.append(f"Line {node.lineno}: calling {node.func.id}() is not allowed in an "
                            "agent module.")
    return problems


def _contract_problems(tree: ast.Module, role: str | None) -> list[str]:
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    agent = classes.get("Agent")
    if agent is None:
        return ["The module defines no top-level class named 'Agent'; the harness "
                "instantiates Agent(**params)."]
    methods = _methods(agent, classes, set())
    required = BASE_METHODS + ROLE_METHODS.get(role or "recommender", ())
    problems = [f"class Agent has no method '{m}' (the {role or 'recommender'} contract needs "
                f"{', '.join(required)})." for m in required if m not in methods]
    problems += _arity_problems(methods)
    return problems


def _methods(cls: ast.ClassDef, classes: dict[str, ast.ClassDef], seen: set[str]) -> dict:
    """Methods of ``cls`` including those of bases defined in the same module."""
    seen.add(cls.name)
    found: dict[str, ast.FunctionDef | ast.AsyncFunctionDef | None] = {}
    for base in cls.bases:
        if isinstance(base, ast.Name) and base.id in classes and base.id not in seen:
            found.update(_methods(classes[base.id], classes, seen))
    for node in cls.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found[node.name] = node
        elif isinstance(node, ast.Assign):  # e.g. recommend = _recommend
            found.update({t.id: None for t in node.targets if isinstance(t, ast.Name)})
    return found


_MIN_ARGS = {"fit": 1, "recommend": 2, "score": 2, "rerank": 4, "route": 1}


def _arity_problems(methods: dict) -> list[str]:
    problems = []
    for name, need in _MIN_ARGS.items():
        fn = methods.get(name)
        if fn is None or fn.args.vararg is not None:
            continue
        positional = len(fn.args.posonlyargs) + len(fn.args.args) - 1  # minus self
        if positional < need:
            problems.append(f"Agent.{name} takes {positional} argument(s) besides self; the "
                            f"contract passes {need}.")
    return problems


def _space_check(code: str, tree: ast.Module) -> list[str]:
    """A declared SPACE parses as typed specs and every name is a constructor argument."""
    problems = space_problems(code)
    if problems:
        return problems
    names = list(declared_space(code))
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    init = _methods(classes["Agent"], classes, set()).get("__init__") if "Agent" in classes else None
    if not names or init is None or init.args.kwarg is not None:
        return []
    accepted = {a.arg for a in init.args.args + init.args.kwonlyargs}
    missing = [n for n in names if n not in accepted]
    return [f"{SPACE_NAME} declares {', '.join(missing)} but Agent.__init__ does not accept "
            f"{'it' if len(missing) == 1 else 'them'}; the harness calls Agent(**params) with "
            f"the {SPACE_NAME} names."] if missing else []
