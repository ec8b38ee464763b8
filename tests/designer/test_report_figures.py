"""The report's data and figures on a hand-built knowledge base (no sandbox, no browser)."""
from __future__ import annotations

import math

from designer.report import build_report, load_history
from designer.report.figures import sessions_best_so_far, segments_vs_parent
from designer.report.search_space import family_studies
from knowledge_base.models import (ExperimentDraft, ExperimentResult, ExperimentStatus, FailureDraft,
                                   FailureKind, PromotionState)

SEGMENTS = {"cold": {"ndcg@10": 0.1}, "medium": {"ndcg@10": 0.2}, "heavy": {"ndcg@10": 0.3}}


def run(store, session: str, reward: float | None, *, family: str = "ease", params: dict | None = None,
        stage: str = "full", proposer: str = "search", parent: int | None = 1, code: str = "x = 1\n"):
    draft = ExperimentDraft(agent_name="recommender", session_id=session, proposer=proposer, family=family,
                            params=params if params is not None else {"l2": 200.0, "use_ratings": False},
                            code_hash=f"h{abs(hash((session, reward, str(params), code)))}",
                            dataset_key="synthetic/k", stage=stage, parent_version_id=parent)
    exp = store.start_experiment(draft)
    store.put_code(draft.code_hash, code)
    status = ExperimentStatus.COMPLETED if reward is not None else ExperimentStatus.FAILED
    return store.finish_experiment(exp.id, ExperimentResult(
        status=status, inner_reward=reward, metrics={"ndcg@10": reward} if reward is not None else {},
        segments={k: {"ndcg@10": v["ndcg@10"] * (reward or 0) * 10} for k, v in SEGMENTS.items()}))


def test_best_so_far_is_a_running_maximum_per_session_named_by_metric(store, releaser):
    for session, rewards in (("s1", [0.10, 0.30, 0.20]), ("s2", [0.25, None, 0.40])):
        for r in rewards:
            run(store, session, r)
    run(store, "s1", 0.99, stage="cheap")  # a subset of users: not on the full-stage curve
    fig = sessions_best_so_far(load_history(store, releaser.repo, "recommender"))
    assert [t.name for t in fig.data] == ["session s1", "session s2"]
    assert list(fig.data[0].y) == [0.10, 0.30, 0.30] and list(fig.data[1].y) == [0.25, 0.40]
    assert "val ndcg@10" in fig.layout.title.text and fig.layout.yaxis.title.text == "val ndcg@10"


def test_importances_come_from_optuna_on_the_family_runs(store, releaser, families):
    # the reward depends on l2 only; use_ratings is noise
    for i in range(12):
        l2 = 10 ** (0.5 + 3 * i / 11)
        run(store, "s", 0.1 + 0.05 * math.log10(l2), params={"l2": l2, "use_ratings": i % 2 == 0}, stage="cheap")
    run(store, "s", 0.5, family="itemknn", params={"neighbours": 50})
    studies = {s.family: s for s in family_studies(load_history(store, releaser.repo, "recommender"), families)}
    ease = studies["ease"]
    bars = dict(zip(ease.importances.data[0].y, ease.importances.data[0].x))
    assert bars["l2"] > bars["use_ratings"]
    assert "12 cheap-stage runs" in ease.label
    axes = list(ease.parallel.layout.xaxis.ticktext)  # Optuna draws one line per trial over these
    assert axes[0] == "val ndcg@10 (cheap stage)" and "l2" in axes and len(ease.parallel.data) >= 12
    assert studies["itemknn"].importances is None and "importances need 3" in studies["itemknn"].note


def test_page_is_offline_escapes_code_and_shows_lineage_and_failures(store, releaser, families):
    run(store, "s", 0.1, proposer="baseline", family="popularity",
        params={"window_days": 0.0, "half_life_days": 0.0, "use_ratings": False})
    winner = run(store, "s", 0.3, code="# </pre><script>alert('pwned')</script>\nx = 2\n")
    store.set_promotion(winner.id, PromotionState.PENDING_REVIEW, p_value=0.0012, effect_size=0.2)
    releaser.approve(winner.id)
    store.set_test_metrics(winner.id, {"ndcg@10": 0.2875}, {})
    store.record_failure(FailureDraft(agent_name="recommender", experiment_id=winner.id,
                                      kind=FailureKind.TIMEOUT, message="slow"))
    page, histories = build_report(store, releaser.repo, families)
    assert [h.agent.name for h in histories] == ["recommender"]     # the reranker has no experiment
    assert "<script>alert" not in page and "&lt;script&gt;alert" in page
    assert "<script src=" not in page and page.count("<script") >= 4
    assert "0.0012" in page and "0.2875" in page and "recommender/v2 ← recommender/v1" in page
    assert "TIMEOUT (1)" in page
    fig = segments_vs_parent(histories[0])
    assert [t.name for t in fig.data] == ["recommender/v1 val", "recommender/v2 val"]
    assert fig.data[1].y[0] > fig.data[0].y[0]
