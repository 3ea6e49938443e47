"""Two gunicorn instances behind haproxy on PostgreSQL and Redis, under load, with faults
(not a test: prints measured figures).

    apt-get install haproxy
    python -P bench/soak.py --database postgresql://postgres@127.0.0.1:5432/postgres --minutes 2

Everything runs on loopback and is stopped at the end. The script makes a
scratch database (dropped afterwards), migrates it and creates the sellers;
starts two gunicorn instances of three workers each (gunicorn.conf.py,
production settings, rate limits in Redis), two ``flask scheduler run``
processes, and Debian's haproxy in front (health checks on /healthz, a
failed connection retried on the other instance). Sellers sign in (password
and authenticator code, enrolling at their first sign-in), open pages and
sign out, in bounded loops that stop at the deadline.

Faults, in turn: at a third of the run the master of instance A is killed
with SIGKILL; as systemd would, its orphaned workers are stopped and the
instance is started again two seconds later; at two thirds the scheduler
process holding the lock is killed with SIGKILL.

Printed: p50/p95/p99 per journey step, throughput, answers by status and
errors by kind, time until the killed instance serves again, time until the
other scheduler took the lock, and ``audit verify`` at the end.

Not done here (see README): PostgreSQL is not restarted (the server is
shared with other work on this machine), and the case-opening, reviewer
and manager journeys are not part of the load yet.
(``-P``: bench/queue.py would otherwise hide the standard library's queue.)
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import psycopg
import requests
import urllib3

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.served import Person  # noqa: E402  (the same browser the concurrency tests use)

urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
PASSWORD = "correct horse battery staple 42"  # what tests.served.Person types


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class TimedPerson(Person):
    """A Person whose every request is timed and filed under its journey step."""

    def __init__(self, base, email, record):
        super().__init__(base, email)
        self.record = record
        self.step = "page"

    def get(self, path):
        return self._timed(lambda: super(TimedPerson, self).get(path))

    def post(self, path, data=None):
        return self._timed(lambda: super(TimedPerson, self).post(path, data))

    def _timed(self, call):
        started = time.perf_counter()
        try:
            response = call()
        except requests.RequestException as exc:
            self.record(self.step, time.time(), time.perf_counter() - started, type(exc).__name__)
            raise
        self.record(self.step, time.time(), time.perf_counter() - started, response.status_code)
        return response


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", required=True, help="a PostgreSQL URL with the right to create databases")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/6")
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--sellers", type=int, default=12)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="soak-"))
    name = f"soak_{secrets.token_hex(4)}"
    admin = psycopg.connect(args.database, autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    base_url = args.database.rsplit("/", 1)[0]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECOVERY_")}
    env.update(
        PYTHONPATH=str(ROOT),
        RECOVERY_ENV="production",
        RECOVERY_SECRET_KEY=secrets.token_urlsafe(48),
        RECOVERY_VAULT_KEY=base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        RECOVERY_DATABASE_URL=base_url.replace("postgresql://", "postgresql+psycopg://") + f"/{name}",
        RECOVERY_RATELIMIT_STORAGE_URI=args.redis,
        RECOVERY_INSTANCE_DIR=str(work / "instance"),
        RECOVERY_UPLOAD_DIR=str(work / "uploads"),
        RECOVERY_SCHEDULER="off",
        RECOVERY_WEB_WORKERS="3",
        RECOVERY_TRUSTED_PROXIES="1",
        RECOVERY_SCHEDULER_STANDBY_POLL_SECONDS="2",
        RECOVERY_SCHEDULER_HEARTBEAT_SECONDS="5",
        # Everyone comes from 127.0.0.1: per-address limits would measure the limiter, not the service.
        RECOVERY_LIMIT_SIGN_IN="100000 per minute",
        RECOVERY_LIMIT_CODE_CHECK="100000 per minute",
    )
    python = sys.executable
    processes: dict[str, subprocess.Popen] = {}
    logs = work / "logs"
    logs.mkdir()

    def spawn(key, command, extra=None):
        with (logs / f"{key}.log").open("a") as sink:
            processes[key] = subprocess.Popen(
                command,
                cwd=ROOT,
                env={**env, **(extra or {})},
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    ports = {"a": free_port(), "b": free_port()}

    def start_web(key):
        spawn(
            key,
            [python, "-m", "gunicorn", "wsgi:app"],
            {"RECOVERY_BIND": f"127.0.0.1:{ports[key]}", "PROMETHEUS_MULTIPROC_DIR": str(work / f"metrics-{key}")},
        )

    front = free_port()
    try:
        subprocess.run(
            [python, "-m", "flask", "--app", "wsgi", "db", "upgrade"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )
        emails = [f"seller{n}@soak.example" for n in range(args.sellers)]
        subprocess.run(
            [
                python,
                "-c",
                (
                    "import sys\nfrom recovery_app import create_app\nfrom recovery_app.auth.users import create_user, "
                    "get_or_create_account\nfrom recovery_app.database import unit\n"
                    "from recovery_app.models.base import utcnow\n"
                    "app = create_app()\nwith app.app_context(), unit():\n"
                    "    for email in sys.argv[1:]:\n"
                    "        create_user(email=email, password=" + repr(PASSWORD) + ", role='seller_owner', "
                    "account=get_or_create_account('Soak ' + email, utcnow()), display_name=email, "
                    "romanised_name=email, "
                    "locale='en', now=utcnow(), check_password=False)\n"
                ),
                *emails,
            ],
            cwd=ROOT,
            env=env,
            check=True,
        )
        start_web("a")
        start_web("b")
        spawn("scheduler-1", [python, "-m", "flask", "--app", "wsgi", "scheduler", "run"])
        spawn("scheduler-2", [python, "-m", "flask", "--app", "wsgi", "scheduler", "run"])
        # TLS at the front, as in production: the app's cookies are Secure and __Host-.
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
                "-keyout",
                str(work / "tls.key"),
                "-out",
                str(work / "tls.crt"),
            ],
            check=True,
            capture_output=True,
        )
        (work / "tls.pem").write_text((work / "tls.crt").read_text() + (work / "tls.key").read_text())
        (work / "haproxy.cfg").write_text(f"""global
    maxconn 500
