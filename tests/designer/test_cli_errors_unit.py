"""The CLI's last line of defence: an error no package translated is still one line."""
from __future__ import annotations

import errno

import pytest

from designer.cli import app


def test_unexpected_errors_are_one_line_saying_what_to_do(monkeypatch, capsys, tmp_path):
    def boom(*_a, **_k):
        raise KeyError("internal detail")
    monkeypatch.setattr("designer.cli.init.Store.open", boom)
    with pytest.raises(SystemExit) as info:
        app.main(["--workspace", str(tmp_path / "ws"), "init"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == 1 and len(lines) == 1
    assert "unexpected KeyError" in lines[0] and "--verbose" in lines[0]


@pytest.mark.parametrize(("error", "needle"), [
    (OSError(errno.ENOSPC, "No space left on device", "/ws/experiments/000003/config.json"), "free some space"),
    (OSError(errno.EROFS, "Read-only file system", "/ws/workspace.json"), "--workspace DIR"),
    (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"), "UTF-8"),
])
def test_os_and_encoding_errors_name_the_fix(error, needle):
    message = app.unexpected_message(error)
    assert needle in message and "\n" not in message
