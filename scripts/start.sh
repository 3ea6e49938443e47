#!/usr/bin/env bash
# Installs, migrates, creates demo data once (users, and a month of a few
# hundred cases in every state) and starts Recovery Desk on
# http://localhost:5000 with SQLite under instance/. The SLA scheduler runs
# inside the web process (RECOVERY_SCHEDULER=on by default in development).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export FLASK_APP=wsgi
.venv/bin/flask db upgrade
.venv/bin/flask demo --cases "${DEMO_CASES:-120}"  # cases are added only once
echo
echo "Open http://localhost:${PORT:-5000}/ in your browser. Messages (SMS, voice, e-mail) are kept in the outbox: .venv/bin/flask --app wsgi outbox list"
exec .venv/bin/flask run --host 127.0.0.1 --port "${PORT:-5000}"
