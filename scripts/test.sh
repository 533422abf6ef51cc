#!/usr/bin/env bash
# The README's test command (after `bash scripts/setup.sh --test`), and what CI runs:
#   1. lint: ruff as configured in pyproject.toml (fails in seconds)
#   2. the fast lane: every test but the slow and browser ones (what to run while working)
#   3. the slow and browser lane: with 2, the whole suite (the tests of `.venv/bin/python -m pytest -q`)
# --fast runs 1 and 2 only. Other arguments go to pytest (e.g. -x, -k NAME).
set -euo pipefail
cd "$(dirname "$0")/.."
fast=0
args=()
for a in "$@"; do
  if [ "$a" = "--fast" ]; then fast=1; else args+=("$a"); fi
done
py=.venv/bin/python
if [ ! -x "$py" ]; then
  echo "scripts/test.sh: no .venv here: run bash scripts/setup.sh --test first" >&2
  exit 2
fi
"$py" -m ruff check --output-format concise .
"$py" -m pytest -q -m "not slow and not browser" ${args[@]+"${args[@]}"}
if [ "$fast" = 0 ]; then
  "$py" -m pytest -q -m "slow or browser" ${args[@]+"${args[@]}"}
fi
