#!/usr/bin/env bash
# Install Chatto into ./.venv (first time only) and run it on embedded defaults.
# A config with fresh secrets is written to ./chatto.toml if it does not exist.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/chatto ]; then
    "$PY" -m venv .venv
    .venv/bin/pip install --quiet --upgrade pip
    .venv/bin/pip install --quiet -e .
fi
exec .venv/bin/chatto run --init -c "${CHATTO_CONFIG:-chatto.toml}" "$@"
