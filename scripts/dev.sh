#!/usr/bin/env bash
# Install into ./.venv and start the whole stack at http://localhost:8000 (Ctrl-C stops it).
# SQLite files and the generated JWT secret live in ./data; logs are readable text lines
# (LOG_FORMAT=json to get JSON). The install is skipped while pyproject.toml is unchanged.
# Extra arguments go to devstack (e.g. `--host 0.0.0.0` to be reachable from other machines).
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/venv.sh
install_project stack
exec .venv/bin/python -m devstack "$@"
