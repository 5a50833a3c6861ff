#!/usr/bin/env bash
# The usage report's tests on Open WebUI's real schema: they build each app database with the
# migrations of the pinned Open WebUI (0.12.4, the version of the fleet's image) and check the report's
# numbers, the HTML in headless Chromium, and the read-only role. Needs PostgreSQL and chromium
# (apt-get install postgresql chromium) and Open WebUI in $OPENWEBUI_VENV (default
# .cache/openwebui-venv, installed here when missing: ~5 min, ~7.5 GB).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh requirements-dev.txt
export OPENWEBUI_VENV="${OPENWEBUI_VENV:-$PWD/.cache/openwebui-venv}"
if ! "$OPENWEBUI_VENV/bin/python" -c "import open_webui, psycopg2" 2>/dev/null; then
  python3 -m venv "$OPENWEBUI_VENV"
  # The container image has psycopg2; the wheel does not require it.
  "$OPENWEBUI_VENV/bin/pip" install -q "open-webui==0.12.4" "psycopg2-binary>=2.9,<3"
fi
exec .venv/bin/python -m pytest -m openwebui tests/fleet_analytics "$@"
