"""Static checks: early, one-sentence feedback before the sandbox."""
from __future__ import annotations

import pytest
from llm_fixtures import PARENT_CODE

from designer.static_check import check_module


def test_a_correct_module_passes():
    assert check_module(PARENT_CODE) == []
    assert check_module("import torch, scipy.sparse as sp\nfrom collections import Counter\n"
                        + PARENT_CODE) == []


@pytest.mark.parametrize("line, expected", [
    ("import subprocess", "import of 'subprocess' is not allowed"),
    ("import socket", "import of 'socket' is not allowed"),
    ("from os import system", "import of 'os' is not allowed"),
    ("import ctypes.util", "import of 'ctypes.util' is not allowed"),
    ("from . import helpers", "relative imports"),
    ("x = __import__('os')", "calling __import__() is not allowed"),
    ("eval('1+1')", "calling eval() is not allowed"),
    ("exec('pass')", "calling exec() is not allowed"),
    ("data = open('/etc/passwd').read()", "calling open() is not allowed"),
])
def test_hostile_code_is_named_with_its_line(line, expected):
    problems = check_module(line + "\n" + PARENT_CODE)
    assert len(problems) == 1 and expected in problems[0] and problems[0].startswith("Line 1")


def test_syntax_error_reports_its_line():
    problems = check_module("import numpy as np\n\nclass Agent(:\n    pass\n")
    assert len(problems) == 1 and "SyntaxError at line 3" in problems[0]


def test_contract_methods_and_role_extras():
    assert check_module("class Model:\n    pass\n") == [
        "The module defines no top-level class named 'Agent'; the harness instantiates "
        "Agent(**params)."]
    no_fit = PARENT_CODE.replace("def fit(self, train)", "def train(self, data)")
    assert any("no method 'fit'" in p for p in check_module(no_fit))
    assert any("no method 'rerank'" in p for p in check_module(PARENT_CODE, role="reranker"))
    bad_arity = PARENT_CODE.replace("def recommend(self, users, k)", "def recommend(self, users)")
    assert check_module(bad_arity) == [
        "Agent.recommend takes 1 argument(s) besides self; the contract passes 2."]


def test_inherited_methods_count():
    code = ("class Base:\n    def __init__(self, **p): pass\n    def fit(self, t): pass\n"
            "    def recommend(self, u, k): pass\n\nclass Agent(Base):\n    pass\n")
    assert check_module(code) == []


def test_size_limit():
    problems = check_module(PARENT_CODE + "#" * 500, max_bytes=300)
    assert len(problems) == 1 and "over the limit of 300 bytes" in problems[0]