defaults
    mode http
    timeout connect 2s
    timeout client 90s
    timeout server 90s
    retries 3
    option redispatch
    retry-on conn-failure empty-response response-timeout
frontend web
    bind 127.0.0.1:{front} ssl crt {work / "tls.pem"}
    http-request set-header X-Forwarded-Proto https
    default_backend app
backend app
    balance roundrobin
    option httpchk GET /healthz
    # A 503 from /healthz means a shared part (the scheduler, say) is down, not this
    # process: the instance stays in the pool as long as it answers at all.
    http-check expect rstatus ^(200|503)$
    http-request set-header X-Forwarded-For %[src]
    timeout check 5s
    server a 127.0.0.1:{ports["a"]} check inter 1s fall 2 rise 1
    server b 127.0.0.1:{ports["b"]} check inter 1s fall 2 rise 1
""")
        spawn("haproxy", ["haproxy", "-db", "-f", str(work / "haproxy.cfg")])
        base = f"https://127.0.0.1:{front}"

        poll = requests.Session()
        poll.trust_env = False

        def serving(url, seconds=180) -> float:
            started = time.monotonic()
            while time.monotonic() - started < seconds:
                try:
                    if poll.get(url + "/healthz", timeout=60, verify=False).status_code in (200, 503):
                        return time.monotonic() - started
                except requests.RequestException:
                    pass
                time.sleep(0.2)  # polling a port that is not open yet
            raise RuntimeError(f"{url} did not serve within {seconds} s")

        for key in ports:
            serving(f"http://127.0.0.1:{ports[key]}")
        serving(base)

        samples: list[tuple[str, float, float, object]] = []
        lock = threading.Lock()

        def record(step, at, seconds, outcome):
            with lock:
                samples.append((step, at, seconds, outcome))

        seconds = args.minutes * 60
        began = time.time()
        deadline = time.monotonic() + seconds
        people = [TimedPerson(base, email, record) for email in emails]
        for person in people:
            person.http.verify = False  # haproxy's self-signed certificate, on loopback
            person.http.trust_env = False  # a CA bundle or proxy from the environment would override that
            person.http.headers["Referer"] = base + "/"  # as a browser sends; CSRF checks it over HTTPS
        errors: Counter = Counter()

        def live(person):
            while time.monotonic() < deadline:
                try:
                    person.step = "sign-in"
                    if person.sign_in():
                        person.step = "page"
                        person.browse()
                        person.step = "sign-out"
                        person.sign_out()
                except Exception as exc:  # noqa: BLE001 - counted by kind
                    with lock:
                        errors[type(exc).__name__] += 1

        threads = [threading.Thread(target=live, args=(p,), daemon=True) for p in people]
        for thread in threads:
            thread.start()

        recovery = {}
        time.sleep(seconds / 3)  # the load runs meanwhile; the fault comes at a third of the run
        master = processes["a"]
        killed_at = time.monotonic()
        master.send_signal(signal.SIGKILL)
        master.wait()
        fault_a = time.time()
        # What systemd does when a unit's main process dies: it stops what is left of the
        # unit (the orphaned workers, which still hold the port), then restarts it.
        os.killpg(master.pid, signal.SIGTERM)
        while time.monotonic() - killed_at < 40:
            try:
                os.killpg(master.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.2)  # polling for the orphans to finish their requests and exit
        else:
            os.killpg(master.pid, signal.SIGKILL)
        time.sleep(2)  # systemd's RestartSec
        start_web("a")
        serving(f"http://127.0.0.1:{ports['a']}")
        recovery["instance A back after SIGKILL of its master"] = time.monotonic() - killed_at

        time.sleep(max(0.0, deadline - time.monotonic() - seconds / 3))
        with psycopg.connect(base_url + f"/{name}") as connection:
            holder = connection.execute("SELECT holder FROM scheduler_lease WHERE name = 'scheduler'").fetchone()[0]
        holder_pid = int(holder.split(":")[1])
        victim = next(key for key, proc in processes.items() if key.startswith("scheduler") and proc.pid == holder_pid)
        killed_at = time.monotonic()
        fault_s = time.time()
        processes[victim].send_signal(signal.SIGKILL)
        processes[victim].wait()
        took_over = None
        while time.monotonic() - killed_at < 120:
            with psycopg.connect(base_url + f"/{name}") as connection:
                now_holder = connection.execute(
                    "SELECT holder FROM scheduler_lease WHERE name = 'scheduler'"
                ).fetchone()[0]
            if now_holder != holder:
                took_over = time.monotonic() - killed_at
                break
            time.sleep(0.2)  # polling the lease row
        recovery["scheduler lock taken over after SIGKILL of its holder"] = took_over

        for thread in threads:
            thread.join(timeout=180)
        elapsed = time.time() - began

        verify = subprocess.run(
            [python, "-m", "flask", "--app", "wsgi", "audit", "verify"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        scrape = requests.get(f"http://127.0.0.1:{ports['b']}/metrics", timeout=30).text
    finally:
        for proc in processes.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in processes.values():
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()

    by_step = defaultdict(list)
    statuses: Counter = Counter()
    for step, _at, took, outcome in samples:
        by_step[step].append(took)
        statuses[outcome] += 1
    print(f"{len(people)} sellers, {elapsed:.0f} s, two instances of 3 workers behind haproxy, PostgreSQL, Redis")
    print(
        f"requests: {len(samples)} ({len(samples) / elapsed:.1f}/s); "
        f"sign-ins completed: {sum(p.outcome.sign_ins for p in people)}"
    )
    print(f"{'step':10} {'n':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    for step, values in sorted(by_step.items()):
        q = statistics.quantiles(values, n=100) if len(values) > 1 else values * 99
        print(
            f"{step:10} {len(values):>6} {statistics.median(values) * 1000:>8.0f} "
            f"{q[94] * 1000:>8.0f} {q[98] * 1000:>8.0f}"
        )
    print("answers:", dict(sorted(statuses.items(), key=str)))
    print("errors by kind:", dict(errors) or "none")
    for fault_at, label in ((fault_a, "master"), (fault_s, "scheduler")):
        near = Counter(o for _s, at, _t, o in samples if fault_at - 1 <= at <= fault_at + 30)
        print(f"answers in the 30 s after the {label} kill:", dict(sorted(near.items(), key=str)))
    for label, value in recovery.items():
        print(f"{label}: {value:.1f} s" if value is not None else f"{label}: not within 120 s")
    five = [line for line in scrape.splitlines() if line.startswith("recovery_http_server_errors_total")]
    print("5xx counted by /metrics of instance B:", five or "none")
    print("audit verify:", (verify.stdout or verify.stderr).strip())
    return 0 if verify.returncode == 0 and not any(isinstance(o, int) and o >= 500 for o in statuses) else 1


if __name__ == "__main__":
    sys.exit(main())
