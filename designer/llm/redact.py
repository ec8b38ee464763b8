"""Keep secrets out of everything we store: prompts, responses, errors, logs.

Keys come only from the environment. ``redact`` replaces the value of every environment
variable whose name looks secret (``*KEY*``, ``*TOKEN*``, ``*SECRET*``, ``*PASSWORD*``)
and anything shaped like a provider key (``sk-...``) with ``[REDACTED]``.
"""
from __future__ import annotations

import os
import re

_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL", re.IGNORECASE)
_KEY_SHAPE = re.compile(r"\b(?:sk|pk|rk|gsk|xai)-[A-Za-z0-9_\-]{12,}")
_BEARER = re.compile(r"(Bearer\s+)[A-Za-z0-9_\-\.=]{8,}", re.IGNORECASE)
MASK = "[REDACTED]"
_MIN_SECRET_LEN = 6


def secret_values() -> list[str]:
    """Values of secret-looking environment variables, longest first (so overlaps mask fully)."""
    values = {v for k, v in os.environ.items()
              if _SECRET_NAME.search(k) and v and len(v) >= _MIN_SECRET_LEN and v != "not-needed"}
    return sorted(values, key=len, reverse=True)


def redact(text: str | None) -> str | None:
    """Return ``text`` with secrets masked; ``None`` stays ``None``."""
    if not text:
        return text
    for value in secret_values():
        text = text.replace(value, MASK)
    text = _KEY_SHAPE.sub(MASK, text)
    return _BEARER.sub(lambda m: m.group(1) + MASK, text)
