"""Built-in agent families: a jinja2 template plus a typed, declared parameter space.

A family lives in a template directory as two files::

    <name>.yaml      spec: name, role, description, time_limit_seconds, params
    <name>.py.j2     jinja2 template of the agent module; receives ``params`` (validated,
                     complete dict) and ``family`` (the name); ``{{ params | pyrepr }}``
                     renders a Python literal

The built-in directory is ``templates/agents`` at the repository root; a workspace may
pass its own directory, whose families override built-in ones of the same name.
"""
from __future__ import annotations

import ast
import hashlib
import math
from pathlib import Path
from typing import Any, Literal

import jinja2
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from designer.errors import DesignerError

__all__ = ["FamilyError", "ParamSpec", "Family", "load_families", "BUILTIN_TEMPLATE_DIR",
           "declared_space", "space_problems", "llm_family_name"]

BUILTIN_TEMPLATE_DIR = Path(__file__).resolve().parents[1] / "templates" / "agents"


class FamilyError(DesignerError):
    """A family spec or template is invalid, or parameters do not fit a family's space."""


class ParamSpec(BaseModel):
    """One dimension of a family's search space.

    ``float``/``int`` need ``low <= default <= high`` (``log`` needs ``low > 0``);
    ``categorical`` needs ``choices`` containing ``default``; ``bool`` needs a bool default.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["float", "int", "categorical", "bool"]
    default: Any
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Any, ...] | None = None
    help: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> "ParamSpec":
        if self.type in ("float", "int"):
            if self.low is None or self.high is None or self.low > self.high:
                raise ValueError(f"{self.type} parameter needs low <= high")
            if self.log and self.low <= 0:
                raise ValueError("a log-scaled parameter needs low > 0")
        elif self.type == "categorical" and not self.choices:
            raise ValueError("a categorical parameter needs non-empty choices")
        self.check(self.default)  # the default itself must be valid
        return self

    def check(self, value: Any) -> Any:
        """Return ``value`` coerced to this type; raise ``ValueError`` if it does not fit."""
        if self.type == "bool":
            if not isinstance(value, bool):
                raise ValueError(f"expected true/false, got {value!r}")
            return value
        if self.type == "categorical":
            if value not in self.choices:
                raise ValueError(f"{value!r} is not one of {list(self.choices)}")
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"expected a number, got {value!r}")
        if self.type == "int":
            if float(value) != int(value):
                raise ValueError(f"expected an integer, got {value!r}")
            value = int(value)
        else:
            value = float(value)
        if not math.isfinite(value) or not (self.low <= value <= self.high):
            raise ValueError(f"{value!r} is outside [{self.low:g}, {self.high:g}]")
        return value

    def suggest(self, trial: Any, name: str) -> Any:
        """Draw a value from an Optuna-style ``trial`` (``suggest_float``/``_int``/``_categorical``)."""
        if self.type == "float":
            return trial.suggest_float(name, self.low, self.high, log=self.log)
        if self.type == "int":
            return trial.suggest_int(name, int(self.low), int(self.high), log=self.log)
        choices = [False, True] if self.type == "bool" else list(self.choices)
        return trial.suggest_categorical(name, choices)


class Family(BaseModel):
    """A built-in (or workspace) agent family. Frozen; render with ``render(params)``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    role: Literal["recommender", "ranker", "reranker", "router"]
    description: str
    time_limit_seconds: float
    params: dict[str, ParamSpec]
    template_path: Path

    def defaults(self) -> dict[str, Any]:
        """The default value of every parameter, coerced to its type (a new dict)."""
        return {name: spec.check(spec.default) for name, spec in self.params.items()}

    def validate(self, params: dict[str, Any] | None = None) -> dict[str, Any]:  # type: ignore[override]
        """Complete ``params`` with defaults and coerce types.

        Raises ``FamilyError`` naming every unknown parameter or out-of-range value.
        """
        params = dict(params or {})
        errors = [f"unknown parameter {key!r} (known: {', '.join(sorted(self.params))})"
                  for key in params if key not in self.params]
        out = self.defaults()
        for key, value in params.items():
            if key in self.params:
                try:
                    out[key] = self.params[key].check(value)
                except ValueError as e:
                    errors.append(f"parameter {key!r}: {e}")
        if errors:
            raise FamilyError(f"invalid parameters for family {self.name!r}: " + "; ".join(errors))
        return out

    def render(self, params: dict[str, Any] | None = None) -> str:
        """Validate ``params`` and return the agent module source with them baked in.

        Raises ``FamilyError`` for invalid params or a broken template.
        """
        values = self.validate(params)
        env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                                 autoescape=False)
        env.filters["pyrepr"] = _pyrepr
        try:
            template = env.from_string(self.template_path.read_text(encoding="utf-8"))
            return template.render(params=values, family=self.name)
        except (jinja2.TemplateError, OSError) as e:
            raise FamilyError(f"cannot render template {self.template_path}: {e}") from e


