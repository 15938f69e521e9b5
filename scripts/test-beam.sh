#!/usr/bin/env bash
# The Apache Beam engine's tests, in their own environment (.venv-beam): the beam extra
# pins protobuf and Pillow lower than the main environment's; s3 (s3fs) for the test converting
# from and to moto's S3 server with Beam workers. Extra arguments go to pytest.
VENV=.venv-beam EXTRAS=test,beam,s3 source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
.venv-beam/bin/python -m pytest -q -p no:cacheprovider tests/convert/test_beam.py tests/convert/test_detection_roundtrip.py tests/test_golden.py tests/test_roundtrip.py "$@"
