#!/usr/bin/env bash
# Print the path of a virtualenv with Open WebUI at the version the program pins, installing it when
# missing: $OPENWEBUI_VENV if set, else .cache/openwebui-venv (about 8 GB, ~5 min the first time).
# The real-fleet suite and the usage report's tests run against it.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${OPENWEBUI_VENV:-$PWD/.cache/openwebui-venv}"
if ! "$venv/bin/python" -c "import open_webui, psycopg2, qdrant_client" 2>/dev/null; then
  version="$(.venv/bin/python -c 'from components.config import OPENWEBUI_IMAGE; print(OPENWEBUI_IMAGE.rsplit(":v", 1)[1])')"
  python3 -m venv "$venv"
  # The image carries psycopg2 and qdrant-client; the wheel does not require them.
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "open-webui==$version" "psycopg2-binary>=2.9,<3" "qdrant-client>=1.12,<2" >&2
fi
echo "$venv"
