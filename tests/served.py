"""A served app for concurrency tests: a real HTTP server (werkzeug, one thread
per request) on a free loopback port, with the in-process scheduler running
every job every two seconds, and people who use it through the real forms
with their own cookie jar, as browsers do."""

from __future__ import annotations

import re
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import pyotp
import requests
from werkzeug.serving import make_server

from recovery_app.auth.users import get_or_create_account
from recovery_app.extensions import db
from recovery_app.models.base import utcnow
from recovery_app.scheduler import jobs
from recovery_app.scheduler.runner import Runner

from .factories import Factory
from .helpers import TEST_PASSWORD

CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
SETUP_KEY = re.compile(r'id="setup-key">(.*?)</p>', re.S)
ROOMY = "100000 per minute"


def serve_config(app) -> None:
    """Every job every 2 s, and per-address limits out of the way (everyone comes from 127.0.0.1)."""
    for job in jobs.JOBS:
        app.config[job.setting] = 2
    app.config.update(
        RECOVERY_SCHEDULER_HEARTBEAT_SECONDS=1,
        RECOVERY_LIMIT_SIGN_IN=ROOMY,
        RECOVERY_LIMIT_CODE_CHECK=ROOMY,
        RECOVERY_LIMIT_CODE_SEND=ROOMY,
    )


@contextmanager
def served(app, *, scheduler: bool = True):
    """Serve ``app`` on 127.0.0.1 (a free port) with its scheduler; yields the base URL."""
    serve_config(app)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="served-app", daemon=True)
    thread.start()
    runner = Runner(app, holder="served-test", say=lambda _line: None) if scheduler else None
    runner_thread = threading.Thread(target=runner.run, daemon=True) if runner else None
    if runner_thread:
        runner_thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        if runner:
            runner.stop_event.set()
            runner_thread.join(timeout=30)
        server.shutdown()
        thread.join(timeout=30)


@dataclass
class Outcome:
    statuses: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    sign_ins: int = 0

    @property
    def server_errors(self) -> list[int]:
        return [status for status in self.statuses if status >= 500]


class Person:
    """One browser: its own cookies, the CSRF token of the page it last read."""

    def __init__(self, base: str, email: str, seed: str | None = None):
        self.base, self.email, self.seed = base, email, seed
        self.http = requests.Session()
        self.outcome = Outcome()
        self._token = ""
        self._last_step = None
        self.waited = 0.0  # seconds spent waiting for a fresh authenticator step

    def get(self, path: str) -> requests.Response:
        response = self.http.get(self.base + path, timeout=60)
        return self._seen(response)

    def post(self, path: str, data: dict | None = None) -> requests.Response:
        response = self.http.post(self.base + path, data={"csrf_token": self._token, **(data or {})}, timeout=60)
        return self._seen(response)

    def _seen(self, response):
        self.outcome.statuses.append(response.status_code)
        for earlier in response.history:
            self.outcome.statuses.append(earlier.status_code)
        found = CSRF.search(response.text)
        if found:
            self._token = found.group(1)
        return response

    def code(self) -> str:
        """The authenticator's code, waiting for a step not used yet (a step works once)."""
        totp = pyotp.TOTP(self.seed)
        while (step := int(time.time()) // 30) == self._last_step:
            time.sleep(0.5)
            self.waited += 0.5
        self._last_step = step
        return totp.now()

    def sign_in(self) -> bool:
        """Password, then the code or, for a new user, the whole enrollment; True when signed in."""
        self.get("/sign-in")
        page = self.post("/sign-in", {"email": self.email, "password": TEST_PASSWORD})
        if page.url.endswith("/sign-in/setup"):
            page = self._enroll()
        elif page.url.endswith("/sign-in/code"):
            page = self.post("/sign-in/code", {"code": self.code()})
        signed_in = page.ok and not page.url.split("?")[0].endswith(("/sign-in", "/sign-in/code", "/sign-in/setup"))
        self.outcome.sign_ins += signed_in
        return signed_in

    def _enroll(self) -> requests.Response:
        page = self.get("/sign-in/setup/app")
        key = SETUP_KEY.search(page.text)
        if key is None:
            self.outcome.errors.append(f"no set-up key on {page.url} ({page.status_code})")
            return page
        self.seed = re.sub(r"<[^>]+>|\s", "", key.group(1))
        self.post("/sign-in/setup/app", {"code": self.code()})
        self.post("/sign-in/setup/skip-backup")
        self.post("/sign-in/setup/recovery-codes")
        return self.post("/sign-in/setup/finish")

    def browse(self) -> None:
        for path in ("/", "/settings/security", "/help", "/account/sessions"):
            self.get(path)

    def sign_out(self) -> None:
        self.get("/")
        self.post("/sign-out")


def crowd(people: list[Person], seconds: float) -> None:
    """Everyone signs in, opens pages and signs out again until ``seconds`` have passed."""
    deadline = time.monotonic() + seconds
    start = threading.Barrier(len(people))

    def live(person: Person) -> None:
        try:
            start.wait()
            while time.monotonic() < deadline:
                if person.sign_in():
                    person.browse()
                    person.sign_out()
        except Exception as exc:  # noqa: BLE001 - reported by the test, whatever it was
            person.outcome.errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=live, args=(person,)) for person in people]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 120)


def at_once(calls: list, *, timeout: float = 120) -> list:
    """Run every call at the same moment, each in its own thread; their results in order."""
    results: list = [None] * len(calls)
    start = threading.Barrier(len(calls))

    def run(index, call):
        start.wait()
        try:
            results[index] = call()
        except Exception as exc:  # noqa: BLE001 - reported by the test
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    return results


def sellers(app, count: int) -> list[tuple[str, str | None]]:
    """(e-mail, authenticator seed) for ``count`` sellers of one shop, committed:
    half enrolled, half to enroll at their first sign-in."""
    with app.app_context():
        make = Factory(app)
        account = get_or_create_account("Crowd shop", utcnow())
        people = []
        for n in range(count):
            user = make.user(email=f"person{n}@example.test", account=account, enrolled=n % 2 == 0, locale="en")
            people.append((user.email, getattr(user, "_test_totp_seed", None)))
        db.session.commit()
        db.session.remove()
    return people
