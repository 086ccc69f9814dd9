# Sourced by dev.sh and test.sh (from the repository root): make ./.venv with python3
# (or $PYTHON) if it is missing, and install the project into it with the given extras.
install_project() {
    local extras=$1
    [ -x .venv/bin/python ] || "${PYTHON:-python3}" -m venv .venv
    .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
    .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[${extras}]"
}
