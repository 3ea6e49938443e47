"""The example deployment files agree with the app they deploy."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from recovery_app.config import load_config

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def test_nginx_takes_what_the_app_takes_and_a_little_more(monkeypatch, tmp_path):
    monkeypatch.setenv("RECOVERY_INSTANCE_DIR", str(tmp_path))
    monkeypatch.delenv("RECOVERY_MAX_CONTENT_LENGTH_MB", raising=False)
    app_limit_mb = load_config()["MAX_CONTENT_LENGTH"] // (1024 * 1024)
    nginx = (DEPLOY / "nginx.conf").read_text()
    (size,) = re.findall(r"^\s*client_max_body_size (\d+)m;", nginx, re.M)
    # One MB over, so the app's own 413 page (in the reader's language) answers an oversized upload.
    assert int(size) == app_limit_mb + 1
    assert re.search(r"^\s*proxy_request_buffering on;", nginx, re.M)
    assert re.search(r'add_header Strict-Transport-Security "max-age=\d{8,}; includeSubDomains" always;', nginx)
    assert "proxy_set_header X-Request-ID $request_id;" in nginx


def test_nginx_answers_only_for_the_sites_own_name():
    nginx = (DEPLOY / "nginx.conf").read_text()
    catch_all = re.search(r"server \{[^}]*\}", nginx[nginx.index("default_server") - 200 :]).group(0)
    for listen in ("listen 80 default_server;", "listen 443 ssl http2 default_server;"):
        assert listen in catch_all
    assert "ssl_reject_handshake on;" in catch_all and "return 444;" in catch_all
    assert "proxy_pass" not in catch_all


@pytest.mark.parametrize(
    ("unit", "command"),
    [
        ("recovery-desk-scheduler.service", ["scheduler", "run"]),
        ("recovery-desk-backup.service", ["backup", "create"]),
    ],
)
def test_systemd_units_run_commands_the_app_has(app, unit, command):
    text = (DEPLOY / unit).read_text()
    assert "flask --app wsgi " + " ".join(command) in text
    group = app.cli.get_command(None, command[0])
    assert group is not None and group.get_command(None, command[1]) is not None


def test_the_web_unit_leaves_jobs_to_the_scheduler_unit_and_sums_every_worker():
    text = (DEPLOY / "recovery-desk-web.service").read_text()
    assert "Environment=RECOVERY_SCHEDULER=off" in text
    assert "Environment=PROMETHEUS_MULTIPROC_DIR=" in text
    assert "ExecStart=/srv/recovery-desk/.venv/bin/gunicorn wsgi:app" in text
