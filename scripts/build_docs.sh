#!/usr/bin/env bash
# Build the docs site into docs/_build/html, warnings as errors. Installs nothing: run
# `bash scripts/setup.sh --docs` first (the `docs` extra: sphinx, furo, myst-parser).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
exec "$PY" -m sphinx -W --keep-going -b html docs docs/_build/html "$@"
