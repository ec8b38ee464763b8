"""Per family: Optuna's parameter importances (its PED-ANOVA evaluator, which needs no
scikit-learn, unlike fANOVA) and parallel coordinates, on a study rebuilt in memory from the
knowledge base's experiments (``optuna.trial.create_trial``).

Cheap-stage runs score a subset of users and full-stage runs all of them, so one study never
mixes stages (nor data sets): per family it uses the stage and data set with the most runs.
"""
from __future__ import annotations

import logging
import warnings
from collections import Counter
from dataclasses import dataclass
from typing import Any

import optuna
import plotly.graph_objects as go
from optuna.importance import PedAnovaImportanceEvaluator

from designer.proposers.search import distributions
from designer.report.history import AgentHistory
from knowledge_base.models import Experiment, ExperimentStatus

log = logging.getLogger(__name__)
MIN_TRIALS = 3
MAX_LINES = 500   # Optuna draws one line (a plotly trace) per trial: keep the page light


@dataclass(frozen=True)
class FamilyStudy:
    """One family's figures, or the reason there are none."""

    family: str
    label: str                      # which runs the study holds, e.g. "12 cheap-stage runs on ..."
    importances: go.Figure | None
    parallel: go.Figure | None
    note: str = ""


def family_studies(h: AgentHistory, families: dict[str, Any]) -> list[FamilyStudy]:
    """A ``FamilyStudy`` for every family the agent's experiments used, most runs first."""
    counts = Counter(e.family for e in h.experiments if e.family in families and _usable(e))
    return [_study(h, family, families[family]) for family, _ in counts.most_common()]


def _usable(e: Experiment) -> bool:
    return e.status is ExperimentStatus.COMPLETED and e.inner_reward is not None and e.proposer != "baseline"


def _study(h: AgentHistory, name: str, family: Any) -> FamilyStudy:
    runs = [e for e in h.experiments if e.family == name and _usable(e)]
    (stage, dataset), n = Counter((e.stage, e.dataset_key) for e in runs).most_common(1)[0]
    label = f"{n} {stage}-stage run{'s' if n != 1 else ''} on {dataset}"
    dists = distributions(family)
    trials = [t for t in (_trial(e, dists) for e in runs if (e.stage, e.dataset_key) == (stage, dataset)) if t]
    if len(trials) < MIN_TRIALS:
        return FamilyStudy(name, label, None, None,
                           f"{len(trials)} run(s) in the family's space: importances need {MIN_TRIALS}")
    study = _in_memory(name, trials)
    target = f"{h.metric} ({stage} stage)"
    lines = trials if len(trials) <= MAX_LINES else trials[-MAX_LINES:]
    parallel = optuna.visualization.plot_parallel_coordinate(_in_memory(name, lines), target_name=target)
    shown = label if lines is trials else f"the newest {MAX_LINES} of {label}"
    parallel.update_layout(title=f"{name}: parallel coordinates ({shown})", template="plotly_white")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            importances = optuna.visualization.plot_param_importances(
                study, evaluator=PedAnovaImportanceEvaluator(), target_name=target)
    except (RuntimeError, ValueError) as e:  # e.g. every parameter constant
        log.debug("no importances for %s: %s", name, e)
        return FamilyStudy(name, label, None, parallel, f"no importances: {e}")
    importances.update_layout(title=f"{name}: parameter importances, PED-ANOVA ({label})", template="plotly_white")
    return FamilyStudy(name, label, importances, parallel)


def _in_memory(name: str, trials: list[optuna.trial.FrozenTrial]) -> optuna.Study:
    study = optuna.create_study(direction="maximize", study_name=name)
    study.add_trials(trials)
    return study


def _trial(e: Experiment, dists: dict) -> optuna.trial.FrozenTrial | None:
    """The run as a completed trial, or None when its params do not fit the family's space."""
    params = {k: v for k, v in e.params.items() if k in dists}
    if set(params) != set(dists):
        return None
    try:
        return optuna.trial.create_trial(params=params, distributions=dists, value=e.inner_reward)
    except ValueError:  # a value outside the (since changed) space
        return None
