"""The report's pipeline sections and evolve phases, on a workspace built by the real CLI
(``compose``, ``evolve``, and a pipeline whose latency bound every candidate breaks), opened
in a real headless Chromium: no console error, the champion's graph and the phase timeline
drawn, every number checked against the CLI's own JSON, a screenshot saved (to
``$REPORT_PIPELINES_SCREENSHOT`` if set, e.g. ``docs/report-pipelines.png``).
"""
from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

import pytest

from tests.integration.clirun import TINY, cli
from tests.integration.test_report import CHROMIUM, PLOTS_JS, render

TIGHT = """\
name: tight
outer_reward:
  objective: ndcg@10
  constraints:
    - {metric: latency_ms_per_user, max: 0.001}
branches:
  - sources:
      - {family: popularity, quota: 100}
      - {family: itemknn, quota: 100}
    ranker: {family: fusion, params: {method: rrf}}
"""

GRAPH_JS = """(() => { const svg = document.getElementById('default-graph'); if (!svg) return null;
  return {width: svg.getBoundingClientRect().width, edges: svg.querySelectorAll('path.edge').length,
    nodes: Array.from(svg.querySelectorAll('g.node')).map(g => ({role: g.dataset.role, text: g.textContent,
      width: g.querySelector('rect').getBoundingClientRect().width}))}; })()"""

PHASES_JS = """(() => { const d = document.getElementById('default-pipeline-phases'); if (!d) return null;
  return {bars: Array.from(d.querySelectorAll('.barlayer .point path')).map(p => p.getBoundingClientRect().width),
    traces: (d._fullData || []).map(t => ({name: t.name, rows: Array.from(t.y), colour: t.marker.color})),
    captions: Array.from(d.querySelectorAll('.annotation-text')).map(a => a.textContent)}; })()"""

TRACES_JS = """(id => (document.getElementById(id)._fullData || []).map(t => ({name: t.name,
  x: Array.from(t.x || []), y: Array.from(t.y || [])})))"""


def _rows(selector: str) -> str:
    return (f"Array.from(document.querySelectorAll('{selector} tr')).slice(1)"
            ".map(r => Array.from(r.cells).map(c => c.textContent))")


@pytest.fixture(scope="module")
def evolved(tmp_path_factory) -> Path:
    """``compose`` then ``evolve`` on ``default``; ``tight`` with one INFEASIBLE candidate."""
    ws = tmp_path_factory.mktemp("report-pipelines") / "ws"
    cli(ws, "init")
    cli(ws, "compose", "--iterations", "2", "--auto-approve", *TINY, timeout=900)
    cli(ws, "evolve", "--iterations", "3", "--patience", "1", "--auto-approve", *TINY, timeout=900)
    spec = ws.parent / "tight.yaml"
    spec.write_text(TIGHT)
    cli(ws, "pipelines", "create", "tight", "--spec", str(spec))
    cli(ws, "compose", "--pipeline", "tight", "--iterations", "1", "--auto-approve", *TINY, timeout=900)
    return ws


def _json(ws: Path, *args: str):
    return json.loads(cli(ws, *args, "--json").stdout)


@pytest.mark.sandbox
@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.timeout(1800)
def test_report_pipeline_flag_writes_only_that_pipeline(evolved, tmp_path):
    target = tmp_path / "default.html"
    written = _json(evolved, "report", "--pipeline", "default", "-o", str(target))
    phases = _json(evolved, "history", "--phases")
    assert written["pipelines"] == ["default"] and written["agents"] == []
    assert written["phases"] == len(phases) >= 2
    assert written["experiments"] == len(_json(evolved, "history", "--agent", "default", "--limit", "500"))
    page = target.read_text()
    assert 'id="pipeline-default"' in page and 'id="pipeline-tight"' not in page and 'id="agent-' not in page
    assert '<svg id="default-graph" class="pipeline-graph"' in page and "<script src=" not in page


