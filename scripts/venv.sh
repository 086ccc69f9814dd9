# Sourced by dev.sh and test.sh (from the repository root): make ./.venv with python3
# (or $PYTHON) if it is missing, and install the project into it with the given extras.
# The install is skipped when pyproject.toml has not changed since the last successful
# install of those extras (its SHA-256 is kept in .venv/.installed-<extras>); the project
# itself is installed editable, so code changes never need a reinstall.
install_project() {
    local extras=$1
    local stamp=".venv/.installed-${extras}"
    [ -x .venv/bin/python ] || "${PYTHON:-python3}" -m venv .venv
    local fingerprint
    fingerprint=$(.venv/bin/python -c \
        'import hashlib; print(hashlib.sha256(open("pyproject.toml", "rb").read()).hexdigest())')
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$fingerprint" ]; then
        echo "project already installed in .venv (pyproject.toml unchanged)" >&2
        return 0
    fi
    echo "installing the project into .venv (extras: ${extras})" >&2
    rm -f "$stamp"
    .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
    .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[${extras}]"
    echo "$fingerprint" > "$stamp"
}
