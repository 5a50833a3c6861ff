#!/usr/bin/env bash
# The usage report's tests on Open WebUI's real schema: they build each app database with the
# migrations of the pinned Open WebUI (0.12.4, the version of the fleet's image) and check the report's
# numbers, the HTML in headless Chromium, and the read-only role. Needs PostgreSQL and chromium
# (apt-get install postgresql chromium) and Open WebUI in $OPENWEBUI_VENV (see
# scripts/openwebui-venv.sh: installed when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh requirements-dev.txt
OPENWEBUI_VENV="$(bash scripts/openwebui-venv.sh)"
export OPENWEBUI_VENV
exec .venv/bin/python -m pytest -m openwebui tests/fleet_analytics tests/fleet_backup/test_restore_analytics_grants.py "$@"