@pytest.mark.sandbox
@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.timeout(1800)
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium: run scripts/setup.sh as root")
def test_report_draws_pipeline_graph_and_evolve_phases_in_chromium(evolved, tmp_path):
    target = tmp_path / "report.html"
    started = time.perf_counter()
    written = _json(evolved, "report", "-o", str(target))
    seconds = time.perf_counter() - started
    assert {"default", "tight"} <= set(written["pipelines"])
    print(f"report: {written['bytes'] / 1024:.0f} KB, {written['experiments']} experiments, "
          f"{written['phases']} phases in {seconds:.1f} s")
    show = _json(evolved, "pipelines", "show", "default")
    versions = _json(evolved, "pipelines", "versions", "default")
    phases = _json(evolved, "history", "--phases")
    runs = _json(evolved, "history", "--agent", "default", "--limit", "500")
    infeasible = [h for h in _json(evolved, "history", "--agent", "tight", "--limit", "500")
                  if h["promotion"] == "INFEASIBLE"]
    assert infeasible, "the tight pipeline's latency bound should make its candidate INFEASIBLE"

    shot = Path(os.environ.get("REPORT_PIPELINES_SCREENSHOT") or tmp_path / "report-pipelines.png")
    probes = {"graph": GRAPH_JS, "phases": PHASES_JS, "inner": f"{TRACES_JS}('default-pipeline-inner')",
              "best": f"{TRACES_JS}('default-pipeline-best')", "infeasible": _rows("#pipeline-tight table.infeasible"),
              "adoptions": _rows("#pipeline-default table.adoptions")}
    seen = asyncio.run(render(target, shot, tmp_path / "chromium-profile", probes, clip="#pipeline-default"))
    assert seen["errors"] == [], seen["errors"]
    assert seen["external"] == [] and seen["script_src"] == 0        # offline: plotly.js is inlined

    _assert_graph(seen["graph"], show["spec"])
    _assert_phases(seen["phases"], phases)
    plots = {p["id"]: p for p in seen["plots"]}
    for key in ("best", "lineage", "inner", "segments", "phases", "experiments"):
        plot = plots[f"default-pipeline-{key}"]
        assert plot["svgs"] >= 1 and plot["traces"] >= 1 and plot["marks"] >= 1, plot
    assert "val ndcg@10" in plots["default-pipeline-best"]["title"]
    best = seen["best"][0]["y"]                      # a running maximum of the full-stage runs
    full = [h["inner_reward"] for h in runs if h["stage"] == "full" and h["status"] == "COMPLETED"]
    assert best == sorted(best) and len(best) == len(full) and best[-1] == pytest.approx(max(full))
    assert best[-1] >= show["val_objective"] - 1e-12
    champion = next(t for t in seen["inner"] if t["name"] == show["champion"])
    assert sorted(y for y in champion["y"] if y is not None) == pytest.approx(sorted(show["inner_rewards"].values()))
    text = seen["text"]
    for v in versions:
        assert v["tag"] in text and v["graph"] in text
        if v["test_delta"] is not None:
            assert f"{v['test_delta']:+.4f}" in text
    assert len(seen["infeasible"]) == len(infeasible)
    for row, run in zip(seen["infeasible"], sorted(infeasible, key=lambda h: h["id"])):
        reasons = _json(evolved, "history", "show", str(run["id"]))["evidence"]["infeasible"]
        assert row[0] == str(run["id"]) and all(r["reason"] in row[4] for r in reasons), row
    adoptions = [a for p in phases if p["pipeline"] == "default" for a in p["adoptions"]]
    assert len(seen["adoptions"]) == len(adoptions)
    if not adoptions:
        assert "no component version to adopt yet" in text
    assert shot.stat().st_size > 30_000


def _assert_graph(graph: dict | None, spec: dict) -> None:
    """The champion's graph: a box per source (its name and quota), ranker, re-ranker, router."""
    assert graph is not None, "no svg#default-graph"
    roles = [n["role"] for n in graph["nodes"]]
    sources = [s for b in spec["branches"] for s in b["sources"]]
    assert roles.count("source") == len(sources) and roles.count("ranker") == len(spec["branches"])
    assert roles.count("reranker") == sum(1 for b in spec["branches"] if b.get("reranker"))
    assert roles.count("router") == (1 if spec.get("router") else 0) and roles.count("io") == 2
    assert all(n["width"] > 50 for n in graph["nodes"]) and graph["width"] > 300      # laid out, visible
    for node, source in zip([n for n in graph["nodes"] if n["role"] == "source"], sources):
        name = source.get("family") or f"{source['agent']}/v{source['version']}"
        assert name in node["text"] and f"quota {source['quota']}" in node["text"], node
    assert graph["edges"] >= len(graph["nodes"]) - 1


def _assert_phases(drawn: dict | None, phases: list[dict]) -> None:
    """One visible bar per phase, a trace per kind holding exactly its phases, a caption
    naming target, iterations, promotions and why it ended."""
    mine = [p for p in phases if p["pipeline"] == "default"]
    assert drawn is not None, "no phase timeline"
    assert len(drawn["bars"]) == len(mine) and all(w > 0 for w in drawn["bars"])
    by_kind = {t["name"]: t["rows"] for t in drawn["traces"]}
    for kind in {p["kind"] for p in mine}:
        assert by_kind[kind] == [f"phase {p['id']}" for p in mine if p["kind"] == kind]
    assert len({t["colour"] for t in drawn["traces"]}) == len(drawn["traces"])
    for p, caption in zip(mine, drawn["captions"]):
        assert p["target"] in caption and f"{p['iterations']} iteration" in caption, caption
        assert f"{p['promotions']} promoted" in caption and p["ended_because"] in caption, caption


