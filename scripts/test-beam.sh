#!/usr/bin/env bash
# The Apache Beam engine's tests, in their own environment (.venv-beam): the beam extra
# pins protobuf and Pillow lower than the main environment's. Extra arguments go to pytest.
VENV=.venv-beam EXTRAS=test,beam source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
.venv-beam/bin/python -m pytest -q -p no:cacheprovider tests/test_beam.py tests/test_golden.py tests/test_roundtrip.py "$@"
