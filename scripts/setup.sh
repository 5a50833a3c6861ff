#!/usr/bin/env bash
# Create .venv (Python 3.11+) and install the requirements file given (default: requirements.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
requirements="${1:-requirements.txt}"
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Python 3.11+ is required" >&2; exit 1; }
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$requirements"