# ---- fast: no sandbox, no browser ------------------------------------------------------------

ROUTED = {"name": "routed", "router": {"family": "activity_router", "params": {"threshold": 20}},
          "outer_reward": {"objective": "ndcg@10", "constraints": [{"metric": "latency_ms_per_user", "max": 5}]},
          "branches": [{"sources": [{"family": "popularity", "quota": 50}, {"family": "itemknn", "quota": 100}],
                        "ranker": {"family": "fusion", "params": {"method": "rrf"}}},
                       {"sources": [{"agent": "recommender", "version": 3, "quota": 100},
                                    {"family": "itemknn", "quota": 100}],
                        "ranker": {"family": "mlp_ranker"}, "reranker": {"family": "calibration"},
                        "rerank_depth": 40}]}


def test_graph_draws_router_branches_sources_and_rerankers_as_well_formed_svg():
    import xml.etree.ElementTree as ET

    from designer.pipelines.spec import PipelineSpec
    from designer.report.graph_svg import pipeline_svg

    svg = ET.fromstring(pipeline_svg(PipelineSpec.from_dict(ROUTED), "routed-graph", "caption <&>"))
    ns = {"s": "http://www.w3.org/2000/svg"}
    nodes = [(g.get("data-role"), " ".join("".join(t.itertext()) for t in g.findall("s:text", ns)))
             for g in svg.iter("{http://www.w3.org/2000/svg}g") if g.get("class") == "node"]
    roles = [role for role, _ in nodes]
    assert roles.count("source") == 4 and roles.count("ranker") == 2 and roles.count("reranker") == 1
    assert roles.count("router") == 1 and roles.count("io") == 2
    texts = dict(zip(("a", "b", "c", "d"), [t for r, t in nodes if r == "source"]))
    assert "quota 50 · src0" in texts["a"] and "src1" in texts["b"] and "recommender/v3" in texts["c"]
    assert "quota 100 · src1" in texts["d"]                # item-kNN again: the same source, the same label
    assert any("re-ranker · top 40" in t for r, t in nodes if r == "reranker")
    assert any("threshold=20" in t for r, t in nodes if r == "router")
    labels = ["".join(t.itertext()) for t in svg.iter("{http://www.w3.org/2000/svg}text")
              if t.get("class") == "edge-label"]
    assert labels == ["label 0", "label 1"] and svg.get("aria-label") == "caption <&>"
    tops = [float(r.get("y")) for g in svg.iter("{http://www.w3.org/2000/svg}g") if g.get("class") == "branch"
            for r in g.findall("s:rect", ns)]
    assert len(tops) == 2 and tops[0] < tops[1]             # one band per branch, stacked


def test_report_shows_adoptions_misalignment_and_an_open_phase(ws, tmp_path):
    from knowledge_base.store import Store

    with Store.open(f"sqlite:///{ws / 'knowledge.db'}") as store:
        first = store.start_phase("run1", "default", "individual", "recommender", "credit for recommender")
        store.update_phase(first.id, iterations=4, promotions=2, ended=True, reason="saturated: 2 iterations",
                           data={"started_because": "credit for recommender", "adoptions": [
                               {"component": "recommender/v2", "experiment": 7, "inner_before": 0.20,
                                "inner_after": 0.25, "outer_before": 0.30, "outer_after": 0.28,
                                "adopted": False, "misaligned": True},
                               {"component": "recommender/v3", "experiment": 9, "inner_before": 0.20,
                                "inner_after": 0.26, "outer_before": 0.30, "outer_after": 0.33,
                                "adopted": True, "misaligned": False}]})
        store.start_phase("run1", "default", "compositional", "default", "exploring compositions")
    target = tmp_path / "r.html"
    written = _json(ws, "report", "--pipeline", "default", "-o", str(target))
    assert written["pipelines"] == ["default"] and written["phases"] == 2
    page = target.read_text()
    assert "<td>recommender/v2</td><td>MISALIGNED</td><td>0.2000 → 0.2500 (+0.0500)</td>" \
           "<td>0.3000 → 0.2800 (-0.0200)</td>" in page
    assert "<td>recommender/v3</td><td>adopted</td>" in page and "1 of 2 component versions adopted, 1 misaligned" in page
    assert "running or killed" in page and "saturated: 2 iterations" in page    # the open phase, the closed one
    assert 'id="default-pipeline-phases"' in page and 'id="default-graph"' in page   # v1 drawn before any run
    assert "no completed full-stage run yet" in page and "no INFEASIBLE candidate" in page
