#!/usr/bin/env bash
# Installs what the tests need and runs the whole suite. With
# RECOVERY_TEST_DATABASE_URL set, every database test also runs on PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
.venv/bin/ruff check .
.venv/bin/ruff format --check .
exec .venv/bin/python -m pytest "$@"
