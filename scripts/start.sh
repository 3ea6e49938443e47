#!/usr/bin/env bash
# Installs, migrates, creates demo data once and starts Recovery Desk on
# http://127.0.0.1:5000 with SQLite under instance/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export FLASK_APP=wsgi
.venv/bin/flask db upgrade
.venv/bin/flask demo
echo
echo "Open http://127.0.0.1:${PORT:-5000}/ in your browser. Messages (SMS, voice, e-mail) are kept in the outbox: .venv/bin/flask --app wsgi outbox list"
exec .venv/bin/flask run --host 127.0.0.1 --port "${PORT:-5000}"
