"""gunicorn settings for Recovery Desk in production.

gunicorn reads this file from its working directory by itself (or give
``-c gunicorn.conf.py``): ``gunicorn wsgi:app``. docs/deploy.md explains each
choice; the ``RECOVERY_*`` variables below override the computed defaults.

* Workers from the cores. A sign-in is an argon2id hash (about 0.8 s of CPU
  and 64 MiB at the production settings), so CPU, not I/O, bounds sign-ins:
  one process per core, plus one so a core is never idle while a worker
  waits on the database. Each process also takes a few threads (gthread), so
  a request waiting on PostgreSQL, Redis or the disk does not hold a core.
* Timeouts. nginx buffers the whole upload before it hands the request over
  (``proxy_request_buffering on``), so a slow phone never holds a worker; what
  a worker then does is bounded by decoding three 10 MB images and one
  argon2 hash: seconds, not minutes. ``timeout`` (a worker silent this long is
  killed) leaves room for a loaded machine; ``graceful_timeout`` lets
  requests in flight finish on a restart or SIGTERM.
* Rate limits: ``on_starting`` tells the app how many workers run
  (``RECOVERY_WEB_WORKERS``), so production refuses in-memory rate-limit
  counters with more than one (recovery_app/config.py).
* Metrics: with ``PROMETHEUS_MULTIPROC_DIR`` set, every worker writes its
  counters there and ``/metrics`` adds them up; the folder is emptied at start
  and a dead worker's gauges are dropped.
"""

from __future__ import annotations

import os


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # what this process may use (containers, taskset)
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


bind = os.environ.get("RECOVERY_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("RECOVERY_WEB_WORKERS") or _cores() + 1)
worker_class = "gthread"
threads = int(os.environ.get("RECOVERY_WEB_THREADS") or 4)

timeout = 60
graceful_timeout = 30
keepalive = 5  # behind nginx, which keeps its upstream connections open
# The heartbeat file each worker touches: on tmpfs, so a slow disk never looks like a hung worker.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
# A fresh process now and then, so memory that image decoding fragmented is given back.
max_requests = 2000
max_requests_jitter = 200

# The app writes the access log itself: one JSON line per request with its
# request id, the route (not the raw path: invitation and reset links carry
# their token in it), status and time (recovery_app/ops/requestlog.py). If
# gunicorn's own is turned on as well (--access-logfile -), it carries the id too.
accesslog = None
access_log_format = '%(h)s %({x-request-id}o)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms'
errorlog = "-"
loglevel = os.environ.get("RECOVERY_LOG_LEVEL", "info").lower()
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "recovery_app.ops.requestlog.JsonFormatter"}},
    # These replace gunicorn's own handlers of the same names (whose lines are plain text).
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"},
        "error_console": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"},
    },
}
proc_name = "recovery-desk"
# gunicorn 27's control socket sits at one path per user, which two instances on
# one host would fight over; systemd's signals (HUP to reload, TERM to stop) do its job.
control_socket_disable = True


def on_starting(server) -> None:
    """Before any worker: tell the app how many workers there are (the
    command line may have changed the number above), refuse settings that
    cannot work with that many, and empty the metrics folder."""
    os.environ["RECOVERY_WEB_WORKERS"] = str(server.cfg.workers)
    from recovery_app.config import ConfigError, load_config

    try:
        load_config()
    except ConfigError as exc:
        server.log.error("refusing to start: %s", exc)
        raise SystemExit(1) from None
    metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if metrics_dir:
        os.makedirs(metrics_dir, exist_ok=True)
        for name in os.listdir(metrics_dir):
            if name.endswith(".db"):
                os.unlink(os.path.join(metrics_dir, name))


def child_exit(server, worker) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
