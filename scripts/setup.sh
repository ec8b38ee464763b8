#!/usr/bin/env bash
# Set up everything the project needs on a fresh machine: system packages (as root),
# the project venv (.venv) and the sandbox Python that an unprivileged uid can run.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  missing=""
  command -v bwrap >/dev/null || missing="$missing bubblewrap"
  # libseccomp compiles the sandbox's syscall filter (through the pyseccomp package)
  ldconfig -p 2>/dev/null | grep -q 'libseccomp\.so\.2' || missing="$missing libseccomp2"
  [ -x /usr/bin/chromium ] || missing="$missing chromium"   # the report test renders in it
  [ -x /usr/bin/python3.11 ] && /usr/bin/python3.11 -c 'import ensurepip' 2>/dev/null || missing="$missing python3-venv"
  if [ -n "$missing" ]; then
    echo "setup: installing system packages:$missing" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  fi
fi

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# torch first and pinned: an unpinned torch would pull a multi-GB CUDA build.
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[ray,test]"

if [ "$(id -u)" = 0 ]; then
  bash scripts/setup-sandbox-python.sh
else
  echo "setup: not root, so the sandbox cannot drop to a dedicated uid; runs use a degraded tier" >&2
fi
echo "setup: done" >&2
