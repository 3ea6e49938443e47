"""gunicorn with gunicorn.conf.py, as production runs it: several workers,
rate limits in Redis, request metrics added up across workers, JSON logs,
the client's address read through one trusted proxy, a graceful stop; and
the refusal to start with per-process rate limits."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.notify.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("RECOVERY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def production_env(database_url: str, tmp_path: Path, **extra) -> dict:
    env = {name: value for name, value in os.environ.items() if not name.startswith("RECOVERY_")}
    env.update(
        PYTHONPATH=str(ROOT),
        RECOVERY_ENV="production",
        RECOVERY_SECRET_KEY="p" * 48,
        RECOVERY_VAULT_KEY=base64.urlsafe_b64encode(b"v" * 32).decode(),
        RECOVERY_DATABASE_URL=database_url,
        RECOVERY_INSTANCE_DIR=str(tmp_path / "instance"),
        RECOVERY_UPLOAD_DIR=str(tmp_path / "uploads"),
        RECOVERY_SCHEDULER="off",
        RECOVERY_BIND=f"127.0.0.1:{free_port()}",
    )
    env.update(extra)
    return env


def start(env: dict, tmp_path: Path, *args: str) -> tuple[subprocess.Popen, Path]:
    log = tmp_path / "gunicorn.log"
    with log.open("w") as sink:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), *args, "wsgi:app"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )
    return process, log


def wait_until_serving(base: str, process: subprocess.Popen, log: Path, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"gunicorn exited with {process.returncode}:\n{log.read_text()}")
        try:
            # A worker loads the app on its first request: allow for that on a loaded machine.
            if requests.get(base + "/healthz", timeout=seconds).status_code in (200, 503):
                return
        except requests.ConnectionError:
            time.sleep(0.2)  # polling for the port to open, not a wait for an outcome
    pytest.fail(f"gunicorn did not answer within {seconds} s:\n{log.read_text()}")


def test_production_refuses_in_memory_rate_limits_with_several_workers(database_url, tmp_path):
    env = production_env(database_url, tmp_path, RECOVERY_RATELIMIT_STORAGE_URI="memory://")
    process, log = start(env, tmp_path, "--workers", "2")  # the command line wins over the file
    assert process.wait(timeout=60) != 0
    said = log.read_text()
    assert "refusing to start" in said and "memory://" in said and "2 workers" in said
    assert "Booting worker" not in said


def test_one_worker_may_count_in_memory(database_url, tmp_path):
    env = production_env(database_url, tmp_path, RECOVERY_RATELIMIT_STORAGE_URI="memory://", RECOVERY_WEB_WORKERS="1")
    process, log = start(env, tmp_path)
    try:
        wait_until_serving(f"http://{env['RECOVERY_BIND']}", process, log)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


def _families(text: str) -> dict:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_several_workers_behind_one_proxy(database_url, tmp_path):
    metrics_dir = tmp_path / "metrics"
    env = production_env(
        database_url,
        tmp_path,
        RECOVERY_RATELIMIT_STORAGE_URI=REDIS_URL.rsplit("/", 1)[0] + "/5",
        RECOVERY_WEB_WORKERS="2",
        RECOVERY_TRUSTED_PROXIES="1",
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
    )
    base = f"http://{env['RECOVERY_BIND']}"
    process, log = start(env, tmp_path)
    try:
        wait_until_serving(base, process, log)
        ids = [f"trace-{n:04d}-gunicorn" for n in range(30)]
        for rid in ids:  # a new connection each time, so both workers take some
            response = requests.get(base + "/help", timeout=30, headers={"X-Request-ID": rid, "Connection": "close"})
            assert response.status_code == 200 and response.headers["X-Request-ID"] == rid
        forwarded = requests.get(
            base + "/help", timeout=30, headers={"X-Request-ID": "trace-forwarded-1", "X-Forwarded-For": "198.51.100.9"}
        )
        assert forwarded.status_code == 200
        # /metrics judges the client nginx names, not nginx's own loopback address.
        outside = requests.get(base + "/metrics", timeout=30, headers={"X-Forwarded-For": "203.0.113.5"})
        assert outside.status_code == 404
        scrape = requests.get(base + "/metrics", timeout=30)
        assert scrape.status_code == 200
        got = _families(scrape.text)
        help_count = (
            "recovery_http_request_duration_seconds_count",
            frozenset({("endpoint", "pages.help"), ("method", "GET")}),
        )
        assert got[help_count] == 31  # every worker's requests, whichever answered the scrape
        assert got[("recovery_database_up", frozenset())] == 1
        assert len(list(metrics_dir.glob("*.db"))) >= 1
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
    assert code == 0  # a graceful stop
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    parsed = [json.loads(line) for line in lines]  # every line is JSON, gunicorn's own included
    access = {line["request_id"]: line for line in parsed if line["logger"] == "recovery_app.access"}
    assert set(ids) <= set(access)
    assert access[ids[0]]["route"] == "/help" and access[ids[0]]["status"] == 200
    assert access["trace-forwarded-1"]["remote"] == "198.51.100.9"
    assert any(line["logger"] == "gunicorn.error" and "Booting worker" in line["message"] for line in parsed)
