"""How fast is one page of an agent's history among 100,000 experiments?

Fills a fresh knowledge base (SQLite file in a temp folder, and PostgreSQL in a throw-away
schema) with 100,000 experiments spread over 20 agents, then times
``Store.list_experiments(agent_name=X, limit=50)``: the first page, a deep page (keyset
cursor near the agent's oldest rows) and a filtered page (status=COMPLETED). Median of 20
calls each. Run: ``python benchmarks/kb_history.py [--experiments N]``.
PostgreSQL URL: ``AGENTICRS_BENCH_PG_URL`` or ``AGENTICRS_TEST_PG_URL``, default
``postgresql+psycopg://postgres@127.0.0.1:5432/test``; skipped if unreachable.
"""
from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # plain `python benchmarks/...`

from sqlalchemy import create_engine, insert, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from knowledge_base import AgentSpec, ExperimentStatus, Store  # noqa: E402
from knowledge_base import engine as engines  # noqa: E402
from knowledge_base.rows import ExperimentRow  # noqa: E402

AGENTS = [f"agent{i:02d}" for i in range(20)]
STATUSES = ["COMPLETED"] * 6 + ["FAILED", "TIMED_OUT", "INVALID_OUTPUT", "REJECTED_STATIC"]
REPEATS = 20
PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=100_000)
    args = parser.parse_args()
    print(f"machine: {_cpu()}, {os.cpu_count()} cores, {platform.system()} "
          f"{platform.release()}, Python {platform.python_version()}")
    print(f"{args.experiments:,} experiments over {len(AGENTS)} agents; "
          f"median of {REPEATS} calls, page = 50 rows\n")
    print(f"{'backend':<11} {'fill s':>7} {'first page ms':>14} {'deep page ms':>13} "
          f"{'status=COMPLETED ms':>20}")
    with tempfile.TemporaryDirectory() as folder:
        _report("sqlite", f"sqlite:///{Path(folder) / 'knowledge.db'}", args.experiments)
    with _pg_schema() as url:
        if url is None:
            print(f"{'postgresql':<11} skipped: server not reachable")
        else:
            _report("postgresql", url, args.experiments)


def _report(backend: str, url: str, n: int) -> None:
    with Store.open(url) as store:
        store.upgrade()
        fill = _fill(store, url, n)
        agent = AGENTS[7]
        ids = [e.id for e in store.list_experiments(agent_name=agent, limit=n)]
        deep_cursor = ids[-100]  # only 99 older rows of this agent remain
        first = _median_ms(lambda: store.list_experiments(agent_name=agent, limit=50))
        deep = _median_ms(
            lambda: store.list_experiments(agent_name=agent, limit=50, before_id=deep_cursor))
        done = _median_ms(lambda: store.list_experiments(
            agent_name=agent, status=ExperimentStatus.COMPLETED, limit=50))
    print(f"{backend:<11} {fill:>7.1f} {first:>14.2f} {deep:>13.2f} {done:>20.2f}")


def _fill(store: Store, url: str, n: int) -> float:
    """Bulk-insert ``n`` experiments (Core insert, 5,000 per statement); seconds taken."""
    started = time.perf_counter()
    for name in AGENTS:
        store.upsert_agent(AgentSpec(name=name, family="itemknn"))
    engine = engines.create(url)
    rng = random.Random(0)
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    with engine.begin() as connection:
        for start in range(0, n, 5000):
            rows = [_row(rng, i, t0) for i in range(start, min(n, start + 5000))]
            connection.execute(insert(ExperimentRow), rows)
        connection.execute(text("ANALYZE"))  # as autovacuum / `ANALYZE` would in real use
    engine.dispose()
    return time.perf_counter() - started


def _row(rng: random.Random, i: int, t0: datetime) -> dict[str, object]:
    metrics = {f"{m}@10": rng.random() for m in ("ndcg", "recall", "mrr", "hit", "precision")}
    return {
        "agent_name": rng.choice(AGENTS), "session_id": f"s{i // 500}", "proposer": "llm",
        "proposal": {"kind": "llm", "rationale": "try a wider neighbourhood " * 8},
        "family": "itemknn", "params": {"k": rng.randint(5, 500)}, "code_hash": f"{i:064x}",
        "dataset_key": "synthetic/user_temporal", "stage": rng.choice(["cheap", "full"]),
        "status": rng.choice(STATUSES), "promotion": "NOT_BETTER", "metrics": metrics,
        "segments": {"cold": metrics, "heavy": metrics}, "inner_reward": metrics["ndcg@10"],
        "created_at": t0 + timedelta(seconds=i), "finished_at": t0 + timedelta(seconds=i + 1),
    }


def _median_ms(call: Callable[[], object]) -> float:
    call()  # warm caches and prepared statements
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


@contextmanager
def _pg_schema() -> Iterator[str | None]:
    """A URL pointing at a fresh PostgreSQL schema (dropped afterwards), or None."""
    admin_url = os.environ.get("AGENTICRS_BENCH_PG_URL") or os.environ.get(
        "AGENTICRS_TEST_PG_URL", PG_DEFAULT)
    schema = f"kb_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT",
                          connect_args={"connect_timeout": 5})
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception:  # noqa: BLE001 - any failure to connect means "no server here"
        admin.dispose()
        yield None
        return
    try:
        yield make_url(admin_url).update_query_dict(
            {"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


if __name__ == "__main__":
    main()
