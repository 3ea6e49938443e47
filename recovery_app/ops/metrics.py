"""Prometheus metrics: request latency and server errors counted as requests
end, and the state of the desk read from the database when scraped.

Counted in each process; under gunicorn with ``PROMETHEUS_MULTIPROC_DIR`` set
(docs/deploy.md) every worker writes its counts to files in that folder and a
scrape adds them up, whichever worker answers it. The gauges about cases, the
outbox, the scheduler and the pre-checks are not kept in any process: they
are computed at scrape time from a few indexed statements, so every worker
and every host reports the same truth.
"""

from __future__ import annotations

import os
from datetime import datetime

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, literal, select, union_all

from ..extensions import db

# Seconds: a bare page is a few milliseconds, a sign-in about one second (argon2), an upload a few.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

REQUEST_SECONDS = Histogram(
    "recovery_http_request_duration_seconds",
    "Time to answer a request, by Flask endpoint and method.",
    ["endpoint", "method"],
    buckets=LATENCY_BUCKETS,
)
SERVER_ERRORS = Counter(
    "recovery_http_server_errors",
    "Responses with a 5xx status, by Flask endpoint and status.",
    ["endpoint", "status"],
)


def observe_request(endpoint: str, method: str, status: int, seconds: float) -> None:
    REQUEST_SECONDS.labels(endpoint, method).observe(seconds)
    if status >= 500:
        SERVER_ERRORS.labels(endpoint, str(status)).inc()


def _by_status() -> dict[str, int]:
    """Open cases per status: one count per status through the (status, due_at) index."""
    from ..models import Case
    from ..models.cases import OPEN_STATUSES

    counts = union_all(
        *[
            select(literal(str(status)).label("status"), func.count().label("n"))
            .select_from(Case)
            .where(Case.status == status)
            for status in OPEN_STATUSES
        ]
    )
    return {row.status: row.n for row in db.session.execute(counts)}


def _precheck_backlog() -> int:
    from ..models.prechecks import PrecheckRun

    return db.session.execute(
        select(func.count()).select_from(PrecheckRun).where(PrecheckRun.status.in_(("pending", "running")))
    ).scalar_one()


def desk_state(now: datetime) -> list:
    """The gauges read from the database at ``now`` (five statements)."""
    from ..notify import outbox_counts
    from ..reports.services import open_case_snapshot
    from ..scheduler.lock import heartbeat

    by_status = GaugeMetricFamily("recovery_cases_open", "Open cases by status.", labels=["status"])
    for status, n in sorted(_by_status().items()):
        by_status.add_metric([status], n)
    snapshot = open_case_snapshot(now)
    outbox = GaugeMetricFamily(
        "recovery_outbox_messages", "Messages waiting to be sent, and failed.", labels=["status"]
    )
    for status, n in sorted(outbox_counts().items()):
        outbox.add_metric([status], n)
    lease = heartbeat()
    beat = lease.heartbeat_at if lease else None
    return [
        by_status,
        GaugeMetricFamily(
            "recovery_cases_at_risk", "Cases past 75% of their SLA, not yet due.", value=snapshot["at_risk"]
        ),
        GaugeMetricFamily("recovery_cases_breached", "Open cases past their SLA deadline.", value=snapshot["breached"]),
        GaugeMetricFamily(
            "recovery_case_oldest_waiting_seconds",
            "SLA clock of the open case closest to its deadline (0 when none waits).",
            value=snapshot["oldest_seconds"] or 0,
        ),
        outbox,
        GaugeMetricFamily(
            "recovery_scheduler_heartbeat_age_seconds",
            "Seconds since the scheduler's runner last recorded its heartbeat (+Inf: never).",
            value=(now - beat).total_seconds() if beat else float("inf"),
        ),
        GaugeMetricFamily("recovery_precheck_backlog", "Pre-check runs waiting or running.", value=_precheck_backlog()),
    ]


class _DeskState:
    def __init__(self, now: datetime):
        self.now = now

    def collect(self):
        try:
            families = desk_state(self.now)
            up = 1
        except Exception:  # noqa: BLE001 - the database is down: say so, keep the process metrics
            db.session.rollback()
            families, up = [], 0
        yield from families
        yield GaugeMetricFamily("recovery_database_up", "1 when the scrape could read the database.", value=up)


def exposition(now: datetime) -> bytes:
    """The text a scrape gets: this process's (or, in multi-process mode,
    every worker's) request metrics, then the gauges read now."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        counted = CollectorRegistry()
        multiprocess.MultiProcessCollector(counted)
    else:
        counted = REGISTRY
    state = CollectorRegistry()
    state.register(_DeskState(now))
    return generate_latest(counted) + generate_latest(state)
