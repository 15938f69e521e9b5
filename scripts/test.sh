#!/usr/bin/env bash
# Run the test suite (creates .venv on first use), then the Beam engine's tests in
# .venv-beam (scripts/test-beam.sh; SKIP_BEAM=1 skips them). Extra arguments go to pytest.
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
.venv/bin/ruff check --quiet .
.venv/bin/python -m pytest -q "$@"
if [ "${SKIP_BEAM:-0}" != 1 ] && [ $# -eq 0 ]; then
  bash scripts/test-beam.sh
fi
