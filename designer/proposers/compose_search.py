"""The compositional search proposer: Optuna over a conditional space of pipelines.

Define-by-run (Optuna's conditional spaces): a router or none (with its threshold); per
branch, which pool sources and each one's quota, the ranker (score fusion with its method
and per-source weights, the logistic ranker with its regularisation, or the MLP ranker
with its size and training), and the re-ranker
(none, calibration, MMR) with its params. Warm start as for agents: every past experiment
of this pipeline on this data set stored its trial (``proposal.meta.trial`` with the
distributions) and becomes a completed or failed trial; proposals in flight are RUNNING
trials (TPE's constant liar). The first proposals are warm points built from the pool's
best-known sources (``_warm_points``), each tried once.
"""
from __future__ import annotations

from typing import Any

import optuna
from optuna.distributions import distribution_to_json, json_to_distribution
from optuna.trial import TrialState, create_trial

from designer.pipelines.pool import PoolOption
from designer.pipelines.spec import MAX_SOURCES, PipelineSpec
from designer.proposal import DesignContext, Proposal, ProposalError, ProposalKind
from knowledge_base.models import ExperimentStatus, PromotionState

QUOTAS = [20, 50, 100, 200]


def _key(label: str) -> str:
    return label.replace(":", "_").replace("-", "_")


