#!/usr/bin/env bash
# The tests against the real TensorFlow Datasets (TFDS loads our datasets; we read the
# datasets TFDS writes), in their own environment (.venv-tfds), so the main one keeps only
# what the package needs. Extra arguments go to pytest.
VENV=.venv-tfds EXTRAS=test,tfds source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
.venv-tfds/bin/python -m pytest -q -p no:cacheprovider tests/format/test_tfds_real.py tests/format/test_tfds_detection.py tests/format/test_tfds.py tests/test_golden.py tests/bench/test_bench_arms.py "$@"
# the docs' TFDS examples, which the main environment skips
.venv-tfds/bin/python -m pytest -q -p no:cacheprovider tests/test_docs.py -k test_optional_example_runs
