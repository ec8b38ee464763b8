"""``agenticrs report`` and ``agenticrs llm logs`` through the real CLI.

The report test builds real data (a search session and a scripted-LLM session in the real
sandbox on the tiny synthetic data set), writes the report, and renders it in a real
headless Chromium (Debian's ``chromium``) over the DevTools protocol: no console error, every
plot drawn, a screenshot saved (to ``$REPORT_SCREENSHOT`` if set, e.g.
``REPORT_SCREENSHOT=docs/report-screenshot.png``, else into the test's temp folder).
"""
from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from designer.families import load_families
from knowledge_base.models import LLMCallDraft
from knowledge_base.store import Store
from tests.designer.llm.fake_llm_server import ScriptedLLMServer
from tests.integration.clirun import BIN, TINY, cli
from tests.integration.test_cli_llm import SNOOPING, fenced

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

PLOTS_JS = """Array.from(document.querySelectorAll('.js-plotly-plot')).map(d => ({
  id: d.id, svgs: d.querySelectorAll('svg.main-svg').length, traces: (d._fullData || []).length,
  marks: d.querySelectorAll('.scatterlayer .point, .barlayer .point, .parcoords .line, path.js-line').length,
  title: (d.querySelector('.gtitle') || {}).textContent || ''}))"""


def recency_ease(**params) -> str:
    family = load_families()["recency_ease"]
    return family.render(family.validate(params))


# ---- llm logs ------------------------------------------------------------------------------

def _calls(ws: Path) -> None:
    """Three scripted calls in two sessions, one of them failed."""
    with Store.open(f"sqlite:///{ws / 'knowledge.db'}") as store:
        for session, prompt, answer, tokens, cost, error in (
                ("sess-a", "Improve the popularity agent.", "Use EASE with l2=300.", (1200, 300), 0.0021, None),
                ("sess-a", "Your answer had no code block.", "", (1300, 0), 0.0013, "HTTP 500 from the server"),
                ("sess-b", "Try a sequential model.", "SASRec with 2 layers.", (900, 450), 0.0030, None)):
            store.record_llm_call(LLMCallDraft(
                agent_name="recommender", session_id=session, model="openai/scripted", prompt=prompt,
                response=answer, prompt_tokens=tokens[0], completion_tokens=tokens[1], cost_usd=cost,
                latency_seconds=1.5, error=error))


def test_llm_logs_shows_prompts_answers_and_cost_per_session(ws):
    assert "no LLM call recorded" in cli(ws, "llm", "logs").stdout
    _calls(ws)
    data = json.loads(cli(ws, "llm", "logs", "-n", "2", "--json").stdout)
    assert [c["prompt"] for c in data["calls"]] == ["Your answer had no code block.", "Try a sequential model."]
    assert {"id", "session", "experiment_id", "model", "purpose", "prompt", "response", "prompt_tokens",
            "completion_tokens", "cost_usd", "latency_seconds", "error", "created_at"} <= set(data["calls"][0])
    sessions = {s["session"]: s for s in data["sessions"]}      # totals cover every call, not only -n
    assert sessions["sess-a"]["calls"] == 2 and sessions["sess-a"]["cost_usd"] == pytest.approx(0.0034)
    assert sessions["sess-a"]["prompt_tokens"] == 2500 and sessions["sess-a"]["errors"] == 1
    assert sessions["sess-b"]["completion_tokens"] == 450 and sessions["sess-b"]["models"] == ["openai/scripted"]
    only_b = json.loads(cli(ws, "llm", "logs", "--session", "sess-b", "-n", "0", "--json").stdout)
    assert [c["session"] for c in only_b["calls"]] == ["sess-b"] and len(only_b["sessions"]) == 1
    assert len(json.loads(cli(ws, "llm", "logs", "-n", "0", "--json").stdout)["calls"]) == 3
    text = cli(ws, "llm", "logs", "-n", "0").stdout
    assert text.index("Improve the popularity agent.") < text.index("Use EASE with l2=300.") \
        < text.index("Try a sequential model.")                  # newest last, answer after prompt
    assert "### Prompt" in text and "### Response" in text and "HTTP 500 from the server" in text
    assert "0.0034" in text and "cost per session" in text


