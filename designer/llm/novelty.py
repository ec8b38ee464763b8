"""Near-duplicate detection of agent modules, before they cost a sandbox run.

Two modules are compared on a normal form of their code: docstrings dropped, imports
sorted and moved first, and every name the module itself binds (variables, arguments,
functions, classes other than ``Agent``, ``self.`` attributes, import aliases) renamed in
order of first appearance, with the string literals that spell one of them (``SPACE`` keys,
``params["..."]``). Equal normal forms mean similarity 1.0; otherwise the Jaccard
similarity of the normal forms' token 5-shingles. Renamed variables and reordered imports
therefore score 1.0; a changed constant or expression scores below it.
"""
from __future__ import annotations

import ast
import builtins
import re
from dataclasses import dataclass
from typing import Any, Callable

from designer.llm.context_view import lookup_code

SHINGLE = 5
KEPT = frozenset(dir(builtins)) | {"Agent", "self", "cls"}
CONTRACT = frozenset({"fit", "recommend", "score", "rerank", "route"})
TOKEN = re.compile(r"[A-Za-z_]\w*|\d+(?:\.\d*)?(?:e[-+]?\d+)?|\S")


@dataclass(frozen=True)
class Match:
    """The closest evaluated module: its label (e.g. ``experiment 12``) and similarity in [0, 1]."""

    label: str
    similarity: float


def normal_form(code: str) -> str:
    """The normal form of ``code`` (see the module docstring); ``code`` itself if it does not parse."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return code
    _drop_docstrings(tree)
    imports = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    rest = [n for n in tree.body if not isinstance(n, (ast.Import, ast.ImportFrom))]
    tree.body = sorted(imports, key=_import_key) + rest
    _Renamer(_bound(tree)).visit(tree)
    return ast.unparse(tree)


def similarity(a: str, b: str) -> float:
    """Similarity of two normal forms: 1.0 if equal, else the Jaccard index of token shingles."""
    if a == b:
        return 1.0
    sa, sb = _shingles(a), _shingles(b)
    return len(sa & sb) / len(sa | sb) if sa or sb else 1.0


def closest(code: str, others: list[tuple[str, str]]) -> Match | None:
    """The most similar of ``others`` (label, normal form) to module ``code``; None if empty."""
    mine = normal_form(code)
    best: Match | None = None
    for label, form in others:
        score = similarity(mine, form)
        if best is None or score > best.similarity:
            best = Match(label, score)
            if score == 1.0:
                break
    return best


MAX_COMPARED = 200


def evaluated_modules(context: Any, code_for: Callable[[Any], "str | None"] | None,
                      cache: dict[str, str]) -> list[tuple[str, str]]:
    """(label, normal form) of the parent and of the newest ``MAX_COMPARED`` distinct modules
    of ``context.history`` that completed a cheap or full run; ``cache`` maps code hash ->
    normal form across calls. Modules ``code_for`` cannot read are skipped."""
    out = [("the parent", normal_form(context.parent_code))] if context.parent_code else []
    seen: set[str] = set()
    for e in reversed(context.history):
        if len(seen) >= MAX_COMPARED:
            break
        if e.stage not in ("cheap", "full") or e.status.value != "COMPLETED" or e.code_hash in seen:
            continue
        seen.add(e.code_hash)
        if e.code_hash not in cache:
            code = lookup_code(code_for, e)
            if code is None:
                continue
            cache[e.code_hash] = normal_form(code)
        out.append((f"experiment {e.id}", cache[e.code_hash]))
    return out


def _shingles(text: str) -> set[tuple[str, ...]]:
    tokens = TOKEN.findall(text)
    if len(tokens) < SHINGLE:
        return {tuple(tokens)}
    return {tuple(tokens[i:i + SHINGLE]) for i in range(len(tokens) - SHINGLE + 1)}


def _drop_docstrings(tree: ast.AST) -> None:
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body \
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]


def _import_key(node: ast.stmt) -> str:
    if isinstance(node, ast.Import):
        return "import " + ",".join(a.name for a in node.names)
    return f"from {node.module} import " + ",".join(a.name for a in node.names)


def _bound(tree: ast.Module) -> dict[str, str]:
    """Names the module binds, in breadth-first order, -> ``n0``, ``n1``, ..."""
    names: dict[str, str] = {}

    def bind(name: str) -> None:
        if name not in KEPT and name not in CONTRACT and not name.startswith("__"):
            names.setdefault(name, f"n{len(names)}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            bind(node.id)
        elif isinstance(node, ast.arg):
            bind(node.arg)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bind(node.name)
        elif isinstance(node, ast.alias):
            bind(node.asname or node.name.split(".")[0])
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and node.value.id == "self" and isinstance(node.ctx, ast.Store):
            bind(node.attr)
    return names


class _Renamer(ast.NodeTransformer):
    """Renames every occurrence of the names ``_bound`` found; drops annotations."""

    def __init__(self, names: dict[str, str]) -> None:
        self.names = names

    def visit_Name(self, node: ast.Name) -> ast.AST:
        node.id = self.names.get(node.id, node.id)
        return node

    def visit_arg(self, node: ast.arg) -> ast.AST:
        node.arg, node.annotation = self.names.get(node.arg, node.arg), None
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        node.name, node.returns = self.names.get(node.name, node.name), None
        self.generic_visit(node)
        return node

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        node.name = self.names.get(node.name, node.name)
        self.generic_visit(node)
        return node

    def visit_alias(self, node: ast.alias) -> ast.AST:
        renamed = self.names.get(node.asname or node.name.split(".")[0])
        if renamed is not None:
            node.asname = renamed
        return node

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        # a string naming a bound name (a SPACE key, a params[...] key) is renamed with it
        if isinstance(node.value, str) and node.value in self.names:
            node.value = self.names[node.value]
        return node

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.value, ast.Name) and node.value.id == "self":
            node.attr = self.names.get(node.attr, node.attr)
        return node
