#!/usr/bin/env bash
# Install Chatto with its dev tools into ./.venv and run the checks and the
# whole test suite (real nats-server, real HTTP/WebSocket over loopback).
# Extra arguments go to pytest, e.g. scripts/test.sh -k bridge
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
.venv/bin/pip install --quiet --upgrade pip
.venv/bin/pip install --quiet -e '.[dev]'
echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy (strict: chatto/ actors/)"
.venv/bin/mypy
echo "== pytest"
.venv/bin/pytest "$@"
