#!/usr/bin/env bash
# Install into ./.venv and start the whole stack at http://localhost:8000 (Ctrl-C stops it).
# SQLite files and the generated JWT secret live in ./data. Extra arguments go to devstack
# (e.g. `--host 0.0.0.0` to be reachable from other machines).
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[stack]'
exec .venv/bin/python -m devstack "$@"
