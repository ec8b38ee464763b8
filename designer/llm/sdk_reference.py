"""The SDK reference of the prompt, read from ``sandbox/sdk/agent_sdk.py`` itself.

The SDK's signatures and docstrings are the single source: this module parses the file
(``ast``, nothing is imported or executed) and renders one line per public helper, the
signature plus the first paragraph of its docstring. A helper added to the SDK appears in
the next prompt without any change here.
"""
from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

import sandbox.sdk

SDK_PATH = Path(sandbox.sdk.__file__).resolve().parent / "agent_sdk.py"
HARNESS_ONLY = frozenset({"load", "save"})
"""``TrainData`` methods the harness uses to move data; a candidate never needs them."""
LINE_CHARS = 320


def sdk_reference(path: Path | str = SDK_PATH) -> str:
    """One line per public SDK helper: ``name(signature) -> returns: first docstring paragraph``.

    ``TrainData`` methods are shown as ``train.<method>(...)``; constants listed in
    ``__all__`` as ``NAME = value``. Returns "" when the file is missing or does not parse
    (the prompt then simply has no SDK section).
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError:
        return ""
    return _reference(text)


@lru_cache(maxsize=8)
def _reference(text: str) -> str:
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return ""
    exported = _exported(tree)
    lines = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
            lines.append(_function_line(node.name, node))
        elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            lines.extend(_class_lines(node))
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 \
                and isinstance(node.targets[0], ast.Name) and node.targets[0].id in exported:
            lines.append(f"- {node.targets[0].id} = {ast.unparse(node.value)}")
    return "\n".join(lines)


def _exported(tree: ast.Module) -> set[str]:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__"
                                                for t in node.targets):
            try:
                return set(ast.literal_eval(node.value))
            except ValueError:
                return set()
    return set()


def _function_line(label: str, node: ast.FunctionDef, drop_self: bool = False) -> str:
    args = node.args
    if drop_self and args.args:
        args = ast.arguments(posonlyargs=args.posonlyargs, args=args.args[1:], vararg=args.vararg,
                             kwonlyargs=args.kwonlyargs, kw_defaults=args.kw_defaults,
                             kwarg=args.kwarg, defaults=args.defaults)
    returns = f" -> {ast.unparse(node.returns)}" if node.returns is not None else ""
    return _line(f"{label}({ast.unparse(args)}){returns}", ast.get_docstring(node))


def _class_lines(node: ast.ClassDef) -> list[str]:
    lines = [_line(f"class {node.name}", ast.get_docstring(node))]
    for item in node.body:
        if isinstance(item, ast.FunctionDef) and not item.name.startswith("_") \
                and item.name not in HARNESS_ONLY:
            label = "train" if node.name == "TrainData" else node.name
            lines.append(_function_line(f"{label}.{item.name}", item, drop_self=True))
    return lines


def _line(signature: str, doc: str | None) -> str:
    first = " ".join((doc or "").strip().split("\n\n")[0].split())
    text = f"- {signature}: {first}" if first else f"- {signature}"
    return text if len(text) <= LINE_CHARS else text[:LINE_CHARS - 5] + " [...]"

