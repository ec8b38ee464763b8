"""The one-way import rule of STYLE.md: designer -> sandbox, knowledge_base; those two independent."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def run_lint(cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run([str(LINT), "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def copy_tree(tmp_path: Path) -> Path:
    for name in ("designer", "sandbox", "knowledge_base"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_project_keeps_its_layers(tmp_path):
    result = run_lint(copy_tree(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_sandbox_module_importing_the_designer_is_caught(tmp_path):
    tree = copy_tree(tmp_path)
    (tree / "sandbox" / "leak.py").write_text("from designer.loop import DesignLoop\n")
    result = run_lint(tree)
    assert result.returncode != 0
    assert "sandbox.leak" in result.stdout


def test_the_knowledge_base_importing_the_sandbox_is_caught(tmp_path):
    tree = copy_tree(tmp_path)
    (tree / "knowledge_base" / "leak.py").write_text("import sandbox.outcome\n")
    result = run_lint(tree)
    assert result.returncode != 0
    assert "knowledge_base.leak" in result.stdout
