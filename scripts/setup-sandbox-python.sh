#!/usr/bin/env bash
# Build the Python environment that sandboxed candidates run with (isolation tier A).
#
# Run as root, from anywhere:   bash scripts/setup-sandbox-python.sh [PROJECT_VENV]
#
# Why: the project's interpreter usually lives under /root (mode 0700), which the
# unprivileged sandbox uid cannot execute.  This script creates a world-readable venv
# from Debian's /usr/bin/python3.11 at $AGENTICRS_SANDBOX_PREFIX (default
# /opt/agenticrs/sandbox-python) with numpy, scipy and torch at the SAME versions as the
# project venv (torch always pinned, never unpinned: an unpinned torch pulls a CUDA build).
# Idempotent and fast when already done (a stamp file records the installed versions).
# The sandbox runs as numeric uids 61000+slot; no /etc/passwd entries are needed.
set -euo pipefail

PREFIX="${AGENTICRS_SANDBOX_PREFIX:-/opt/agenticrs/sandbox-python}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PROJECT_VENV="${1:-$HERE/.venv}"
BASE_PYTHON=/usr/bin/python3.11
TORCH_DEFAULT="2.13.0"

if [[ "$(id -u)" != 0 ]]; then
    echo "setup-sandbox-python: must run as root (it writes $PREFIX and may apt-get install)" >&2
    exit 1
fi

need_pkgs=()
[[ -x "$BASE_PYTHON" ]] || need_pkgs+=(python3.11)
"$BASE_PYTHON" -c 'import ensurepip, venv' 2>/dev/null || need_pkgs+=(python3-venv)
command -v bwrap >/dev/null || need_pkgs+=(bubblewrap)
# The runner (project venv, pyseccomp) compiles the sandbox's syscall filter with libseccomp.
ldconfig -p 2>/dev/null | grep -q 'libseccomp\.so\.2' || need_pkgs+=(libseccomp2)
if (( ${#need_pkgs[@]} )); then
    echo "setup-sandbox-python: apt-get install ${need_pkgs[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}"
fi

# Versions to install: those of the project venv when it exists, else the pinned defaults.
if [[ -x "$PROJECT_VENV/bin/python" ]]; then
    read -r NUMPY SCIPY TORCH < <("$PROJECT_VENV/bin/python" -c '
import importlib.metadata as m
print(*(m.version(p) for p in ("numpy", "scipy", "torch")))')
else
    NUMPY="" SCIPY="" TORCH="$TORCH_DEFAULT"
fi
case "$TORCH" in 2.13.0*) ;; *) echo "setup-sandbox-python: project torch is $TORCH, expected 2.13.0" >&2; exit 1;; esac
SPECS=("numpy${NUMPY:+==$NUMPY}" "scipy${SCIPY:+==$SCIPY}" "torch==$TORCH")
STAMP="$PREFIX/.agenticrs-stamp"
WANT="python=$("$BASE_PYTHON" -V 2>&1) ${SPECS[*]}"

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" && -x "$PREFIX/bin/python" ]]; then
    echo "setup-sandbox-python: $PREFIX up to date ($WANT)"
    exit 0
fi

echo "setup-sandbox-python: building $PREFIX with ${SPECS[*]}"
umask 022
mkdir -p "$(dirname "$PREFIX")"
"$BASE_PYTHON" -m venv --clear "$PREFIX"
# The CPU build of torch comes from pip's configured find-links/index (see pip config list).
"$PREFIX/bin/pip" install --no-input --quiet --disable-pip-version-check "${SPECS[@]}"
"$PREFIX/bin/python" -c 'import numpy, scipy.sparse, torch; print("numpy", numpy.__version__, "scipy", scipy.__version__, "torch", torch.__version__)'
chmod -R a+rX "$PREFIX"
chmod a+rx "$(dirname "$PREFIX")"
echo "$WANT" > "$STAMP"
echo "setup-sandbox-python: done"
