# Sourced by the other scripts: makes a virtual environment (VENV, default .venv) if missing
# and installs the package with its extras (EXTRAS, default test,plot,fast,cloud: the demo draws its
# benchmark plot; the tests cover the fast decoders) whenever pyproject.toml changed. Needs
# only a Python >= 3.11 on PATH.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
EXTRAS="${EXTRAS:-test,plot,fast,cloud}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
    { echo "tfrecord-tools needs Python >= 3.11 (found $("$PY" --version 2>&1))" >&2; exit 1; }
  "$PY" -m venv "$VENV"
fi
stamp="$VENV/.tfrecord-tools-installed"
want="$(sha256sum pyproject.toml | cut -c1-64) $EXTRAS"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  export PYTHONWARNINGS=ignore  # setuptools' advice on editable installs is noise here
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet -e ".[$EXTRAS]"
  unset PYTHONWARNINGS
  echo "$want" > "$stamp"
fi
