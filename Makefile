# One-command entry points. `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
WORKSPACE ?= runs
DEMO_ITERATIONS ?= 6

.PHONY: setup demo test test-fast lint-imports bench clean-workspace

$(VENV)/.installed: pyproject.toml scripts/setup.sh
	bash scripts/setup.sh
	touch $@

setup: $(VENV)/.installed

# The main job on the embedded default: `evolve` of the default pipeline on `synthetic` with
# the search proposer: individual phases (one component agent each) and a compositional one.
demo: setup
	$(VENV)/bin/agenticrs --workspace $(WORKSPACE) init
	$(VENV)/bin/agenticrs --workspace $(WORKSPACE) evolve --pipeline default \
		--dataset synthetic --proposer search --iterations $(DEMO_ITERATIONS) --patience 2 --auto-approve
	$(VENV)/bin/agenticrs --workspace $(WORKSPACE) pipelines versions default
	$(VENV)/bin/agenticrs --workspace $(WORKSPACE) agents versions recommender
	@echo "report (open it in a browser; works offline):"
	@$(VENV)/bin/agenticrs --workspace $(WORKSPACE) report -o $(WORKSPACE)/report.html

# The whole test suite (slow, postgres and sandbox tests included). Exit 5 (no tests) is a failure.
test: setup
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q --durations=15; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: treated as a failure" >&2; exit 1; fi; exit $$rc

test-fast: setup
	$(PY) -m pytest -q -m "not slow"

lint-imports: setup
	$(VENV)/bin/lint-imports

bench: setup
	$(PY) benchmarks/kb_history.py
	$(PY) benchmarks/metrics_throughput.py
	$(PY) benchmarks/sandbox_overhead.py
	$(PY) benchmarks/families.py
	$(PY) benchmarks/search_vs_baselines.py
	$(PY) benchmarks/loop_overhead.py
	$(PY) benchmarks/pipeline_cache.py
	$(PY) benchmarks/pipeline_routing.py

clean-workspace:
	rm -rf $(WORKSPACE)/knowledge.db* $(WORKSPACE)/agents $(WORKSPACE)/experiments $(WORKSPACE)/cache