def test_report_refuses_bad_names_and_paths(ws, tmp_path):
    result = cli(ws, "report", "--pipeline", "recommender", check=False)
    assert result.returncode == 2 and "not a pipeline" in result.stderr and "--agent recommender" in result.stderr
    result = cli(ws, "report", "--pipeline", "nosuch", check=False)
    assert result.returncode == 1 and "nosuch" in result.stderr and "Traceback" not in result.stderr
    result = cli(ws, "report", "--agent", "recommender", "--pipeline", "default", check=False)
    assert result.returncode == 2 and "not both" in result.stderr
    result = cli(ws, "report", "-o", str(tmp_path / "missing" / "r.html"), check=False)
    assert result.returncode == 2 and "no folder" in result.stderr
    result = cli(ws, "report", "--agent", "nosuch", check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr


# ---- the report in a real browser ------------------------------------------------------------

@pytest.fixture(scope="module")
def designed(tmp_path_factory) -> Path:
    """A workspace after a real search session and a real LLM session (scripted server)."""
    ws = tmp_path_factory.mktemp("report") / "ws"
    cli(ws, "init")
    # 9 iterations: every family once at its defaults, then >= 3 runs of the best (importances)
    cli(ws, "design", "--agent", "recommender", "--iterations", "9", "--auto-approve", *TINY, timeout=1200)
    with ScriptedLLMServer() as server:
        server.push("I would switch to a linear item-item model.",          # no code: re-asked
                    fenced(recency_ease(l2=260.0), "A little less regularisation."),  # passes the screen
                    fenced(SNOOPING, "Read extra data."))                  # fails in the sandbox
        env = {k: v for k, v in os.environ.items() if k != "AGENTICRS_DB"}
        env |= {"NO_COLOR": "1", "OPENAI_API_KEY": "sk-test"}
        result = subprocess.run(
            [str(BIN), "--workspace", str(ws), "design", "--agent", "recommender", "--proposer", "llm",
             "--model", "openai/scripted", "--api-base", server.url, "--iterations", "4", "--max-calls", "3",
             "--prices", "1.0,2.0", "--auto-approve", *TINY], capture_output=True, text=True, timeout=900, env=env)
        assert result.returncode == 0, result.stderr
    return ws


@pytest.mark.sandbox
@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.timeout(1800)
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium: run scripts/setup.sh as root")
def test_report_renders_every_plot_offline_in_chromium(designed, tmp_path):
    target = tmp_path / "report.html"
    started = time.perf_counter()
    written = json.loads(cli(designed, "report", "-o", str(target), "--json").stdout)
    seconds = time.perf_counter() - started
    history = json.loads(cli(designed, "history", "--limit", "500", "--json").stdout)
    versions = json.loads(cli(designed, "agents", "versions", "recommender", "--json").stdout)
    assert written["path"] == str(target.resolve()) and written["experiments"] == len(history)
    assert written["llm_calls"] == 3 and len(versions) >= 2
    print(f"report: {written['bytes'] / 1024:.0f} KB for {len(history)} experiments in {seconds:.1f} s")

    shot = Path(os.environ.get("REPORT_SCREENSHOT") or tmp_path / "report.png")
    seen = asyncio.run(render(target, shot, tmp_path / "chromium-profile"))
    assert seen["errors"] == [], seen["errors"]
    assert seen["external"] == [] and seen["script_src"] == 0        # offline: plotly.js is inlined
    plots = {p["id"]: p for p in seen["plots"]}
    for index in range(6):  # best so far, timeline, lineage, segments, failures, LLM cost
        plot = plots[f"recommender-plot-{index}"]
        assert plot["svgs"] >= 1 and plot["traces"] >= 1 and plot["marks"] >= 1, plot
    sessions = {h["session"] for h in history if h["stage"] == "full" and h["status"] == "COMPLETED"}
    assert plots["recommender-plot-0"]["traces"] == len(sessions) >= 2
    assert "val ndcg@10" in plots["recommender-plot-0"]["title"]
    assert any(p.endswith("-importance") for p in plots) and any(p.endswith("-parallel") for p in plots)
    text = seen["text"]
    for v in versions:
        assert v["tag"] in text
    assert "p-value" in text and "test ndcg@10" in text and "openai/scripted" in text
    assert len(seen["diffs"]) == len(versions) - 1                        # a diff per promoted version
    assert all(d.startswith("--- recommender/v") and "\n+++ recommender/v" in d for d in seen["diffs"])
    assert shot.stat().st_size > 50_000


async def render(html: Path, screenshot: Path, profile: Path, probes: dict[str, str] | None = None,
                 clip: str | None = None) -> dict:
    """Open ``html`` in headless Chromium; return console errors, the plots, the page text and
    the value of each JavaScript expression in ``probes`` (under its key). The screenshot is
    of the page's top, or of the element the CSS selector ``clip`` names."""
    import aiohttp
    proc = subprocess.Popen([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                             "--remote-debugging-port=0", f"--user-data-dir={profile}", "--window-size=1280,900",
                             "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port = _devtools_port(profile / "DevToolsActivePort")
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/json/list") as response:
                targets = await response.json()
            url = next(t for t in targets if t["type"] == "page")["webSocketDebuggerUrl"]
            async with http.ws_connect(url, max_msg_size=0) as ws:
                return await _inspect(DevTools(ws), html, screenshot, probes or {}, clip)
    finally:
        proc.kill()
        proc.wait()


def _devtools_port(path: Path) -> int:
    deadline = time.time() + 30
    while time.time() < deadline:
        if path.exists() and path.read_text().strip():
            return int(path.read_text().split()[0])
        time.sleep(0.1)
    raise AssertionError("chromium did not open its DevTools port")


async def _inspect(cdp: "DevTools", html: Path, screenshot: Path, probes: dict[str, str], clip: str | None) -> dict:
    for domain in ("Runtime", "Log", "Page", "Network"):
        await cdp.send(f"{domain}.enable")
    await cdp.send("Page.navigate", url=html.resolve().as_uri())
    await cdp.wait_for("Page.loadEventFired")
    await asyncio.sleep(1.0)  # plotly draws after load; let responsive relayouts settle
    plots = await cdp.evaluate(PLOTS_JS)
    text = await cdp.evaluate("document.body.innerText")
    script_src = await cdp.evaluate("document.querySelectorAll('script[src]').length")
    diffs = await cdp.evaluate("Array.from(document.querySelectorAll('pre.diff')).map(p => p.textContent)")
    probed = {key: await cdp.evaluate(expression) for key, expression in probes.items()}
    size = (await cdp.send("Page.getLayoutMetrics"))["cssContentSize"]
    top = await cdp.evaluate(f"document.querySelector({json.dumps(clip)}).getBoundingClientRect().top + scrollY"
                             if clip else "0")
    height = min(int(size["height"] - top), 4200)  # the top: summary, curves, lineage
    shot = await cdp.send("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                          clip={"x": 0, "y": top, "width": 1280, "height": height, "scale": 1})
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    screenshot.write_bytes(base64.b64decode(shot["data"]))
    requested = [e["params"]["request"]["url"] for e in cdp.events if e.get("method") == "Network.requestWillBeSent"]
    external = [u for u in requested if not u.startswith(("file:", "data:", "about:", "blob:"))]
    return {"errors": cdp.errors(), "plots": plots, "text": text, "script_src": script_src, "external": external,
            "diffs": diffs, **probed}


class DevTools:
    """The few Chrome DevTools Protocol calls the test needs, over one websocket."""

    def __init__(self, ws) -> None:
        self.ws, self.next_id, self.events = ws, 0, []

    async def send(self, method: str, **params) -> dict:
        self.next_id += 1
        await self.ws.send_json({"id": self.next_id, "method": method, "params": params})
        while True:
            message = await asyncio.wait_for(self.ws.receive_json(), 60)
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                return message["result"]
            self.events.append(message)

    async def wait_for(self, event: str) -> None:
        while not any(e.get("method") == event for e in self.events):
            self.events.append(await asyncio.wait_for(self.ws.receive_json(), 60))

    async def evaluate(self, expression: str):
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise AssertionError(result["exceptionDetails"])
        return result["result"]["value"]

    def errors(self) -> list[str]:
        found = []
        for e in self.events:
            method, params = e.get("method"), e.get("params", {})
            if method == "Runtime.exceptionThrown":
                found.append(params["exceptionDetails"].get("exception", {}).get("description", "exception"))
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                found.append(" ".join(str(a.get("value", a.get("description"))) for a in params["args"]))
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                found.append(params["entry"]["text"])
        return found
