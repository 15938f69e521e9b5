#!/usr/bin/env bash
# Run the test suite (creates .venv on first use), then the optional stacks' tests in their
# own environments: the Beam engine in .venv-beam (scripts/test-beam.sh; SKIP_BEAM=1 skips
# it), the PyTorch/grain adapters in .venv-torch (scripts/test-torch.sh; SKIP_TORCH=1) and
# the real TFDS in .venv-tfds (scripts/test-tfds.sh; SKIP_TFDS=1).
# Extra arguments go to pytest (and then only the main suite runs).
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
.venv/bin/ruff check --quiet .
.venv/bin/python -m pytest -q "$@"
if [ $# -eq 0 ]; then
  [ "${SKIP_BEAM:-0}" = 1 ] || bash scripts/test-beam.sh
  [ "${SKIP_TORCH:-0}" = 1 ] || bash scripts/test-torch.sh
  [ "${SKIP_TFDS:-0}" = 1 ] || bash scripts/test-tfds.sh
fi
