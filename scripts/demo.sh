#!/usr/bin/env bash
# The demo command: installs what it needs, then runs three synthetic studies through ds_lmer_slma.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
"${PYTHON:-python3}" -m pydsbase demo "$@"
