#!/usr/bin/env bash
# Run the whole fleet for real (tests/realfleet): every node a network namespace, real Open WebUI replicas
# behind the real nginx LB. Needs root (namespaces), nginx, PostgreSQL, Redis, iproute2, nftables, and
# Open WebUI in its own virtualenv (about 8 GB; scripts/openwebui-venv.sh installs it when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "scripts/realfleet.sh needs root (it creates network namespaces)" >&2; exit 1; }
bash scripts/setup.sh requirements-dev.txt
venv="$(bash scripts/openwebui-venv.sh)"
export OPENWEBUI_VENV="$venv" REALFLEET=1
exec .venv/bin/python -m pytest -p no:cacheprovider tests/realfleet "$@"
