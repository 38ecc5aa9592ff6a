#!/usr/bin/env bash
# The test command: installs what it needs, then lints, type-checks and runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
PY=${PYTHON:-python3}
echo "== ruff";  "$PY" -m ruff check pydsbase r_server
echo "== mypy";  "$PY" -m mypy pydsbase r_server
echo "== pytest"
"$PY" -m pytest -q -ra "$@"
