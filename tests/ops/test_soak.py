"""The production setup under load and faults, in the one-minute form of
bench/soak.py: two gunicorn instances behind haproxy with TLS, two
schedulers, a PostgreSQL server of the soak's own, Redis and an SMTP sink;
sellers signing in and out and opening recovery cases with documents,
reviewers deciding them (a second reviewer for high-risk ones), a manager
reading reports; SIGKILL of a gunicorn master, a PostgreSQL restart and
SIGKILL of the scheduler holding the lock, in turn; then every case, file,
escalation and message checked.

Fewer people than the ten-minute run (8 sellers, 3 opening cases, 2
reviewers, 1 manager), so that the whole test takes about two minutes on a
2-core machine. It needs haproxy and PostgreSQL's server binaries (initdb,
pg_ctl, postgres): skipped without them, failed in CI (``CI=true``)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOAK = ROOT / "bench" / "soak.py"
IN_CI = os.environ.get("CI", "").lower() == "true"


def _soak_module():
    """bench/soak.py itself (bench/ is not a package): where it finds the server binaries, its target."""
    spec = importlib.util.spec_from_file_location("bench_soak", SOAK)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


soak = _soak_module()


@pytest.fixture
def soak_tools():
    missing = []
    if shutil.which("haproxy") is None:
        missing.append("haproxy")
    if soak.postgres_binaries() is None:
        missing.append("PostgreSQL's server binaries (initdb, pg_ctl, postgres)")
    if missing:
        message = f"the soak needs {' and '.join(missing)}: run scripts/setup.sh test"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


def run_soak(summary: Path, *options: str, timeout: float = 300) -> tuple[int, str]:
    """Run the soak; on a timeout stop it with SIGTERM, which makes it stop its
    servers and remove its PostgreSQL cluster, before anything harder."""
    redis = os.environ.get("RECOVERY_TEST_REDIS_URL")
    command = [sys.executable, str(SOAK), *options, "--json", str(summary), *(["--redis", redis] if redis else [])]
    with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as soaking:
        try:
            said, _ = soaking.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            soaking.send_signal(signal.SIGTERM)
            said, _ = soaking.communicate(timeout=90)
            pytest.fail(f"the soak ran over {timeout} s:\n{said[-4000:]}")
    return soaking.returncode, said


def test_one_minute_soak_keeps_serving_through_three_faults_and_loses_nothing(tmp_path, soak_tools):
    summary_file = tmp_path / "soak.json"
    returncode, said = run_soak(
        summary_file, "--minutes", "1", "--sellers", "8", "--case-sellers", "3", "--reviewers", "2"
    )
    assert summary_file.exists(), said[-4000:]
    summary = json.loads(summary_file.read_text())
    assert "stopped_by" not in summary, said[-4000:]

    # All three faults happened while the people were at work.
    faults = summary["faults"]
    assert [fault["fault"].split(" (")[0] for fault in faults] == [
        "SIGKILL of instance A's gunicorn master",
        "PostgreSQL restart",
        "SIGKILL of the scheduler holding the lock",
    ]
    assert all(fault["during_load"] for fault in faults), faults
    # The service answered again within 30 s of each.
    for fault in faults:
        assert fault["recovered_s"] is not None and fault["recovered_s"] <= soak.RECOVERY_TARGET, fault
    # A 5xx only on a request under way while the database restarted (and its stated margin).
    assert summary["server_errors_outside_window"] == 0, summary["unexpected_answers"]

    # The people got their work done: every kind of journey completed.
    done = {name: figures["done"] for name, figures in summary["journeys"].items()}
    for journey in (
        "seller: sign in",
        "case seller: open a case",
        "reviewer: claim next and decide",
        "manager: dashboard",
        "manager: two CSV files",
    ):
        assert done.get(journey, 0) > 0, (journey, done)
    assert summary["outcomes"].get("case opened", 0) >= 3

    # Nothing lost: every check of every case holds.
    checks = summary["checks"]
    for name, check in checks.items():
        assert check["ok"], (name, check)
    assert checks["cases"]["cases"] >= 3 + 6 and checks["cases"]["documents"] >= 2 * checks["cases"]["cases"]
    assert checks["escalations"]["breached"] >= 2  # the aged cases the sweep had to escalate
    assert checks["messages"]["arrived"] > 0 and not checks["messages"]["sent_twice"]
    assert summary["targets"] == {
        "no_5xx_outside_restart_window": True,
        "each_recovery_within_30_s": True,
        "all_checks_hold": True,
    }
    assert returncode == 0, said[-4000:]
