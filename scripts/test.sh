#!/usr/bin/env bash
# The test command: installs what it needs, then lints, type-checks and runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
PY=${PYTHON:-python3}
echo "== ruff";  "$PY" -m ruff check pydsbase r_server
echo "== mypy";  "$PY" -m mypy pydsbase r_server
echo "== pytest"
# Two workers (the CI machine's two cores), a whole test file per worker at a time (--dist loadfile), so a
# file's module fixtures (study servers, containers) start once. Files go out in collection order (tests/conftest.py puts the
# longest first); xdist would otherwise reorder them by their number of tests. PYDSBASE_TEST_WORKERS=0 runs in one process.
# pytest-benchmark, where a machine has it, warns under xdist (an error here): we time nothing in tests.
"$PY" -m pytest -q -ra -n "${PYDSBASE_TEST_WORKERS:-2}" --dist loadfile --no-loadscope-reorder -p no:benchmark "$@"
