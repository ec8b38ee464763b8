"""Turn a model's answer into module text (three accepted forms).

1. A complete module in a fenced python block: always accepted as is. With several
   blocks, the last one defining ``class Agent`` wins (models often show a fragment
   first). An answer that is bare Python defining ``class Agent`` is accepted too.
2. SEARCH/REPLACE edit blocks (aider style) applied to the base code::

       <<<<<<< SEARCH
       old lines
       =======
       new lines
       >>>>>>> REPLACE

3. JSON ``{"rationale": str, "code": str}`` or ``{"rationale": str, "params": {...}}``.

``AnswerParseError`` messages are written to be sent back to the model.
"""
from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from designer.llm.errors import AnswerParseError

RATIONALE_CHARS = 2000

_FENCE = re.compile(r"^[ \t]*```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)^[ \t]*```[ \t]*$",
                    re.MULTILINE | re.DOTALL)
_EDIT = re.compile(r"^[ \t]*<{5,9}[ \t]*SEARCH[^\n]*\n(.*?)^[ \t]*={5,9}[ \t]*\n(.*?)"
                   r"^[ \t]*>{5,9}[ \t]*REPLACE[^\n]*$", re.MULTILINE | re.DOTALL)
_EDIT_MARKER = re.compile(r"^[ \t]*(<{5,9}[ \t]*SEARCH|>{5,9}[ \t]*REPLACE)", re.MULTILINE)
_AGENT = re.compile(r"^class\s+Agent\b", re.MULTILINE)
_PY_LANGS = {"", "python", "py", "python3"}