def _pyrepr(value: Any) -> str:
    """A Python literal for ``value``; dicts one key per line, in declaration order."""
    if isinstance(value, dict):
        body = "".join(f"    {k!r}: {v!r},\n" for k, v in value.items())
        return "{\n" + body + "}"
    return repr(value)


def _load_family(spec_path: Path) -> Family:
    template_path = spec_path.with_name(spec_path.name[: -len(".yaml")] + ".py.j2")
    try:
        raw = yaml.safe_load(spec_path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise FamilyError(f"cannot read family spec {spec_path}: {e}") from e
    if not isinstance(raw, dict):
        raise FamilyError(f"family spec {spec_path} must be a YAML mapping")
    if not template_path.exists():
        raise FamilyError(f"family spec {spec_path} has no template: create {template_path.name}")
    try:
        family = Family(template_path=template_path, **raw)
    except (ValidationError, TypeError) as e:
        raise FamilyError(f"invalid family spec {spec_path}: {e}") from e
    if family.name != spec_path.name[: -len(".yaml")]:
        raise FamilyError(f"family spec {spec_path} declares name {family.name!r}; "
                          "the name must match the file name")
    return family


def load_families(template_dir: Path | str | None = None) -> dict[str, Family]:
    """Load the built-in families, then those of ``template_dir`` (overriding by name).

    Returns name -> Family, sorted by name. Raises ``FamilyError`` if ``template_dir``
    does not exist or any spec or template is invalid.
    """
    dirs = [BUILTIN_TEMPLATE_DIR]
    if template_dir is not None:
        template_dir = Path(template_dir)
        if not template_dir.is_dir():
            raise FamilyError(f"template directory {template_dir} does not exist")
        dirs.append(template_dir)
    families: dict[str, Family] = {}
    for folder in dirs:
        for spec_path in sorted(folder.glob("*.yaml")):
            family = _load_family(spec_path)
            families[family.name] = family
    return dict(sorted(families.items()))


# ---- spaces declared by LLM-written modules ----------------------------------------------

SPACE_NAME = "SPACE"
"""An LLM module declares its searchable constructor parameters as a module-level literal
``SPACE = {"name": {"type": "float", "low": ..., "high": ..., "default": ...}, ...}``: the
same typed spec as the ``params`` of a family YAML (see ``ParamSpec``)."""


def _space_literal(code: str) -> tuple[Any, str]:
    """(the SPACE literal or None, the problem reading it or "")."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return None, ""
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else \
            [node.target] if isinstance(node, ast.AnnAssign) and node.value is not None else []
        if any(isinstance(t, ast.Name) and t.id == SPACE_NAME for t in targets):
            try:
                return ast.literal_eval(node.value), ""
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                return None, (f"Line {node.lineno}: {SPACE_NAME} must be a literal dict (no names "
                              "or calls), e.g. {\"l2\": {\"type\": \"float\", \"low\": 1.0, "
                              "\"high\": 1000.0, \"log\": True, \"default\": 100.0}}.")
    return None, ""


def _parse_space(raw: Any) -> tuple[dict[str, ParamSpec], list[str]]:
    if not isinstance(raw, dict) or not raw:
        return {}, [f"{SPACE_NAME} must be a non-empty dict of parameter name -> spec dict."]
    space, problems = {}, []
    for name, spec in raw.items():
        if not isinstance(name, str) or not name.isidentifier():
            problems.append(f"{SPACE_NAME} key {name!r} is not a valid parameter name.")
            continue
        try:
            space[name] = ParamSpec(**spec) if isinstance(spec, dict) else ParamSpec.model_validate(spec)
        except (ValidationError, TypeError) as e:
            detail = "; ".join(err["msg"] for err in e.errors()) if isinstance(e, ValidationError) else str(e)
            problems.append(f"{SPACE_NAME}[{name!r}] is not a valid spec (type float|int|categorical|bool, "
                            f"low/high/log or choices, default): {detail}.")
    return space, problems


def space_problems(code: str) -> list[str]:
    """Problems of the ``SPACE`` an LLM module declares; [] if it declares none or a valid one."""
    raw, problem = _space_literal(code)
    if problem:
        return [problem]
    return [] if raw is None else _parse_space(raw)[1]


def declared_space(code: str) -> dict[str, ParamSpec]:
    """The valid parameter space ``code`` declares (``SPACE = {...}``); {} if none or invalid."""
    raw, problem = _space_literal(code)
    if raw is None or problem:
        return {}
    space, problems = _parse_space(raw)
    return {} if problems else space


def llm_family_name(code: str) -> str:
    """The family name of an LLM module with a space: ``llm-`` + 10 hex digits of its sha256.

    Every tuning of the same module text shares it (it is the experiments' ``base_family``).
    """
    return "llm-" + hashlib.sha256(code.encode("utf-8")).hexdigest()[:10]
