#!/usr/bin/env bash
# Set up .venv with the test requirements and run every test. Tests that run real nginx,
# PostgreSQL and Redis skip when those are missing, except in CI (CI=true), where they fail.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh requirements-dev.txt
exec .venv/bin/python -m pytest "$@"