class ParsedAnswer(BaseModel):
    """What the answer asks for: ``code`` (complete module text) or ``params`` (or both)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    form: Literal["module", "edits", "json"]
    code: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    rationale: str = ""


def parse_answer(text: str, *, base_code: str = "") -> ParsedAnswer:
    """Parse ``text``; edits apply to ``base_code``. Raises ``AnswerParseError``."""
    if not text or not text.strip():
        raise AnswerParseError("The answer was empty. Answer with the complete agent module in "
                               "one ```python block.")
    as_json = _try_json(text)
    if as_json is not None:
        return as_json
    if _EDIT_MARKER.search(text):
        return _parse_edits(text, base_code)
    return _parse_module(text)


def _parse_module(text: str) -> ParsedAnswer:
    blocks = [(m.group(1).lower(), m.group(2), m.span()) for m in _FENCE.finditer(text)]
    python = [b for b in blocks if b[0] in _PY_LANGS]
    with_agent = [b for b in python if _AGENT.search(b[1])]
    if with_agent:
        _, code, span = with_agent[-1]
        return ParsedAnswer(form="module", code=code, rationale=_outside(text, span))
    if python:
        raise AnswerParseError("The python block in the answer does not define `class Agent`. "
                               "Answer with the complete module (imports, class Agent with "
                               "__init__, fit and recommend) in one ```python block.")
    unclosed = re.search(r"```[ \t]*(?:python|py|python3)?[^\n]*\n(.*)\Z", text, re.DOTALL)
    if unclosed and _AGENT.search(unclosed.group(1)):  # cut off before the closing fence
        return ParsedAnswer(form="module", code=unclosed.group(1),
                            rationale=_bound(text[:unclosed.start()]))
    if _AGENT.search(text) and not blocks:
        return ParsedAnswer(form="module", code=text.strip() + "\n")
    raise AnswerParseError("No code found in the answer. Answer with the complete agent module "
                           "in one ```python block (or SEARCH/REPLACE edit blocks).")


def parse_modules(text: str) -> list[ParsedAnswer]:
    """Every complete module of a several-candidates answer, in order: each fenced python
    block defining ``class Agent``, its rationale the prose since the previous block.
    Raises ``AnswerParseError`` when there is none."""
    found, start = [], 0
    for m in _FENCE.finditer(text):
        if m.group(1).lower() in _PY_LANGS and _AGENT.search(m.group(2)):
            found.append(ParsedAnswer(form="module", code=m.group(2), rationale=_bound(text[start:m.start()])))
            start = m.end()
    if not found:
        return [_parse_module(text)]
    return found


def fenced_block(text: str, langs: frozenset[str]) -> tuple[str, str] | None:
    """The last fenced block whose language tag (lower-cased, "" for none) is in ``langs``
    and the prose around it (bounded: the rationale); None when there is no such block."""
    blocks = [m for m in _FENCE.finditer(text or "") if m.group(1).lower() in langs]
    if not blocks:
        return None
    return blocks[-1].group(2), _outside(text, blocks[-1].span())


def _outside(text: str, span: tuple[int, int]) -> str:
    """The prose around the chosen block, as the rationale (bounded)."""
    prose = _FENCE.sub("", text[:span[0]] + "\n" + text[span[1]:])
    return _bound(prose)


def _bound(text: str) -> str:
    text = text.strip()
    return text if len(text) <= RATIONALE_CHARS else text[:RATIONALE_CHARS] + " [...]"


def _parse_edits(text: str, base_code: str) -> ParsedAnswer:
    edits = list(_EDIT.finditer(text))
    if not edits:
        raise AnswerParseError("The SEARCH/REPLACE blocks are malformed. Use exactly:\n"
                               "<<<<<<< SEARCH\n(lines copied from the code)\n=======\n"
                               "(new lines)\n>>>>>>> REPLACE")
    code = base_code
    for m in edits:
        code = apply_edit(code, m.group(1), m.group(2))
    prose = _EDIT.sub("", text)
    prose = re.sub(r"^[ \t]*```[^\n]*$", "", prose, flags=re.MULTILINE)
    return ParsedAnswer(form="edits", code=code, rationale=_bound(prose))


def apply_edit(code: str, search: str, replace: str) -> str:
    """Replace the first occurrence of ``search`` in ``code`` by ``replace``.

    Exact match first, then a match that ignores trailing whitespace on each line.
    Raises ``AnswerParseError`` naming the SEARCH text when it is not found.
    """
    if not search.strip():
        raise AnswerParseError("A SEARCH block is empty; copy the lines to replace from the "
                               "current code into it.")
    if search in code:
        return code.replace(search, replace, 1)
    lines, needle = code.splitlines(keepends=True), search.splitlines()
    stripped = [line.rstrip() for line in lines]
    target = [line.rstrip() for line in needle]
    for i in range(len(lines) - len(target) + 1):
        if stripped[i:i + len(target)] == target:
            tail = "" if replace.endswith("\n") or not replace else "\n"
            return "".join(lines[:i]) + replace + tail + "".join(lines[i + len(target):])
    shown = search.strip("\n")
    shown = shown if len(shown) <= 300 else shown[:300] + "..."
    raise AnswerParseError("This SEARCH text was not found in the current code (copy the lines "
                           f"exactly, including indentation):\n{shown}")


def _try_json(text: str) -> ParsedAnswer | None:
    """A JSON answer (bare or in a ```json block) with "code" or "params"; else None."""
    candidate = text.strip()
    fenced = [m.group(2) for m in _FENCE.finditer(text) if m.group(1).lower() == "json"]
    if not candidate.startswith("{") and fenced:
        candidate = fenced[-1].strip()
    if not candidate.startswith("{"):
        return None
    try:
        data = json.loads(candidate)
    except json.JSONDecodeError as e:
        if text.strip().startswith("{"):
            raise AnswerParseError(f"The JSON answer is not valid JSON ({e.msg} at line "
                                   f"{e.lineno}). Send one JSON object with \"rationale\" and "
                                   "\"code\" (or \"params\").") from e
        return None
    return _from_json(data)


def _from_json(data: Any) -> ParsedAnswer:
    if not isinstance(data, dict) or not ({"code", "params"} & set(data)):
        raise AnswerParseError('The JSON answer needs a "code" string (the complete module) or a '
                               '"params" object, plus a "rationale" string.')
    code, params = data.get("code"), data.get("params") or {}
    if code is not None and (not isinstance(code, str) or not _AGENT.search(code)):
        raise AnswerParseError('The "code" field must be the complete module text defining '
                               '`class Agent`.')
    if not isinstance(params, dict):
        raise AnswerParseError('The "params" field must be a JSON object of parameter values.')
    if code is not None:
        inner = [m.group(2) for m in _FENCE.finditer(code) if _AGENT.search(m.group(2))]
        code = inner[-1] if inner else code  # some models fence the code inside the JSON
    return ParsedAnswer(form="json", code=code, params=params,
                        rationale=_bound(str(data.get("rationale", ""))))


def json_answer_schema(allow_params: bool = False) -> dict:
    """The ``json_schema`` argument for ``LLMClient.complete`` that asks for form 3."""
    properties: dict[str, Any] = {"rationale": {"type": "string"}, "code": {"type": "string"}}
    if allow_params:
        properties["params"] = {"type": "object"}
    return {"name": "agent_proposal",
            "schema": {"type": "object", "properties": properties, "required": ["rationale"]}}
