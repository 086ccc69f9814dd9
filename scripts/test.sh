#!/usr/bin/env bash
# Install everything into ./.venv, then run lint, type checks and the whole test suite.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k auth -x`.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/venv.sh
install_project dev

# The browser tests drive Debian's Chromium (Playwright cannot download its own here), and
# the benchmark suite's smoke test (tests/bench) measures against Debian's nginx.
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
if [ "${#missing[@]}" -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing ${missing[*]} for the browser and benchmark tests" >&2
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The AsyncAPI test validates the protocol document with the official parser, and
# tests/web/test_package.py type-checks the web client's declarations (tsc --strict) and
# packs it (npm pack). Both need Node.js and npm: without them those tests skip, except in
# CI, where npm is required.
if command -v npm >/dev/null 2>&1; then
    npm ci --prefix tests/todo/asyncapi --no-audit --no-fund --ignore-scripts --loglevel=error >/dev/null
    npm ci --prefix tests/web/ts --no-audit --no-fund --ignore-scripts --loglevel=error >/dev/null
elif ci="${CI:-}"; [[ "${ci,,}" =~ ^(1|true|yes)$ ]]; then  # as tests/support.py's IN_CI
    echo "npm not found: CI needs it for the AsyncAPI validation and the TypeScript check" >&2
    exit 1
else
    echo "npm not found: the AsyncAPI validation and the web client's TypeScript check will not run" >&2
fi

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
