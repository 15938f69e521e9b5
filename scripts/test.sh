#!/usr/bin/env bash
# Run the test suite (creates .venv on first use). Extra arguments go to pytest.
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
.venv/bin/ruff check --quiet .
.venv/bin/python -m pytest -q "$@"
