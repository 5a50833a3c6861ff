#!/usr/bin/env bash
# Run the whole fleet for real (tests/realfleet): every node a network namespace, real Open WebUI replicas
# behind the real nginx LB. Needs root (namespaces), nginx, PostgreSQL, Redis, iproute2, nftables, and
# Open WebUI in its own virtualenv (about 8 GB): $OPENWEBUI_VENV if set, else installed into
# .cache/openwebui-venv at the version the program pins.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "scripts/realfleet.sh needs root (it creates network namespaces)" >&2; exit 1; }
bash scripts/setup.sh requirements-dev.txt
venv="${OPENWEBUI_VENV:-$PWD/.cache/openwebui-venv}"
if [ ! -x "$venv/bin/open-webui" ]; then
  # The version the program pins (apps.<app>.image's default).
  version="$(.venv/bin/python -c \
    'from components.config import OPENWEBUI_IMAGE; print(OPENWEBUI_IMAGE.rsplit(":v", 1)[1])')"
  python3 -m venv "$venv"
  # The image carries psycopg2 and qdrant-client; the wheel does not require them.
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "open-webui==$version" "psycopg2-binary>=2.9,<3" "qdrant-client>=1.12,<2"
fi
export OPENWEBUI_VENV="$venv" REALFLEET=1
exec .venv/bin/python -m pytest -p no:cacheprovider tests/realfleet "$@"
