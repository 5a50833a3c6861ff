#!/usr/bin/env bash
# Offline plan: evaluate a stack under Pulumi's mock engine and print what `pulumi up` would create.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh requirements.txt
exec .venv/bin/python -m plan "${@:-local}"
