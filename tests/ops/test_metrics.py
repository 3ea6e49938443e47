"""/metrics: who may read it, what it says; and the request id and the JSON
access line every request leaves."""

from __future__ import annotations

import json
import logging

import pytest
from prometheus_client.parser import text_string_to_metric_families

from recovery_app import create_app
from recovery_app.extensions import db
from recovery_app.models import SchedulerLease
from recovery_app.ops.requestlog import JsonFormatter
from tests.helpers import base_config, count_statements, later

OUTSIDE = {"REMOTE_ADDR": "203.0.113.7"}


def samples(response) -> dict:
    """{(name, frozenset(labels)): value} of one scrape."""
    assert response.status_code == 200, response.status_code
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for sample in family.samples
    }


def test_loopback_reads_metrics_and_others_find_nothing(client):
    assert client.get("/metrics").status_code == 200
    outside = client.get("/metrics", environ_base=OUTSIDE)
    assert outside.status_code == 404 and b"recovery_" not in outside.data


def test_configured_network_reads_metrics(app, client):
    import ipaddress

    app.config["RECOVERY_METRICS_NETWORKS"] = (ipaddress.ip_network("203.0.113.0/24"),)
    assert client.get("/metrics", environ_base=OUTSIDE).status_code == 200
    assert client.get("/metrics").status_code == 404  # loopback is no longer listed


def test_bearer_token_reads_metrics_from_anywhere_and_a_wrong_one_is_refused(app, client):
    app.config["RECOVERY_METRICS_TOKEN"] = "s3cret-scrape-token-of-some-length"
    good = client.get(
        "/metrics", environ_base=OUTSIDE, headers={"Authorization": "Bearer s3cret-scrape-token-of-some-length"}
    )
    assert good.status_code == 200 and b"recovery_cases_open" in good.data
    for header in ("Bearer wrong", "Basic czNjcmV0", "Bearer "):
        refused = client.get("/metrics", environ_base=OUTSIDE, headers={"Authorization": header})
        assert refused.status_code == 403 and b"recovery_" not in refused.data
    # A wrong token is refused from an allowed network too: the caller asked to be judged by it.
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 403


def test_no_token_configured_means_no_token_opens_it(client):
    assert client.get("/metrics", environ_base=OUTSIDE, headers={"Authorization": "Bearer "}).status_code == 403


def test_a_signed_in_manager_from_outside_gets_nothing_either(client, make, auth):
    manager = make.user("manager")
    auth.sign_in(client, manager)
    assert client.get("/metrics", environ_base=OUTSIDE).status_code == 404


def test_case_outbox_scheduler_and_precheck_gauges(app, client, db, make, now, monkeypatch):
    from recovery_app.models import OutboxMessage
    from recovery_app.models.prechecks import PrecheckRun

    monkeypatch.setattr("recovery_app.ops.views.utcnow", lambda: now)
    fresh = make.case(submitted_at=later(now, hours=-1))
    at_risk = make.case(submitted_at=later(now, hours=-10))
    breached = make.case(submitted_at=later(now, hours=-13))
    claimed = make.case(submitted_at=later(now, hours=-2), status="in_review")
    make.case(submitted_at=later(now, hours=-30), status="approved")
    for status in ("pending", "pending", "failed", "sent"):
        db.session.add(
            OutboxMessage(
                channel="email",
                to="a@example.com",
                template="t",
                locale="en",
                body="",
                payload={},
                status=status,
                next_try_at=now,
                created_at=now,
            )
        )
    db.session.add(SchedulerLease(name="scheduler", holder="web-1", heartbeat_at=later(now, seconds=-42)))
    for case, status in ((fresh, "pending"), (at_risk, "running"), (breached, "done")):
        db.session.add(PrecheckRun(case_id=case.id, round=1, status=status, next_try_at=now, created_at=now))
    db.session.flush()
    assert claimed.status == "in_review"

    got = samples(client.get("/metrics"))
    assert got[("recovery_cases_open", frozenset({("status", "submitted")}))] == 3
    assert got[("recovery_cases_open", frozenset({("status", "in_review")}))] == 1
    assert got[("recovery_cases_open", frozenset({("status", "needs_info")}))] == 0
    assert got[("recovery_cases_at_risk", frozenset())] == 1
    assert got[("recovery_cases_breached", frozenset())] == 1
    assert got[("recovery_case_oldest_waiting_seconds", frozenset())] == pytest.approx(13 * 3600)
    assert got[("recovery_outbox_messages", frozenset({("status", "pending")}))] == 2
    assert got[("recovery_outbox_messages", frozenset({("status", "failed")}))] == 1
    assert got[("recovery_scheduler_heartbeat_age_seconds", frozenset())] == pytest.approx(42)
    assert got[("recovery_precheck_backlog", frozenset())] == 2
    assert got[("recovery_database_up", frozenset())] == 1


def test_no_heartbeat_reads_as_infinitely_old(client):
    got = samples(client.get("/metrics"))
    assert got[("recovery_scheduler_heartbeat_age_seconds", frozenset())] == float("inf")


