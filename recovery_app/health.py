"""What ``/healthz`` reports: can we reach the database, write the upload
folder, and is a scheduler runner alive (its heartbeat is recent); and, for
managers only, how many messages wait to be sent or have failed."""

from __future__ import annotations

import ipaddress
import os
from datetime import datetime
from pathlib import Path

from flask import current_app
from sqlalchemy import text

from .extensions import db


def _database() -> dict:
    try:
        db.session.execute(text("SELECT 1"))
        return {"status": "ok"}
    except Exception as exc:  # noqa: BLE001 - any failure means down
        db.session.rollback()
        return {"status": "down", "error": type(exc).__name__}


def _uploads() -> dict:
    path = Path(current_app.config["RECOVERY_UPLOAD_DIR"])
    if path.is_dir() and os.access(path, os.W_OK | os.X_OK):
        return {"status": "ok"}
    return {"status": "down", "error": "missing" if not path.exists() else "not writable"}


def _scheduler(now: datetime) -> dict:
    from .scheduler.lock import heartbeat

    try:
        lease = heartbeat()
    except Exception as exc:  # noqa: BLE001
        db.session.rollback()
        return {"status": "down", "error": type(exc).__name__}
    beat = lease.heartbeat_at if lease else None
    limit = current_app.config["RECOVERY_HEALTH_HEARTBEAT_MAX_SECONDS"]
    if beat is None:
        return {"status": "down", "error": "no heartbeat yet", "heartbeat_at": None}
    age = (now - beat).total_seconds()
    return {
        "status": "ok" if age <= limit else "down",
        "heartbeat_at": beat.isoformat(),
        "heartbeat_age_seconds": int(age),
        "holder": lease.holder,
    }


def in_networks(address: str | None, setting: str) -> bool:
    """Whether ``address`` lies in one of the networks the setting lists."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    return any(ip in network for network in current_app.config[setting])


def may_see_details(address: str | None) -> bool:
    """Internal addresses (``RECOVERY_HEALTH_DETAIL_NETWORKS``, loopback by
    default) may read which part is down and who runs the scheduler."""
    return in_networks(address, "RECOVERY_HEALTH_DETAIL_NETWORKS")


def check(now: datetime) -> dict:
    parts = {"database": _database(), "uploads": _uploads(), "scheduler": _scheduler(now)}
    status = "ok" if all(part["status"] == "ok" for part in parts.values()) else "down"
    return {"status": status, **parts}


def manager_details() -> dict:
    """For managers only, never for anonymous callers: the outbox's backlog.
    Failed messages need someone to act; a growing pending count means a
    provider is down."""
    from .notify import outbox_counts

    try:
        return {"outbox": outbox_counts()}
    except Exception as exc:  # noqa: BLE001 - the database part already says down
        db.session.rollback()
        return {"outbox": {"error": type(exc).__name__}}
