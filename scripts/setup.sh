#!/usr/bin/env bash
# Installs what pydsbase needs on a fresh Debian machine; skips what is already there.
# R and its packages come from Debian (r-base-core r-base-dev r-cran-lme4 r-cran-metafor r-cran-jsonlite); Python ones from PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

if ! Rscript -e 'library(lme4); library(metafor)' >/dev/null 2>&1; then
    echo "== installing R, lme4 and metafor from Debian"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq r-base-core r-base-dev r-cran-lme4 r-cran-metafor r-cran-jsonlite >/dev/null
fi

PY=${PYTHON:-python3}
# the checkout the installed pydsbase comes from, asked outside this folder (here it would import this one)
installed=$(cd / && "$PY" -c 'import pathlib, pydsbase; print(pathlib.Path(pydsbase.__file__).resolve().parents[1])' \
    2>/dev/null || true)
if [ "$installed" != "$(pwd -P)" ] || ! "$PY" -c 'import rpy2, fastapi, pytest, hypothesis, ruff' >/dev/null 2>&1 \
        || [ pyproject.toml -nt .setup-stamp ] || [ setup.py -nt .setup-stamp ] \
        || [ pydsbase/rserialize.py -nt .setup-stamp ]; then
    echo "== installing Python dependencies"
    "$PY" -m pip install -q --disable-pip-version-check --root-user-action=ignore -e ".[server,docker,extras,test]"
    touch .setup-stamp
fi