def test_gauges_take_the_same_few_statements_whatever_the_cases(client, make, now):
    def scrape() -> int:
        return count_statements(lambda: client.get("/metrics").status_code == 200 or pytest.fail("scrape failed"))

    make.case(submitted_at=later(now, hours=-1))
    few = scrape()
    for hours in range(1, 40):
        make.case(submitted_at=later(now, hours=-(hours % 20)), status="in_review" if hours % 3 else "submitted")
    assert scrape() == few <= 6  # five reads and the BEGIN


def _latency_count(scrape: dict, endpoint: str, method: str = "GET") -> float:
    return scrape.get(
        ("recovery_http_request_duration_seconds_count", frozenset({("endpoint", endpoint), ("method", method)})), 0
    )


def test_request_latency_is_counted_per_endpoint(client):
    before = _latency_count(samples(client.get("/metrics")), "pages.help")
    for _ in range(3):
        assert client.get("/help").status_code == 200
    client.get("/no-such-page")
    after = samples(client.get("/metrics"))
    assert _latency_count(after, "pages.help") == before + 3
    assert _latency_count(after, "unmatched") >= 1
    assert (
        "recovery_http_request_duration_seconds_bucket",
        frozenset({("endpoint", "pages.help"), ("method", "GET"), ("le", "+Inf")}),
    ) in after


@pytest.fixture
def failing_app(database_url, tmp_path):
    """An app with one more route, which fails as a bug would."""
    app = create_app(base_config(database_url, tmp_path))

    @app.get("/boom")
    def boom():
        raise RuntimeError("a bug")

    yield app
    with app.app_context():
        db.engine.dispose()


def test_server_errors_are_counted_by_endpoint(failing_app):
    client = failing_app.test_client()
    key = ("recovery_http_server_errors_total", frozenset({("endpoint", "boom"), ("status", "500")}))
    before = samples(client.get("/metrics")).get(key, 0)
    response = client.get("/boom")
    assert response.status_code == 500 and response.headers["X-Request-ID"]
    assert samples(client.get("/metrics"))[key] == before + 1


# --- request ids and the access log ------------------------------------------------


def test_a_sane_request_id_is_kept_and_sent_back(client):
    response = client.get("/help", headers={"X-Request-ID": "edge-4f2a9c1b"})
    assert response.headers["X-Request-ID"] == "edge-4f2a9c1b"


@pytest.mark.parametrize(
    "incoming", ["short", "has space in it", 'quote"injected', "x" * 129, "semi;colon;1234", "ünïcode-12345"]
)
def test_an_odd_request_id_is_replaced(client, incoming):
    response = client.get("/help", headers={"X-Request-ID": incoming})
    sent_back = response.headers["X-Request-ID"]
    assert sent_back != incoming and len(sent_back) == 32 and sent_back.isalnum()


def test_every_request_gets_its_own_id(client):
    ids = {client.get("/help").headers["X-Request-ID"] for _ in range(5)}
    assert len(ids) == 5


def _access_lines(caplog) -> list[dict]:
    formatter = JsonFormatter()
    return [json.loads(formatter.format(record)) for record in caplog.records if record.name == "recovery_app.access"]


def test_one_json_access_line_per_request_with_its_id(client, caplog):
    caplog.set_level(logging.INFO, logger="recovery_app.access")
    client.get("/help", headers={"X-Request-ID": "trace-0000000001"})
    client.get("/no-such-page", headers={"X-Request-ID": "trace-0000000002"})
    first, second = _access_lines(caplog)
    assert first["request_id"] == "trace-0000000001" and first["message"] == "request"
    assert first["method"] == "GET" and first["route"] == "/help" and first["endpoint"] == "pages.help"
    assert first["status"] == 200 and first["duration_ms"] >= 0 and first["remote"] == "127.0.0.1"
    assert first["level"] == "info" and first["time"].endswith("+00:00")
    assert second["request_id"] == "trace-0000000002" and second["status"] == 404
    assert second["endpoint"] == "unmatched" and second["route"] is None


def test_the_access_line_names_the_route_not_a_link_token(client, caplog):
    caplog.set_level(logging.INFO, logger="recovery_app.access")
    secret = "Zq9-single-use-token-that-must-not-be-logged"
    client.get(f"/account/password/reset/{secret}")
    (line,) = _access_lines(caplog)
    assert line["route"] == "/account/password/reset/<token>"
    assert secret not in json.dumps(line)


def test_an_error_logged_during_a_request_carries_its_id(failing_app, caplog):
    caplog.set_level(logging.INFO)
    failing_app.test_client().get("/boom", headers={"X-Request-ID": "trace-boom-00001"})
    formatter = JsonFormatter()
    lines = [
        json.loads(formatter.format(record)) for record in caplog.records if record.name.startswith("recovery_app")
    ]
    error = next(line for line in lines if line["level"] == "error")
    assert error["request_id"] == "trace-boom-00001" and "RuntimeError: a bug" in error["exception"]
    assert next(line for line in lines if line["logger"] == "recovery_app.access")["status"] == 500
