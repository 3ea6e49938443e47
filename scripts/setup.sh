#!/usr/bin/env bash
# Installs what Recovery Desk needs on a Debian machine and prepares .venv.
#   scripts/setup.sh        the app
#   scripts/setup.sh test   the app plus what the tests need (browser, fonts)
set -euo pipefail
cd "$(dirname "$0")/.."

want=(libmagic1 fonts-noto-cjk tesseract-ocr)
if [ "${1:-}" = "test" ]; then
  want+=(chromium fonts-dejavu-core postgresql-client)  # pg_dump/pg_restore for the backup test
  want+=(haproxy postgresql)  # the soak test's balancer, and initdb/pg_ctl for the server it starts itself
fi
if ! python3 -c "import ensurepip, venv" 2>/dev/null; then
  want+=(python3-venv)
fi
missing=()
for pkg in "${want[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  echo "Installing system packages: ${missing[*]}"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
extras=""
[ "${1:-}" = "test" ] && extras="[test]"
.venv/bin/pip install -q --disable-pip-version-check -e ".${extras}"
.venv/bin/python scripts/i18n.py compile
