# Sourced by the other scripts: makes .venv (if missing) and installs the package with its
# test extras whenever pyproject.toml changed. Needs only a Python >= 3.11 on PATH.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
    { echo "tfrecord-tools needs Python >= 3.11 (found $("$PY" --version 2>&1))" >&2; exit 1; }
  "$PY" -m venv .venv
fi
stamp=.venv/.tfrecord-tools-installed
want=$(sha256sum pyproject.toml | cut -c1-64)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  export PYTHONWARNINGS=ignore  # setuptools' advice on editable installs is noise here
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".[test]"
  unset PYTHONWARNINGS
  echo "$want" > "$stamp"
fi
