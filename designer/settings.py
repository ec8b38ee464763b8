"""Resolved configuration: defaults < config file < ``AGENTICRS_*`` env < CLI flags."""
from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from designer.errors import UsageError
from sandbox.limits import Limits


class PromotionConfig(BaseModel):
    """When a candidate may replace its parent."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    alpha: float = Field(0.05, gt=0, lt=1, description="target false discovery rate of the subject's "
                         "stream of promotion tests (LORD++); with error_control=per-test, each test's level")
    error_control: Literal["lord++", "per-test"] = Field(
        "lord++", description="online FDR over the subject's whole history (lord++) or a fixed level per test")
    initial_wealth: float | None = Field(None, gt=0, lt=1, description="LORD++ w0 (default alpha/10)")
    confirm: bool = Field(True, description="confirm finalists on the earlier window and, if stochastic, another seed")
    seed_tolerance: float = Field(1e-9, ge=0, description="per-user reward difference between two seeds "
                                  "above which a candidate counts as stochastic")
    veto: bool = Field(True, description="a sealed test significantly below the parent's stops auto-approval")
    veto_alpha: float = Field(0.05, gt=0, lt=1, description="a sealed test significantly below the parent's "
                              "at this level stops auto-approval")
    min_effect: float = Field(0.002, ge=0, description="minimum mean gain of the inner reward")
    resamples: int = Field(2000, ge=100, description="paired permutation/bootstrap resamples")
    cheap_fraction: float = Field(0.3, gt=0, le=1, description="share of validation users in the cheap stage")
    cheap_fidelity: float = Field(0.35, gt=0, le=1, description="epoch scale of the cheap stage")
    cheap_margin: float = Field(0.10, ge=0, le=1, description="relative margin below the incumbent that still earns a full evaluation")


class DesignSettings(BaseSettings):
    """Every knob of a design session. Env vars use the ``AGENTICRS_`` prefix."""

    model_config = SettingsConfigDict(env_prefix="AGENTICRS_", extra="forbid", frozen=True)

    workspace: Path = Path("runs")
    db: str | None = Field(None, exclude=True, description="never snapshotted: it may hold a password")
    dataset: str = "synthetic"
    data_dir: Path | None = None
    split: str = "user_temporal"
    columns: dict[str, str] | None = Field(None, description="interactions file: role -> column name")
    n_users: int | None = Field(None, gt=0, description="synthetic data: number of users")
    n_items: int | None = Field(None, gt=0, description="synthetic data: number of items")
    k: int = Field(10, gt=0)
    seed: int = 0
    allow_insecure_sandbox: bool = False
    slots: int = Field(4, ge=1, le=64, description="sandbox slots (uids) this machine's runs share; "
                       "a run waits while all are busy")
    limits: Limits = Field(default_factory=Limits)
    promotion: PromotionConfig = Field(default_factory=PromotionConfig)


def load_settings(config_file: Path | None = None, **overrides: Any) -> DesignSettings:
    """Merge defaults, an optional TOML file, the environment and explicit overrides.

    ``overrides`` with value None are ignored (a flag the user did not pass).
    Raises ``UsageError`` when ``config_file`` is given but does not exist or is invalid.
    """
    file_values: dict[str, Any] = {}
    if config_file is not None:
        if not config_file.is_file():
            raise UsageError(f"config file {config_file} does not exist: pass an existing TOML file or drop --config")
        try:
            file_values = tomllib.loads(config_file.read_text())
        except tomllib.TOMLDecodeError as e:
            raise UsageError(f"config file {config_file} is not valid TOML: {e}") from e
    try:
        env_values = DesignSettings().model_dump(exclude_unset=True)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors())
        raise UsageError(f"invalid AGENTICRS_* environment variable: {problems}") from None
    merged = _deep_merge(_deep_merge(file_values, env_values),
                         {k: v for k, v in overrides.items() if v is not None})
    try:
        return DesignSettings(**merged)
    except ValidationError as e:
        where = f"{config_file}, " if config_file else ""
        problems = "; ".join(_problem(err) for err in e.errors())
        raise UsageError(f"invalid settings ({where}AGENTICRS_* environment or flags): {problems}") from None


def _problem(err: Any) -> str:
    """One validation error; an unknown key lists the valid keys of its table."""
    where = ".".join(map(str, err["loc"]))
    if err["type"] != "extra_forbidden":
        return f"{where}: {err['msg']}"
    model: Any = DesignSettings
    for part in err["loc"][:-1]:
        model = model.model_fields[part].annotation
    table = ".".join(map(str, err["loc"][:-1]))
    return f"unknown key {where!r}; valid {'keys of [' + table + ']' if table else 'top-level keys'}: " \
        + ", ".join(k for k, f in model.model_fields.items() if not f.exclude)


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """``top`` over ``base``; nested tables (e.g. ``[limits]``) merge key by key."""
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, BaseModel):
            value = value.model_dump(exclude_unset=True)
        out[key] = _deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def parse_columns(text: str | None) -> dict[str, str] | None:
    """``user=uid,item=iid,timestamp=ts[,rating=r]`` -> a role -> column mapping."""
    if not text:
        return None
    try:
        pairs = dict(part.split("=", 1) for part in text.split(","))
    except ValueError:
        raise UsageError(f"--columns must look like user=uid,item=iid,timestamp=ts; got {text!r}") from None
    unknown = set(pairs) - {"user", "item", "timestamp", "rating"}
    if unknown:
        raise UsageError(f"--columns: unknown role(s) {sorted(unknown)}; roles are user, item, timestamp, rating")
    return {k.strip(): v.strip() for k, v in pairs.items()}


def limit_overrides(**flags: float | int | None) -> dict[str, float | int]:
    """Limits given on the command line (None = not given)."""
    return {k: v for k, v in flags.items() if v is not None}
