"""Answer forms: fenced module, SEARCH/REPLACE edits, JSON."""
from __future__ import annotations

import json

import pytest
from llm_fixtures import GOOD_MODULE, PARENT_CODE

from designer.llm.answers import apply_edit, parse_answer
from designer.llm.errors import AnswerParseError


def fenced(code: str, lang: str = "python") -> str:
    return f"```{lang}\n{code}```"


def test_plain_markdown_with_one_python_block_is_taken_as_is():
    answer = f"I add a recency boost because tastes drift.\n\n{fenced(GOOD_MODULE)}\n\nHope it helps."
    parsed = parse_answer(answer, base_code=PARENT_CODE)
    assert parsed.form == "module" and parsed.code == GOOD_MODULE
    assert "recency boost" in parsed.rationale and "Hope it helps" in parsed.rationale
    assert "class Agent" not in parsed.rationale


def test_of_several_blocks_the_one_defining_agent_wins():
    answer = f"Use it like:\n{fenced('agent = Agent()' + chr(10))}\nThe module:\n{fenced(GOOD_MODULE, 'py')}"
    assert parse_answer(answer).code == GOOD_MODULE


def test_bare_code_and_cut_off_fence_are_accepted():
    assert parse_answer(GOOD_MODULE).code.strip() == GOOD_MODULE.strip()
    cut = "Here:\n```python\n" + GOOD_MODULE  # the answer hit max_tokens before the fence closed
    assert parse_answer(cut).code == GOOD_MODULE


def test_search_replace_edits_apply_to_the_base_code():
    answer = ("Boost recent items.\n```python\n<<<<<<< SEARCH\n        self.params = params\n=======\n"
              "        self.params = params\n        self.decay = params.get('decay', 0.9)\n"
              ">>>>>>> REPLACE\n```\n<<<<<<< SEARCH\n    \"\"\"Most popular items.\"\"\"\n=======\n"
              "    \"\"\"Recent popularity.\"\"\"\n>>>>>>> REPLACE\n")
    parsed = parse_answer(answer, base_code=PARENT_CODE)
    assert parsed.form == "edits" and parsed.rationale == "Boost recent items."
    assert "self.decay = params.get('decay', 0.9)\n" in parsed.code
    assert '"""Recent popularity."""' in parsed.code and "Most popular" not in parsed.code
    compile(parsed.code, "candidate", "exec")


def test_search_text_not_found_is_named_in_the_error():
    answer = "<<<<<<< SEARCH\n    def predict(self):\n=======\n    def x(self):\n>>>>>>> REPLACE"
    with pytest.raises(AnswerParseError, match=r"(?s)not found in the current code.*\n    def predict"):
        parse_answer(answer, base_code=PARENT_CODE)


def test_edit_tolerates_trailing_whitespace_only():
    code = "a = 1   \nb = 2\n"
    assert apply_edit(code, "a = 1\nb = 2\n", "a = 3\nb = 4\n") == "a = 3\nb = 4\n"
    with pytest.raises(AnswerParseError):
        apply_edit(code, "  a = 1\n", "x")


def test_json_code_and_json_params():
    parsed = parse_answer(json.dumps({"rationale": "why", "code": GOOD_MODULE}))
    assert (parsed.form, parsed.code, parsed.rationale) == ("json", GOOD_MODULE, "why")
    parsed = parse_answer("```json\n" + json.dumps({"rationale": "r", "params": {"k": 3}}) + "\n```")
    assert parsed.code is None and parsed.params == {"k": 3}


@pytest.mark.parametrize("answer, message", [
    ("", "empty"),
    ("I think we should use matrix factorisation.", "No code found"),
    (fenced("def helper():\n    return 1\n"), "does not define `class Agent`"),
    ('{"rationale": "x", "code": ', "not valid JSON"),
    ('{"rationale": "x"}', '"code" string'),
    ("<<<<<<< SEARCH\nx\n>>>>>>> REPLACE", "malformed"),
])
def test_unusable_answers_say_what_to_send(answer, message):
    with pytest.raises(AnswerParseError, match=message):
        parse_answer(answer, base_code=PARENT_CODE)