class CompositionSearchProposer:
    """See the module docstring. ``pool``: the recall options; ``base``: the champion's spec
    (name, depth, window share, outer reward are kept from it)."""

    name = "search"

    def __init__(self, pool: list[PoolOption], seed: int = 0, routers: tuple[str, ...] = ("activity_router",),
                 rerankers: tuple[str, ...] = ("calibration", "mmr")):
        if not pool:
            raise ProposalError("the recall pool is empty: run `agenticrs init` (built-in agents) first")
        self.pool, self.seed, self.routers, self.rerankers = pool, seed, routers, rerankers

    def propose(self, context: DesignContext) -> Proposal:
        base = PipelineSpec.from_yaml(context.parent_code, "champion pipeline")
        study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(
            seed=self.seed + len(context.history) + len(context.pending), n_startup_trials=8,
            constant_liar=True))
        seen = {context.parent_code}
        completed = 0
        for exp in context.history:
            trial = self._past(exp)
            if trial is not None:
                study.add_trial(trial)
                completed += trial.state is TrialState.COMPLETE
        for proposal in context.pending:
            meta = proposal.meta.get("trial")
            if meta:
                try:
                    study.add_trial(create_trial(params=meta["params"], state=TrialState.RUNNING,
                                                 distributions=_dists(meta)))
                except ValueError:
                    pass
        for point in self._warm_points(context.parent_reward):   # already tried ones are skipped
            study.enqueue_trial(point, skip_if_exists=True)
        for _ in range(25):
            trial = study.ask()
            spec = self._spec(trial, base)
            text = spec.to_yaml()
            if text in seen or any(p.params == spec.to_dict() for p in context.pending):
                study.tell(trial, state=TrialState.FAIL)
                continue
            dists = {name: distribution_to_json(d) for name, d in trial.distributions.items()}
            return Proposal(proposer=self.name, kind=ProposalKind.PARAMS, family="pipeline",
                            params=spec.to_dict(), rationale=spec.graph(),
                            meta={"sampler": "tpe", "warm_trials": len(study.trials) - 1,
                                  "trial": {"params": trial.params, "distributions": dists}})
        raise ProposalError("the composition search keeps proposing evaluated pipelines; widen the pool (--pool)")

    # ---- the space ----------------------------------------------------------------------

    def _spec(self, trial: optuna.Trial, base: PipelineSpec) -> PipelineSpec:
        router_name = trial.suggest_categorical("router", ["none", *self.routers])
        router = None
        if router_name != "none":
            router = {"family": router_name, "params": self._router_params(trial, router_name)}
        branches = [self._branch(trial, b) for b in range(2 if router else 1)]
        raw = {"name": base.name, "depth": base.depth, "window_share": base.window_share,
               "outer_reward": base.outer_reward.model_dump(mode="json", exclude_none=True), "branches": branches}
        if router:
            raw["router"] = router
        return PipelineSpec.from_dict(raw)

    @staticmethod
    def _router_params(trial: optuna.Trial, name: str) -> dict[str, Any]:
        if name == "activity_router":
            if trial.suggest_categorical("router_by", ["threshold", "quantile"]) == "quantile":
                return {"quantile": trial.suggest_float("router_activity_quantile", 0.1, 0.7)}
            return {"threshold": trial.suggest_int("router_threshold", 3, 200, log=True)}
        return {"quantile": trial.suggest_float("router_quantile", 0.1, 0.9)}

    def _branch(self, trial: optuna.Trial, b: int) -> dict[str, Any]:
        sources = []
        for option in self.pool:
            key = _key(option.label)
            if trial.suggest_categorical(f"b{b}_use_{key}", [False, True]):
                sources.append({**option.component, "quota": trial.suggest_categorical(f"b{b}_quota_{key}", QUOTAS)})
        if not sources:   # an empty branch is no pipeline: fall back to the first option
            sources = [{**self.pool[0].component, "quota": 100}]
        sources = sources[:MAX_SOURCES]
        ranker_family = trial.suggest_categorical(f"b{b}_ranker", ["fusion", "logistic_ranker", "mlp_ranker"])
        if ranker_family == "fusion":
            params: dict[str, Any] = {"method": trial.suggest_categorical(f"b{b}_fusion_method", ["rrf", "borda"]),
                                      "rrf_k": trial.suggest_float(f"b{b}_rrf_k", 1.0, 200.0, log=True),
                                      "pop_weight": trial.suggest_float(f"b{b}_pop_weight", 0.0, 0.5)}
            for j in range(len(sources)):
                params[f"w{j}"] = trial.suggest_float(f"b{b}_w{j}", 0.0, 2.0)
        elif ranker_family == "mlp_ranker":
            params = {"hidden": trial.suggest_int(f"b{b}_hidden", 8, 64, log=True),
                      "epochs": trial.suggest_int(f"b{b}_epochs", 30, 200, log=True),
                      "lr": trial.suggest_float(f"b{b}_lr", 1e-3, 3e-2, log=True),
                      "use_affinity": trial.suggest_categorical(f"b{b}_affinity", [False, True])}
        else:
            params = {"l2": trial.suggest_float(f"b{b}_l2", 1e-4, 1.0, log=True),
                      "negatives": trial.suggest_int(f"b{b}_negatives", 2, 30, log=True),
                      "interactions": trial.suggest_categorical(f"b{b}_interactions", [False, True]),
                      "use_affinity": trial.suggest_categorical(f"b{b}_affinity", [False, True])}
        branch: dict[str, Any] = {"sources": sources, "ranker": {"family": ranker_family, "params": params}}
        reranker = trial.suggest_categorical(f"b{b}_reranker", ["none", *self.rerankers])
        if reranker == "calibration":
            branch["reranker"] = {"family": "calibration",
                                  "params": {"strength": trial.suggest_float(f"b{b}_strength", 0.0, 0.5)}}
        elif reranker == "mmr":
            branch["reranker"] = {"family": "mmr", "params": {
                "relevance_weight": trial.suggest_float(f"b{b}_relevance_weight", 0.6, 1.0)}}
        return branch

    def _warm_points(self, champion_reward: float | None = None) -> list[dict[str, Any]]:
        """Complete points tried first, most promising first: LORD++ grants the highest test
        levels right after a promotion, so the candidates most likely to win go first. The
        best-known source alone (its own ranking; a fresh pipeline's first promotion); the
        first ``MAX_SOURCES`` sources under the MLP ranker; the two best with each further
        source as a third (which third adds most depends on how its candidates differ, not
        on its own score); the two best fused by reciprocal rank, under the logistic and the
        MLP ranker. After the thirds, a routed point: the cold third of users (by train
        activity) on the best source alone, the rest on the widest learned pipeline.

        The best source alone is left out when the champion (``champion_reward``, its val
        outer reward) already scores at least that source's best known score: it could not
        be significantly better, and trying it would spend the high test level that
        follows a promotion (in ``evolve``, right after an adopted component)."""
        def branch(chosen: list[int], ranker: str, b: int = 0) -> dict[str, Any]:
            p: dict[str, Any] = {f"b{b}_ranker": ranker, f"b{b}_reranker": "none"}
            for i, option in enumerate(self.pool):
                key = _key(option.label)
                p[f"b{b}_use_{key}"] = i in chosen
                if i in chosen:
                    p[f"b{b}_quota_{key}"] = 100
            if ranker == "fusion":
                p.update({f"b{b}_fusion_method": "rrf", f"b{b}_rrf_k": 60.0, f"b{b}_pop_weight": 0.0})
                p.update({f"b{b}_w{j}": 1.0 for j in range(len(chosen))})
            elif ranker == "mlp_ranker":
                p.update({f"b{b}_hidden": 32, f"b{b}_epochs": 100, f"b{b}_lr": 0.01, f"b{b}_affinity": False})
            else:
                p.update({f"b{b}_l2": 0.01, f"b{b}_negatives": 10, f"b{b}_interactions": True,
                          f"b{b}_affinity": False})
            return p

        def point(chosen: list[int], ranker: str) -> dict[str, Any]:
            return {"router": "none", **branch(chosen, ranker)}

        n = len(self.pool)
        wide = list(range(min(n, MAX_SOURCES)))
        thirds = [point([0, 1, j], "mlp_ranker") for j in range(2, n)] or [point(list(range(n)), "mlp_ranker")]
        best = self.pool[0].score
        beaten = champion_reward is not None and best is not None and champion_reward >= best - 1e-9
        points = [*([] if beaten else [point([0], "fusion")]), point(wide, "mlp_ranker"), *thirds]
        if "activity_router" in self.routers:
            # the cold third of users (the harness's cold segment) on the best source alone;
            # the rest on the widest learned pipeline: a learned ranker needs window labels
            points.append({"router": "activity_router", "router_by": "quantile", "router_activity_quantile": 1 / 3,
                           **branch([0], "fusion", 0), **branch(wide, "mlp_ranker", 1)})
        return [*points, point([0, 1], "fusion"), point([0, 1, 2][:n], "logistic_ranker"), point([0, 1], "mlp_ranker")]

    # ---- history ------------------------------------------------------------------------

    @staticmethod
    def _past(exp: Any) -> optuna.trial.FrozenTrial | None:
        meta = (exp.proposal.get("meta") or {}).get("trial")
        if not meta or exp.stage not in ("cheap", "full"):
            return None
        try:
            dists = _dists(meta)
            if (exp.status is ExperimentStatus.COMPLETED and exp.stage == "full" and exp.inner_reward is not None
                    and exp.promotion is not PromotionState.INFEASIBLE):
                return create_trial(params=meta["params"], distributions=dists, value=exp.inner_reward)
            return create_trial(params=meta["params"], distributions=dists, state=TrialState.FAIL)
        except (ValueError, KeyError, TypeError):
            return None


def _dists(meta: dict[str, Any]) -> dict[str, Any]:
    return {name: json_to_distribution(text) for name, text in meta["distributions"].items()}

