"""Prompt templates (overridable per workspace) and the size budget of a rendered prompt.

Defaults live in the repository's ``templates/prompts/*.j2``; a file of the same name in
``<workspace>/prompts/`` replaces the default (only the files present are overridden).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from pydantic import BaseModel, ConfigDict, Field

from designer.llm.errors import LLMError

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "templates" / "prompts"
TEMPLATE_NAMES = ("system.j2", "propose.j2", "reask.j2", "insight.j2")


class PromptTemplates:
    """Renders the prompt templates by name; a workspace override shadows the default."""

    def __init__(self, dirs: list[Path]):
        self.dirs = dirs
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader([str(d) for d in dirs]), autoescape=False,
            undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
            trim_blocks=False, lstrip_blocks=False)

    def render(self, name: str, **variables: Any) -> str:
        """Render template ``name``; raises ``LLMError`` saying which file is broken."""
        try:
            return self._env.get_template(name).render(**variables)
        except jinja2.TemplateNotFound as e:
            raise LLMError(f"prompt template {name} not found in {self._where()}; restore it "
                           "or remove the override folder") from e
        except jinja2.TemplateError as e:
            raise LLMError(f"prompt template {name} (searched {self._where()}) is broken: {e}; "
                           "fix the template or delete the workspace override") from e

    def _where(self) -> str:
        return ", ".join(str(d) for d in self.dirs)


def load_prompt_templates(workspace_dir: Path | None = None) -> PromptTemplates:
    """Templates with ``<workspace_dir>/prompts/`` (if it exists) before the defaults."""
    dirs = [DEFAULT_DIR]
    if workspace_dir is not None and (Path(workspace_dir) / "prompts").is_dir():
        dirs.insert(0, Path(workspace_dir) / "prompts")
    return PromptTemplates(dirs)


class PromptBudget(BaseModel):
    """Size bounds (characters) of a rendered prompt and of each item in it.

    ``max_chars`` bounds the whole user prompt. The agent card, the contract, the ask and
    the parent's code are kept first; then entries of the optional sections are dropped
    from the least useful end (oldest/lowest ranked), round-robin across sections so each
    keeps its best entries. If that is not enough, the parent's code is shortened in the
    middle. Per-item bounds keep one huge traceback from evicting everything else.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_chars: int = Field(40_000, gt=1000)
    traceback_chars: int = Field(1_500, gt=0)
    message_chars: int = Field(400, gt=0)
    rationale_chars: int = Field(300, gt=0)
    insight_chars: int = Field(800, gt=0)
    max_items: int = Field(8, gt=0, description="entries per optional section before the cut")
    history_items: int = Field(30, gt=0, description="one-line past experiments before the cut")


SECTION_ORDER = ("failures", "history", "best", "rejected", "insights")
"""Most useful first: at equal rank, entries of later sections are dropped first."""


def fit_prompt(templates: PromptTemplates, name: str, variables: dict[str, Any],
               sections: dict[str, list], budget: PromptBudget,
               order: tuple[str, ...] = SECTION_ORDER) -> str:
    """Render ``name`` with ``variables`` plus the ``sections`` lists, cut to the budget.

    Each section list is ordered most useful first. The template receives the kept lists
    and ``omitted`` (section -> number of entries cut) and ``truncated_parent``.
    Returns the rendered text; it may exceed ``max_chars`` only if the fixed part alone does.
    """
    limit = {"history": budget.history_items}
    kept = {s: list(sections.get(s, []))[:limit.get(s, budget.max_items)] for s in order}
    omitted = {s: len(sections.get(s, [])) - len(kept[s]) for s in order}

    def render(**extra: Any) -> str:
        return templates.render(name, **{**variables, **kept, "omitted": omitted,
                                         "truncated_parent": False, **extra})

    text = render()
    for section in _drop_order(kept, order):
        if len(text) <= budget.max_chars:
            return text
        kept[section].pop()
        omitted[section] += 1
        text = render()
    if len(text) > budget.max_chars and "parent_code" in variables:
        excess = len(text) - budget.max_chars
        code = shorten_middle(variables["parent_code"], len(variables["parent_code"]) - excess - 80)
        text = render(parent_code=code, truncated_parent=True)
    return text


def _drop_order(kept: dict[str, list], order: tuple[str, ...]) -> list[str]:
    """Sections to pop from, one entry at a time: highest rank first, later sections first."""
    depth = max((len(v) for v in kept.values()), default=0)
    return [s for rank in range(depth - 1, -1, -1) for s in reversed(order) if len(kept[s]) > rank]


def shorten_middle(text: str, limit: int) -> str:
    """Keep the head and tail lines of ``text`` within ~``limit`` chars, marking the cut."""
    limit = max(limit, 400)
    if len(text) <= limit:
        return text
    head, tail = text[:limit // 2], text[-limit // 2:]
    head, tail = head[:head.rfind("\n") + 1] or head, tail[tail.find("\n") + 1:] or tail
    cut = text.count("\n") - head.count("\n") - tail.count("\n")
    return f"{head}# ... [{cut} lines cut to fit the prompt] ...\n{tail}"


def tail(text: str, limit: int) -> str:
    """The last ``limit`` chars of ``text`` (tracebacks end with what matters)."""
    text = (text or "").strip()
    return text if len(text) <= limit else "..." + text[-limit:]


def head(text: str, limit: int) -> str:
    """The first ``limit`` chars of ``text``, marked when cut."""
    text = (text or "").strip()
    return text if len(text) <= limit else text[:limit] + " [...]"
