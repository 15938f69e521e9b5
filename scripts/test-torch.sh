#!/usr/bin/env bash
# The PyTorch and grain adapters' tests (tfrecord_tools.access), in their own environment
# (.venv-torch). torch is pinned to a CPU build installed first: the extra's plain "torch"
# requirement would otherwise pull a multi-GB CUDA build. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
TORCH_VERSION="${TORCH_VERSION:-2.13.0}"
if [ ! -x .venv-torch/bin/python ]; then
  "${PYTHON:-python3}" -m venv .venv-torch
fi
if ! .venv-torch/bin/python -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; then
  PYTHONWARNINGS=ignore .venv-torch/bin/python -m pip install --quiet --upgrade pip
  PYTHONWARNINGS=ignore .venv-torch/bin/python -m pip install --quiet "torch==$TORCH_VERSION"
fi
VENV=.venv-torch EXTRAS=test,torch,fast,cloud source scripts/_env.sh
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
.venv-torch/bin/python -m pytest -q -p no:cacheprovider tests/access/test_access_torch.py tests/access/test_access_detection_torch.py "$@"
# the docs' PyTorch and grain examples, which the main environment skips
.venv-torch/bin/python -m pytest -q -p no:cacheprovider tests/test_docs.py -k test_optional_example_runs
