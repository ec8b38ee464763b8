"""Novelty filter: a near-duplicate of an evaluated module is not run; the model is re-asked once."""
from __future__ import annotations

import pytest
from llm_fixtures import GOOD_MODULE, PARENT_CODE, experiment, make_context

from designer.llm.budget import LLMBudget
from designer.llm.novelty import normal_form, similarity
from designer.llm.openai_client import OpenAIClient
from designer.llm.proposer import LLMProposer
from designer.loop import DesignLoop
from designer.proposal import ProposalError
from designer.static_check import check_module
from knowledge_base.models import ExperimentStatus, FailureKind
from tests.designer.conftest import FakeExecutor

RENAMED = ('from agent_sdk import topk_unseen\nimport numpy as numpy_\n\n\nclass Agent:\n'
           '    def __init__(self, **options):\n        self.options = options\n\n'
           '    def fit(self, data):  # same model, other names\n'
           '        self.history = data.matrix()\n'
           '        fresh = data.timestamp >= numpy_.quantile(data.timestamp, 0.8)\n'
           '        self.weights = numpy_.bincount(data.item, weights=1.0 + fresh, minlength=data.n_items)\n\n'
           '    def recommend(self, who, n: int):\n'
           '        s = numpy_.tile(self.weights, (len(who), 1))\n'
           '        return topk_unseen(s, self.history, who, n)\n')
DIFFERENT = GOOD_MODULE.replace("weights=1.0 + recent", "weights=1.0 + 3.0 * recent").replace(
    "np.tile(self.pop, (len(users), 1))", "np.tile(np.log1p(self.pop), (len(users), 1))")


def md(code: str) -> str:
    return f"An idea.\n\n```python\n{code}```\n"


def test_renamed_variables_reordered_imports_and_comments_do_not_make_a_new_module():
    assert normal_form(RENAMED) == normal_form(GOOD_MODULE)
    assert similarity(normal_form(GOOD_MODULE), normal_form(DIFFERENT)) < 0.95
    assert normal_form(GOOD_MODULE) != normal_form(PARENT_CODE)
    spaced = 'SPACE = {"alpha": {"type": "float"}}\nclass Agent:\n    def __init__(self, alpha=1.0):\n        self.a = alpha\n'
    assert normal_form(spaced) == normal_form(spaced.replace("alpha", "beta"))  # a renamed SPACE key too


def llm(server, recorder, fast_retry, code_for, **kw):
    return LLMProposer(OpenAIClient(api_base=server.url, retry=fast_retry), model="local", recorder=recorder,
                       budget=LLMBudget(), ask_policy=lambda ctx: "improve", timeout=5.0, code_for=code_for, **kw)


def evaluated(status=ExperimentStatus.COMPLETED):
    return make_context(history=[experiment(7, status=status, code_hash="good")])


def test_a_near_duplicate_answer_is_reasked_once_naming_the_experiment(server, recorder, fast_retry):
    server.push(md(RENAMED), md(DIFFERENT))
    proposal = llm(server, recorder, fast_retry, lambda e: {"good": GOOD_MODULE}.get(e.code_hash)).propose(evaluated())
    assert proposal.code == DIFFERENT and proposal.meta["near_duplicates"] == 1
    assert "too similar to experiment 7 (100%" in server.requests[1].messages[-1]["content"]
    assert "answer rejected: The module is too similar to experiment 7" in recorder.drafts[0].error


def test_two_near_duplicates_end_the_proposal_with_the_reason(server, recorder, fast_retry):
    server.push(md(RENAMED), md(RENAMED), md(DIFFERENT))
    with pytest.raises(ProposalError, match="not run: The module is too similar to experiment 7"):
        llm(server, recorder, fast_retry, lambda e: {"good": GOOD_MODULE}.get(e.code_hash)).propose(evaluated())
    assert len(server.requests) == 2


def test_the_parent_counts_and_failed_modules_do_not(server, recorder, fast_retry):
    renamed_parent = PARENT_CODE.replace("self.pop", "self.counts")
    server.push(md(renamed_parent), md(RENAMED))
    proposal = llm(server, recorder, fast_retry, lambda e: {"good": GOOD_MODULE}.get(e.code_hash)).propose(
        evaluated(ExperimentStatus.FAILED))
    assert proposal.code == RENAMED  # a fix of a failed module may be a small change
    assert "too similar to the parent" in server.requests[1].messages[-1]["content"]


def test_the_filter_can_be_switched_off(server, recorder, fast_retry):
    server.push(md(RENAMED))
    proposal = llm(server, recorder, fast_retry, lambda e: {"good": GOOD_MODULE}.get(e.code_hash),
                   novelty_threshold=None).propose(evaluated())
    assert proposal.code == RENAMED


def test_a_near_duplicate_of_an_evaluated_module_never_reaches_the_sandbox(
        server, recorder, fast_retry, store, releaser, families, settings, workspace):
    executor = FakeExecutor(lambda job: 0.05)
    proposer = llm(server, recorder, fast_retry, lambda e: store.get_code(e.code_hash))
    loop = DesignLoop(store=store, proposer=proposer, executor=executor, releaser=releaser, families=families,
                      agent_name="recommender", settings=settings, workspace=workspace, static_check=check_module)
    server.push(md(GOOD_MODULE))
    loop.run(iterations=1)
    runs = len(executor.jobs)
    server.push(md(RENAMED), md(RENAMED.replace("import numpy as numpy_\nfrom", "from")
                                .replace("from agent_sdk import topk_unseen\nimport numpy as numpy_",
                                         "import numpy as numpy_\nfrom agent_sdk import topk_unseen")))
    loop.run(iterations=2)  # counts the session's iterations: one more
    assert len(executor.jobs) == runs
    [failure] = [f for f in store.list_failures(agent_name="recommender", limit=10) if f.kind is FailureKind.PROPOSAL]
    assert "too similar to experiment" in failure.message
