#!/usr/bin/env bash
# Installs what the tests need and runs the whole suite. With
# RECOVERY_TEST_DATABASE_URL set, every database test also runs on PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
exec .venv/bin/python -m pytest "$@"
