"""The production setup under a mixed load with faults, and every case checked afterwards
(not a test: prints measured figures; tests/ops/test_soak.py runs a one-minute form of it).

    apt-get install haproxy        # and PostgreSQL's server binaries (initdb, pg_ctl, postgres)
    python bench/soak.py --minutes 10 [--json summary.json]

Everything runs on loopback and is stopped and removed at the end, also after
a failure or Ctrl-C. The script starts its own PostgreSQL server in a
temporary directory on a free port (``initdb`` and ``pg_ctl`` from
/usr/lib/postgresql/*/bin, run as the ``postgres`` user when started as
root), so that restarting it harms nobody else; ``--database URL`` uses an
existing server instead (a scratch database, dropped afterwards) and then
leaves out the restart. An SMTP sink (aiosmtpd) receives every e-mail.
Two gunicorn instances of three workers (gunicorn.conf.py, production
settings, rate limits in Redis) and two ``flask scheduler run`` processes
serve behind Debian's haproxy with TLS (health checks on /healthz; a failed
connection is retried on the other instance).

The people, each in a loop that stops by itself at the deadline, pausing
about ``--think`` seconds between steps as people do:

* ``--sellers`` (40) sign in (password and authenticator code; one in eight
  sets up 2SV at the first sign-in), open four pages and sign out;
* ``--case-sellers`` (10), each with three accounts whose phone is lost:
  password, "I can't use any of these", the intake form with generated
  identity documents (passport page or card front and back, and a selfie,
  drawn as phone photos or scans by ``recovery_app.demo``) uploaded through
  the form; later they look at their case, and after an approval sign in
  again and set 2SV up anew. One account in three changed its password two
  days ago, which makes its cases high-risk (a second approval);
* ``--reviewers`` (4) sign in with their own 2SV, claim the next case, look
  at every document and approve (ticking the checklist) or reject it; a
  high-risk case approved by one is confirmed by another, from the queue;
* ``--managers`` (1) read the dashboard, two of its CSV files and the
  breached cases.

Before the load, a few more cases are opened the same way and aged in the
database (their SLA clock moved back), some held by a reviewer who is away,
so that the scheduler's sweep finds them past 75 % or 100 % of the SLA while
the load runs: cases do not breach a 12-hour SLA in minutes by themselves.

Faults, in turn, each once the previous one has recovered: at a quarter of
the run instance A's master gets SIGKILL (as systemd would, its orphaned
workers are then stopped and it is started again 2 s later); at half the
run PostgreSQL is restarted (``pg_ctl restart -m fast``); at three quarters
the scheduler holding the lock gets SIGKILL (restarted 5 s later, as its
unit would be). Measured: the time until instance A serves again, until
the service answers with its database again, and until the other scheduler
holds the lock. A 5xx is allowed only on a request that was under way
between the restart's start and RESTART_MARGIN seconds after PostgreSQL
accepted connections again.

Checked at the end, with the app's own code, after the servers stopped:
every case a seller saw is there with the documents sent, each of which
decrypts to its recorded SHA-256 (``ops.backup.check_documents`` for the
whole store); every SLA breach was escalated once (one audit event, each
manager told once) and every at-risk case flagged once; every outbox row
marked sent reached the SMTP sink, none twice; ``audit verify`` holds; no
file in the upload folder lacks its document row, and no row its file.
Printed: p50/p95/p99 and throughput per journey, answers by status, errors
by kind, the faults' recovery times, the checks. The exit status is 1 when a
target is missed: a 5xx outside the restart window, a recovery over
RECOVERY_TARGET seconds, or a check that fails.
"""

from __future__ import annotations

import argparse
import base64
import glob
import html
import json
import multiprocessing
import os
import random
import re
import resource
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import requests
import urllib3

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers import TEST_PASSWORD as PASSWORD  # noqa: E402  (what tests.served.Person types)
from tests.notify.servers import MailServer, free_port, make_certificate  # noqa: E402  (the sending tests' SMTP server)
from tests.served import ROOMY, Person  # noqa: E402  (the same browser the concurrency tests use)

urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

RECOVERY_TARGET = 30.0  # seconds within which the service must answer again after each fault
RESTART_MARGIN = 5.0  # seconds after PostgreSQL accepts connections again in which a 5xx still counts as the restart's
SYSTEMD_RESTART_WEB = 2.0  # RestartSec of the web unit
SYSTEMD_RESTART_SCHEDULER = 5.0  # RestartSec of deploy/recovery-desk-scheduler.service
ACCOUNTS_PER_CASE_SELLER = 3
HIGH_RISK_EVERY = 3  # one case account in three changed its password two days ago
ENROL_EVERY = 8  # one seller in eight sets up 2SV at the first sign-in
SHIFT = 6  # cases a reviewer works before signing out and in again
REJECT_SHARE = 0.25
REJECT_REASONS = ("unreadable", "name_mismatch", "selfie_mismatch", "suspected_fraud")
# What a seller opens, and where each may land: the sessions page asks for a fresh code first.
SELLER_PAGES = {
    "/": ("/",),
    "/settings/security": ("/settings/security",),
    "/help": ("/help",),
    "/account/sessions": ("/account/sessions", "/settings/confirm"),
}

REFERENCE = re.compile(r"RC-[2-9A-HJKMNP-TV-Z]{4}-[2-9A-HJKMNP-TV-Z]{4}")
CASE_STATUS = re.compile(r'class="badge badge-(\w+)" id="case-status"')
QUEUE_LINK = re.compile(r'class="mono case-link" href="/review/case/(RC-[^"]+)"')
DOCUMENT_LINK = re.compile(r'src="(/review/case/RC-[^"/]+/documents/\d+)"')
CHECKLIST = re.compile(r'name="checklist" value="([a-z_]+)"')
CSV_LINK = re.compile(r'href="(/reports/[a-z_]+\.csv[^"]*)"')
OUTBOX_ID = re.compile(r"\.outbox(\d+)\.")
FLASH_ERROR = re.compile(r'class="flash flash-(?:error|warning|info)"[^>]*>(.*?)</div>', re.S)
# The sign-out and language forms of every page write their token field by hand, in this order.
PAGE_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def path_of(url: str) -> str:
    return urlsplit(url).path


def said(response: requests.Response) -> str:
    """The error a page shows its reader, if any (to name what went wrong)."""
    if not response.headers.get("Content-Type", "").startswith("text/html"):
        return ""
    found = FLASH_ERROR.search(response.text)
    if found is None:
        return ""
    words = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", found.group(1))).split())
    return f' ("{words[:120]}")'


def quantiles(values: list[float]) -> tuple[float, float, float]:
    """p50, p95, p99 (the exclusive method; a single value is all three)."""
    if len(values) < 2:
        return (values[0],) * 3 if values else (float("nan"),) * 3
    cuts = statistics.quantiles(values, n=100)
    return statistics.median(values), cuts[94], cuts[98]


# --- a PostgreSQL server of our own --------------------------------------------------


def postgres_binaries() -> Path | None:
    """The newest /usr/lib/postgresql/<version>/bin holding initdb, pg_ctl and postgres."""

    def version(path: str) -> float:
        try:
            return float(Path(path).parent.name)
        except ValueError:
            return 0.0

    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True):
        if all((Path(folder) / name).exists() for name in ("initdb", "pg_ctl", "postgres")):
            return Path(folder)
    return None


class Cluster:
    """A throw-away PostgreSQL server in a temporary directory on a free port.
    As root it runs as the ``postgres`` user (the server refuses to run as
    root), which must own its directory."""

    def __init__(self, binaries: Path, log_folder: Path):
        self.binaries = binaries
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="soak-pg-"))
        self.data = self.root / "data"
        self.log = log_folder / "postgres.log"
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        self.started = False

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}"

    def _run(self, program: str, *arguments: str, check: bool = True) -> subprocess.CompletedProcess:
        command = [str(self.binaries / program), *arguments]
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        with self.log.open("a") as sink:
            # Its own session: a Ctrl-C at the terminal is for this script, which stops the server itself.
            done = subprocess.run(command, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
        if check and done.returncode != 0:
            raise RuntimeError(f"{program} failed ({done.returncode}); see {self.log}")
        return done

    def start(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale")
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c max_connections=200"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-o", options, "-w", "start")
        self.started = True

    def restart(self) -> None:
        """Fast shutdown (open sessions are ended), then start again; returns once it accepts connections."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "restart")

    def remove(self) -> None:
        if self.started:
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop", check=False)
            server_log = self.root / "server.log"
            if server_log.exists():
                with self.log.open("a") as sink:
                    sink.write(server_log.read_text(errors="replace"))
        shutil.rmtree(self.root, ignore_errors=True)


# --- what happened -------------------------------------------------------------------


class JourneyError(Exception):
    """A journey went wrong in a way a person would notice; the message is its kind."""


class Log:
    """Every request and every journey, with when it ended and how it went."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests: list[tuple[str, float, float, object]] = []  # journey, ended at, seconds, status or error
        self.unexpected: Counter = Counter()  # (journey, path, status) of every 4xx and 5xx
        self.journeys: list[tuple[str, float, float, bool]] = []  # name, ended at, seconds, ok
        self.errors: Counter = Counter()
        self.error_times: dict[str, list[float]] = defaultdict(list)
        self.error_examples: dict[str, str] = {}
        self.outcomes: Counter = Counter()  # what the people got done: cases opened, approvals, ...

    def request(self, journey: str, seconds: float, outcome, path: str = "") -> None:
        with self.lock:
            self.requests.append((journey, time.time(), seconds, outcome))
            if not isinstance(outcome, int) or outcome >= 400:
                self.unexpected[(journey, REFERENCE.sub("RC-…", path), outcome)] += 1

    def outcome(self, what: str) -> None:
        with self.lock:
            self.outcomes[what] += 1

    @contextmanager
    def journey(self, browser: Browser, name: str):
        """Time one journey of ``browser``; pauses and waits for a fresh
        authenticator step inside it are not counted."""
        browser.journey = name
        started, idle = time.perf_counter(), browser.idle + browser.waited
        ok = False
        try:
            yield
            ok = True
        except Exception as exc:
            kind = str(exc) if isinstance(exc, JourneyError) else type(exc).__name__
            with self.lock:
                self.errors[f"{name}: {kind}"] += 1
                self.error_times[f"{name}: {kind}"].append(time.time())
                self.error_examples.setdefault(f"{name}: {kind}", str(exc)[:300])
            raise
        finally:
            seconds = time.perf_counter() - started - (browser.idle + browser.waited - idle)
            with self.lock:
                self.journeys.append((name, time.time(), seconds, ok))


class Browser(Person):
    """One person's browser over haproxy's TLS: every request timed and filed
    under the journey it belongs to."""

    def __init__(self, base: str, email: str, seed: str | None, log: Log, until: float):
        super().__init__(base, email, seed)
        self.log = log
        self.until = until
        self.journey = "setup"
        self.idle = 0.0
        self.http.verify = False  # haproxy's self-signed certificate, on loopback
        self.http.trust_env = False  # a CA bundle or proxy from the environment would override that
        self.http.headers["Referer"] = base + "/"  # as a browser sends; CSRF checks it over HTTPS

    def get(self, path):
        return self._timed(lambda: super(Browser, self).get(path))

    def post(self, path, data=None):
        return self._timed(lambda: super(Browser, self).post(path, data))

    def _seen(self, response):
        # A page with no WTForms form (the home page after a new session) still carries the
        # sign-out form's token: read it too, or the sign-out would send a token of the old session.
        if not response.headers.get("Content-Type", "").startswith("text/html"):
            return response
        found = PAGE_CSRF.search(response.text)
        if found:
            self._token = found.group(1)
        return super()._seen(response)

    def fetch(self, path: str) -> requests.Response:
        """A GET of a file (a document image, a CSV): timed, not read for a form token."""
        return self._timed(lambda: self.http.get(self.base + path, timeout=60))

    def send_files(self, path: str, data: dict, files: dict) -> requests.Response:
        """A form with files, as multipart/form-data, like the intake page sends it."""
        return self._timed(
            lambda: self._seen(
                self.http.post(self.base + path, data={"csrf_token": self._token, **data}, files=files, timeout=120)
            )
        )

    def _timed(self, call):
        started = time.perf_counter()
        try:
            response = call()
        except requests.RequestException as exc:
            path = path_of(exc.request.url) if exc.request is not None else ""
            self.log.request(self.journey, time.perf_counter() - started, type(exc).__name__, path)
            raise
        for earlier in response.history:
            self.log.request(self.journey, 0.0, earlier.status_code, path_of(earlier.url))
        self.log.request(self.journey, time.perf_counter() - started, response.status_code, path_of(response.url))
        return response

    def expect(self, response: requests.Response, *paths: str) -> requests.Response:
        if response.status_code >= 400:
            raise JourneyError(f"HTTP {response.status_code} on {path_of(response.url)}")
        if paths and path_of(response.url) not in paths:
            via = "".join(f" via {path_of(earlier.url)}" for earlier in response.history[1:])
            raise JourneyError(f"landed on {path_of(response.url)}{via}{said(response)}")
        return response

    def past(self) -> bool:
        return time.monotonic() >= self.until

    def forget_session(self) -> None:
        """After a journey went wrong: the person closes the browser (its
        session cookie goes; the cookie that knows the browser stays)."""
        for cookie in list(self.http.cookies):
            if "session" in cookie.name:
                self.http.cookies.clear(cookie.domain, cookie.path, cookie.name)

    def pause(self, mean: float) -> None:
        """Think for about ``mean`` seconds (never past the deadline)."""
        seconds = min(random.uniform(0.5, 1.5) * mean, max(0.0, self.until - time.monotonic()))
        time.sleep(seconds)
        self.idle += seconds

    def fresh_step_in_time(self) -> bool:
        """Wait for an authenticator step this person has not used (a code
        works once), unless it comes after the deadline."""
        step = int(time.time()) // 30
        if self.seed is None or step != self._last_step:
            return True
        wait = (step + 1) * 30 - time.time() + 0.05
        if time.monotonic() + wait > self.until:
            return False
        time.sleep(wait)
        self.idle += wait
        return True


# --- the documents sellers photograph ------------------------------------------------


def _draw_documents(document_type: str, sides: list[str], romanised_name: str, seed: int):
    from recovery_app import demo

    return demo.case_documents(document_type, sides, romanised_name, random.Random(seed))


class Camera:
    """Draws each case's documents ahead of time in a process of its own, at
    low priority (about a second per case): the person does not wait for
    Pillow, and the drawing does not compete with the servers' work first."""

    def __init__(self, document_types: dict[str, tuple[str, ...]]):
        self.document_types = document_types
        self.pool = ProcessPoolExecutor(
            max_workers=1, mp_context=multiprocessing.get_context("spawn"), initializer=os.nice, initargs=(10,)
        )
        self.rng = random.Random(7)
        self.lock = threading.Lock()

    def shoot(self, romanised_name: str) -> tuple[str, Future]:
        with self.lock:
            document_type = self.rng.choice(sorted(self.document_types))
            seed = self.rng.randrange(10**9)
        sides = [*self.document_types[document_type], "selfie"]
        return document_type, self.pool.submit(_draw_documents, document_type, sides, romanised_name, seed)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


# --- the people ----------------------------------------------------------------------


@dataclass
class Opened:
    """A case as its seller saw it: the reference on the case page and what was sent."""

    reference: str
    email: str
    document_type: str
    sides: list[str]
    seen_at: float
    seeded: str | None = None  # how the case was aged before the load, if it was


@dataclass
class CaseAccount:
    """A seller account whose phone is lost, and where its case stands as the seller knows it."""

    browser: Browser
    romanised_name: str
    next_documents: tuple[str, Future] | None = None
    open_reference: str | None = None


def seller_life(browser: Browser, log: Log, think: float) -> None:
    while not browser.past():
        try:
            if not browser.fresh_step_in_time():
                return
            first = browser.seed is None
            with log.journey(browser, "seller: first sign-in, 2SV set-up" if first else "seller: sign in"):
                if not browser.sign_in():
                    raise JourneyError("not signed in")
            browser.pause(think)
            with log.journey(browser, "seller: four pages"):
                for page, shown in SELLER_PAGES.items():
                    browser.expect(browser.get(page), *shown)
                    browser.pause(think / 2)
            with log.journey(browser, "seller: sign out"):
                browser.sign_out()
            browser.pause(think * 2)
        except Exception:  # noqa: BLE001 - counted by its journey; a person carries on
            browser.forget_session()
            browser.pause(think)


def visit(account: CaseAccount, camera: Camera, log: Log, opened: list[Opened], seeded: str | None = None):
    """The password step, then what the seller is shown: an open case comes
    first; after an approval, 2SV set up again; otherwise the code page, from
    which "I can't use any of these" leads to the intake form."""
    browser = account.browser
    if account.next_documents is None:
        account.next_documents = camera.shoot(account.romanised_name)
    with log.journey(browser, "case seller: password step"):
        browser.get("/sign-in")
        page = browser.expect(browser.post("/sign-in", {"email": browser.email, "password": PASSWORD}))
        where = path_of(page.url)
        if where not in ("/sign-in/setup", "/recovery/case", "/sign-in/code"):
            browser.expect(page, "/sign-in/setup", "/recovery/case", "/sign-in/code")
    if where == "/sign-in/setup":
        if account.open_reference is not None:
            log.outcome("case seen approved by its seller")
            account.open_reference = None
        with log.journey(browser, "case seller: set 2SV up again after approval"):
            browser._last_step = None  # a new authenticator, a new sequence of steps
            done = browser._enroll()
            if path_of(done.url).startswith("/sign-in"):
                raise JourneyError(f"set-up ended on {path_of(done.url)}{said(done)}")
            browser.sign_out()
        return None
    if where == "/recovery/case":
        with log.journey(browser, "case seller: look at the case"):
            found = REFERENCE.search(page.text)
            if found is None or CASE_STATUS.search(page.text) is None:
                raise JourneyError("no reference or status on the case page")
            standing = browser.get(f"/recovery/case/{found.group(0)}/standing")
            if standing.status_code == 404:  # approved in between: the approval ended the password step
                log.outcome("case decided while its seller looked at it")
            elif standing.status_code != 200:
                raise JourneyError(f"standing answered {standing.status_code}")
        reference = found.group(0)
        if account.open_reference != reference:  # an open case whose answer was lost on the way
            note(log, opened, Opened(reference, browser.email, "", [], time.time(), seeded))
        account.open_reference = reference
        return reference
    if account.open_reference is not None:  # no open case any more: decided (rejected) since
        log.outcome("case seen decided by its seller")
        account.open_reference = None
    document_type, drawn = account.next_documents
    waited = time.perf_counter()
    documents = drawn.result(timeout=300)  # the photos were taken before the seller started
    browser.idle += time.perf_counter() - waited
    with log.journey(browser, "case seller: open a case"):
        browser.expect(browser.get("/sign-in/other-ways"), "/sign-in/other-ways")
        browser.expect(browser.get("/recovery/"), "/recovery/")
        files = {side: (f"{side}.jpg", data, "image/jpeg") for side, data, _w, _h in documents}
        page = browser.send_files("/recovery/", {"document_type": document_type, "consent": "y"}, files)
        browser.expect(page, "/recovery/case")
        found = REFERENCE.search(page.text)
        if found is None:
            raise JourneyError("no reference on the case page")
    account.next_documents = None
    account.open_reference = found.group(0)
    note(
        log,
        opened,
        Opened(found.group(0), browser.email, document_type, [s for s, *_ in documents], time.time(), seeded),
    )
    return found.group(0)


def note(log: Log, opened: list[Opened], case: Opened) -> None:
    with log.lock:
        if not any(seen.reference == case.reference for seen in opened):
            opened.append(case)
            log.outcomes["case opened" if case.sides else "open case found after its answer was lost"] += 1


def case_seller_life(accounts: list[CaseAccount], camera: Camera, log: Log, opened: list[Opened], think: float):
    while not accounts[0].browser.past():
        for account in accounts:
            if account.browser.past():
                return
            try:
                visit(account, camera, log, opened)
            except Exception:  # noqa: BLE001 - counted by its journey; the seller comes back later
                account.browser.forget_session()
            account.browser.pause(think * 3)


def decide(browser: Browser, log: Log, rng: random.Random, reference: str, page, mine: set[str]) -> None:
    """Look at every document, then approve (the whole checklist) or reject, as the reviewer's page offers."""
    for link in DOCUMENT_LINK.findall(page.text):
        shown = browser.fetch(link)
        if shown.status_code != 200 or not shown.headers.get("Content-Type", "").startswith("image/"):
            raise JourneyError(f"document answered {shown.status_code}")
    confirm = f'action="/review/case/{reference}/confirm"' in page.text
    if rng.random() < REJECT_SHARE:
        answer = browser.post(
            f"/review/case/{reference}/reject",
            {
                "reason": rng.choice(REJECT_REASONS),
                "message": "The documents do not show what we need.",
                "confirm": "y",
            },
        )
        outcome = "rejected"
    elif confirm:
        answer = browser.post(f"/review/case/{reference}/confirm")
        outcome = "second approval"
    else:
        answer = browser.post(f"/review/case/{reference}/approve", {"checklist": CHECKLIST.findall(page.text)})
        outcome = "first of two approvals" if "waits for a second reviewer" in answer.text else "approved"
    browser.expect(answer, f"/review/case/{reference}")
    if 'class="flash flash-success"' not in answer.text:
        raise JourneyError(f"{outcome} refused")
    if outcome == "first of two approvals":
        mine.add(reference)
    log.outcome(f"case {outcome}")


def work_one_case(browser: Browser, log: Log, rng: random.Random, mine: set[str], think: float) -> None:
    with log.journey(browser, "reviewer: queue of second approvals"):
        page = browser.expect(browser.get("/review/?status=awaiting_second_approval"), "/review/")
        waiting = [ref for ref in dict.fromkeys(QUEUE_LINK.findall(page.text)) if ref not in mine]
    if waiting:
        reference = rng.choice(waiting)
        with log.journey(browser, "reviewer: second approval"):
            page = browser.expect(browser.post(f"/review/case/{reference}/claim"), f"/review/case/{reference}")
            if f'action="/review/case/{reference}/confirm"' not in page.text:
                log.outcome("second approval taken by a colleague first")  # two reviewers saw it at once
                return
            decide(browser, log, rng, reference, page, mine)
        return
    with log.journey(browser, "reviewer: claim next and decide"):
        page = browser.expect(browser.post("/review/claim-next"))
        if path_of(page.url) == "/review/":
            log.outcome("queue empty")
            page = None
        else:
            reference = path_of(page.url).rsplit("/", 1)[1]
            decide(browser, log, rng, reference, page, mine)
    if page is None:
        browser.pause(think * 3)


def reviewer_life(browser: Browser, log: Log, think: float, seed: int) -> None:
    rng = random.Random(seed)
    mine: set[str] = set()  # first approvals of this reviewer: someone else must confirm them
    while not browser.past():
        try:
            if not browser.fresh_step_in_time():
                return
            with log.journey(browser, "reviewer: sign in"):
                if not browser.sign_in():
                    raise JourneyError("not signed in")
            for _ in range(SHIFT):
                if browser.past():
                    break
                try:
                    work_one_case(browser, log, rng, mine, think)
                except Exception:  # noqa: BLE001 - counted by its journey
                    pass
                browser.pause(think)
            with log.journey(browser, "reviewer: sign out"):
                browser.sign_out()
        except Exception:  # noqa: BLE001 - counted by its journey
            browser.forget_session()
            browser.pause(think)


def manager_life(browser: Browser, log: Log, think: float, seed: int) -> None:
    rng = random.Random(seed)
    while not browser.past():
        try:
            if not browser.fresh_step_in_time():
                return
            with log.journey(browser, "manager: sign in"):
                if not browser.sign_in():
                    raise JourneyError("not signed in")
            for _ in range(5):
                if browser.past():
                    break
                with log.journey(browser, "manager: dashboard"):
                    page = browser.expect(browser.get("/reports/"), "/reports/")
                    links = [html.unescape(link) for link in CSV_LINK.findall(page.text)]
                    if not links:
                        raise JourneyError("no CSV on the dashboard")
                browser.pause(think)
                with log.journey(browser, "manager: two CSV files"):
                    for link in rng.sample(links, min(2, len(links))):
                        table = browser.fetch(link)
                        if table.status_code != 200 or not table.headers.get("Content-Type", "").startswith("text/csv"):
                            raise JourneyError(f"CSV answered {table.status_code}")
                browser.pause(think)
                with log.journey(browser, "manager: breached cases"):
                    browser.expect(browser.get("/review/?breached=y"), "/review/")
                browser.pause(think * 3)
            with log.journey(browser, "manager: sign out"):
                browser.sign_out()
        except Exception:  # noqa: BLE001 - counted by its journey
            browser.forget_session()
            browser.pause(think)


# --- the app's own code, in this process (setting up and checking) --------------------


def make_people(app, args) -> dict:
    """Sellers, case accounts, staff: committed, with their authenticator seeds.
    Everyone shares one password hash made with the production settings (as the
    demo's sellers do): a hash each would cost most of a short run's setup."""
    from sqlalchemy import update

    from recovery_app import demo
    from recovery_app.auth import passwords
    from recovery_app.auth.users import get_or_create_account
    from recovery_app.database import unit
    from recovery_app.extensions import db
    from recovery_app.models import User
    from recovery_app.models.base import utcnow
    from tests.factories import Factory

    cheap = {"RECOVERY_ARGON2_TIME_COST": 1, "RECOVERY_ARGON2_MEMORY_KIB": 8, "RECOVERY_ARGON2_PARALLELISM": 1}
    people: dict = {"sellers": [], "case_accounts": [], "seeded_accounts": [], "reviewers": [], "managers": []}
    with app.app_context(), unit():
        shared_hash = passwords.hash_password(PASSWORD)
        kept = {name: app.config[name] for name in cheap}
        app.config.update(cheap)
        make = Factory(app)
        now = utcnow()

        def seller(email: str, enrolled: bool, n: int, *, high_risk: bool = False):
            display, romanised = demo.SELLER_NAMES[n % len(demo.SELLER_NAMES)]
            user = make.user(
                email=email,
                account=get_or_create_account(f"Soak shop {email}", now),
                enrolled=enrolled,
                locale="en",
                display_name=display,
                created_at=now - timedelta(days=90),
            )
            user.romanised_name = romanised
            if high_risk:  # a password changed two days ago: the risk rules ask for a second approval
                user.password_changed_at = now - timedelta(days=2)
            return email, getattr(user, "_test_totp_seed", None), romanised

        try:
            for n in range(args.sellers):
                people["sellers"].append(seller(f"seller{n}@soak.example", n % ENROL_EVERY != ENROL_EVERY - 1, n))
            for n in range(args.case_sellers * ACCOUNTS_PER_CASE_SELLER):
                email = f"lost-phone{n}@soak.example"
                people["case_accounts"].append(seller(email, True, n, high_risk=n % HIGH_RISK_EVERY == 1))
            for n in range(args.seeded_cases):
                people["seeded_accounts"].append(seller(f"aged{n}@soak.example", True, n))
            for role, key, count in (("reviewer", "reviewers", args.reviewers), ("manager", "managers", args.managers)):
                for n in range(count):
                    email = f"{role}{n}@soak.example"
                    user = make.user(role, email=email, enrolled=True, locale="en", display_name=f"{role} {n}")
                    people[key].append((email, user._test_totp_seed))
            away = make.user("reviewer", email="away@soak.example", enrolled=True, locale="en", display_name="away")
            people["away_reviewer"] = away.email
        finally:
            app.config.update(kept)
        db.session.execute(update(User).values(password_hash=shared_hash))
    return people


def age_cases(app, plan: list[tuple[str, str, object]], away_email: str) -> None:
    """Move the SLA clock of each planned case back so that it is due at the
    planned time (and was created and submitted 12 hours before that); the
    ``held`` ones are first claimed by a reviewer who is away."""
    from sqlalchemy import select

    from recovery_app.auth.users import find_user_by_email
    from recovery_app.database import unit
    from recovery_app.extensions import db
    from recovery_app.models import Case
    from recovery_app.models.base import utcnow
    from recovery_app.review import claims

    with app.app_context(), unit():
        away = find_user_by_email(away_email)
        for reference, kind, due in plan:
            if kind != "overdue":
                claims.claim(reference, away, now=utcnow())
            case = db.session.execute(select(Case).where(Case.reference == reference)).scalar_one()
            shift = due - case.due_at
            case.created_at += shift
            case.submitted_at += shift
            case.clock_started_at += shift
            case.due_at = due


def check_cases(app, opened: list[Opened]) -> dict:
    """Every case a seller saw is there, with the sides sent, each document
    decrypting to its recorded SHA-256 (``storage.read``); the whole store by
    ``ops.backup.check_documents`` (missing, damaged, orphaned blobs)."""
    from sqlalchemy import select

    from recovery_app.database import unit
    from recovery_app.documents import storage
    from recovery_app.extensions import db
    from recovery_app.models import Case
    from recovery_app.ops import backup

    problems: list[str] = []
    documents = 0
    with app.app_context(), unit(write=False):
        for seen in opened:
            case = db.session.execute(select(Case).where(Case.reference == seen.reference)).scalar_one_or_none()
            if case is None:
                problems.append(f"{seen.reference}: no such case")
                continue
            if case.user.email != seen.email:
                problems.append(f"{seen.reference}: opened by {seen.email}, stored for {case.user.email}")
            first_round = sorted(doc.side for doc in case.documents if doc.round == 1)
            if seen.sides and first_round != sorted(seen.sides):
                problems.append(f"{seen.reference}: sent {sorted(seen.sides)}, stored {first_round}")
            for document in case.documents:
                documents += 1
                try:
                    storage.read(document)
                except Exception as exc:  # noqa: BLE001 - missing, not decrypting or not matching: each is named
                    problems.append(f"{seen.reference}: document {document.id} ({document.side}): {exc!r}"[:200])
        store = backup.check_documents()
        unseen = db.session.execute(
            select(Case.reference).where(Case.reference.not_in([seen.reference for seen in opened]))
        ).scalars()
        unseen = sorted(unseen)
    for kind in ("missing", "damaged"):
        if store[kind]:
            problems.append(f"{len(store[kind])} documents {kind} in the store: {store[kind][:10]}")
    return {
        "cases": len(opened),
        "documents": documents,
        "store_checked": store["checked"],
        "cases_no_seller_saw": unseen,
        "problems": problems,
        "ok": not problems,
    }


def check_files(app) -> dict:
    """Every file of the upload folder belongs to a document row, or is a
    staged upload (``.tmp``) young enough to be kept for a seller's next try
    (``recovery.kept``: the orphan job removes it after that); every row not
    purged has its file in place."""
    from sqlalchemy import select

    from recovery_app.database import unit
    from recovery_app.documents import storage
    from recovery_app.extensions import db
    from recovery_app.models import Document
    from recovery_app.recovery.kept import KEPT_FOR

    with app.app_context(), unit(write=False):
        rows = dict(db.session.execute(select(Document.storage_key, Document.purged_at)).all())
        folder = storage.upload_dir()
    blobs = {path.stem: path for path in folder.glob(f"*/*{storage.BLOB_SUFFIX}")}
    staged = {path.stem: path for path in folder.glob(f"*/*{storage.TMP_SUFFIX}")}
    others = [
        path
        for path in folder.rglob("*")
        if path.is_file() and path.suffix not in (storage.BLOB_SUFFIX, storage.TMP_SUFFIX)
    ]
    orphans = sorted(key for key in blobs if key not in rows)
    without_file = sorted(key for key, purged in rows.items() if purged is None and key not in blobs)
    unmoved = sorted(key for key in staged if key in rows)  # a row whose file never left its staging name
    young = KEPT_FOR.total_seconds()
    kept = sorted(key for key, path in staged.items() if key not in rows and time.time() - path.stat().st_mtime < young)
    stale = sorted(key for key, path in staged.items() if key not in rows and key not in kept)
    return {
        "files": len(blobs) + len(staged) + len(others),
        "document_rows": len(rows),
        "orphans": orphans + stale + [str(path) for path in others],
        "rows_without_file": without_file + unmoved,
        "staged_within_kept_lifetime": len(kept),
        "ok": not (orphans or stale or others or without_file or unmoved),
    }


def check_escalations(app, seeded: list[tuple[str, str, object]], last_sweep) -> dict:
    """One ``case.sla_breached`` audit event per breached case and each manager
    told of it in exactly one notice; one ``case.sla_at_risk`` event per case
    flagged at risk before it breached (none when both came in one sweep), each
    person told once; and every aged case the last sweep had to find, found."""
    from sqlalchemy import func, select

    from recovery_app.database import unit
    from recovery_app.extensions import db
    from recovery_app.lifecycle import at_risk_margin
    from recovery_app.models import AuditEvent, Case, OutboxMessage, User

    problems: list[str] = []
    with app.app_context(), unit(write=False):
        events = Counter(
            (action, subject)
            for action, subject in db.session.execute(
                select(AuditEvent.action, AuditEvent.subject_id).where(
                    AuditEvent.action.in_(("case.sla_breached", "case.sla_at_risk"))
                )
            ).all()
        )
        flagged = db.session.execute(
            select(Case.reference, Case.at_risk_at, Case.breached_at, Case.due_at).where(
                (Case.at_risk_at.is_not(None)) | (Case.breached_at.is_not(None))
            )
        ).all()
        told: Counter = Counter()
        for to, template, payload in db.session.execute(
            select(OutboxMessage.to, OutboxMessage.template, OutboxMessage.payload).where(
                OutboxMessage.template.like("scheduler/email/%")
            )
        ).all():
            kind = "breached" if template.endswith("breached") else "at_risk"
            for item in (payload or {}).get("context", {}).get("cases", []):
                told[(kind, item["reference"], to)] += 1
        managers = set(db.session.execute(select(User.email).where(User.role == "manager")).scalars())
        margin = at_risk_margin()
        total_events = db.session.execute(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "case.sla_breached")
        ).scalar_one()
    breached = at_risk = 0
    for reference, at_risk_at, breached_at, _due in flagged:
        if breached_at is not None:
            breached += 1
            if events[("case.sla_breached", reference)] != 1:
                problems.append(f"{reference}: {events[('case.sla_breached', reference)]} breach events")
            for manager in managers:
                if told[("breached", reference, manager)] != 1:
                    problems.append(f"{reference}: {manager} told {told[('breached', reference, manager)]} times")
        wanted = 1 if at_risk_at is not None and at_risk_at != breached_at else 0
        at_risk += wanted
        if events[("case.sla_at_risk", reference)] != wanted:
            problems.append(f"{reference}: {events[('case.sla_at_risk', reference)]} at-risk events, {wanted} wanted")
    if total_events != breached:
        problems.append(f"{total_events} breach events for {breached} breached cases")
    problems += [f"{reference}: {to} told {n} times ({kind})" for (kind, reference, to), n in told.items() if n > 1]
    state = {reference: (at_risk_at, breached_at) for reference, at_risk_at, breached_at, _ in flagged}
    for reference, kind, due in seeded:
        at_risk_at, breached_at = state.get(reference, (None, None))
        if kind in ("overdue", "held") and last_sweep is not None and due <= last_sweep and breached_at is None:
            problems.append(
                f"{reference} (aged, due {due:%H:%M:%S}): not breached by the sweep of {last_sweep:%H:%M:%S}"
            )
        if kind == "at_risk" and last_sweep is not None and due - margin <= last_sweep and at_risk_at is None:
            problems.append(f"{reference} (aged): not at risk after the sweep of {last_sweep:%H:%M:%S}")
    return {
        "breached": breached,
        "at_risk_before_breach": at_risk,
        "aged_cases": len(seeded),
        "notices": sum(told.values()),
        "problems": problems,
        "ok": not problems,
    }


def check_messages(app, sink: MailServer) -> dict:
    """No outbox row reached the SMTP sink twice; every e-mail row marked sent
    reached it; nothing reached it that is not in the outbox."""
    from sqlalchemy import select

    from recovery_app.database import unit
    from recovery_app.extensions import db
    from recovery_app.models import OutboxMessage

    arrived: Counter = Counter()
    for message in list(sink.messages):
        found = OUTBOX_ID.search(str(message.get("Message-ID", "")))
        arrived[int(found.group(1)) if found else -1] += 1
    with app.app_context(), unit(write=False):
        rows = db.session.execute(select(OutboxMessage.id, OutboxMessage.channel, OutboxMessage.status)).all()
    by_status = Counter(f"{channel} {status}" for _id, channel, status in rows)
    sent = {message_id for message_id, channel, status in rows if channel == "email" and status == "sent"}
    known = {message_id for message_id, *_ in rows}
    twice = sorted(message_id for message_id, n in arrived.items() if n > 1)
    missing = sorted(sent - set(arrived))
    unknown = sorted(message_id for message_id in arrived if message_id not in known)
    # Arrived, yet not recorded as sent (the database went away just after the SMTP server took it):
    # the retry job would send it again once its claim times out.
    unrecorded = sorted(message_id for message_id in arrived if message_id in known and message_id not in sent)
    return {
        "arrived": sum(arrived.values()),
        "outbox": dict(sorted(by_status.items())),
        "sent_twice": twice,
        "sent_but_not_arrived": missing,
        "arrived_unknown": unknown,
        "arrived_not_recorded_sent": unrecorded,
        "ok": not (twice or missing or unknown or unrecorded),
    }


# --- the run -------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database",
        help="a PostgreSQL URL with the right to create databases; by default the script starts its own "
        "server, which it can restart (a shared one is never restarted)",
    )
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/6")
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--sellers", type=int, default=40, help="sellers signing in and out")
    parser.add_argument("--case-sellers", type=int, default=10, help="sellers opening recovery cases")
    parser.add_argument("--reviewers", type=int, default=4)
    parser.add_argument("--managers", type=int, default=1)
    parser.add_argument("--seeded-cases", type=int, help="cases aged before the load (default: 3 per 2 minutes, 6+)")
    parser.add_argument("--think", type=float, default=1.0, help="mean seconds a person pauses between steps")
    parser.add_argument("--json", type=Path, help="also write the figures and checks to this file, as JSON")
    args = parser.parse_args()
    if args.seeded_cases is None:
        args.seeded_cases = max(6, round(args.minutes * 1.5))
    if args.reviewers < 2:
        parser.error("--reviewers: at least 2 (a high-risk case needs a second approver)")

    # A stop from outside (a test's timeout, systemd) runs the clean-up below, as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    work = Path(tempfile.mkdtemp(prefix="soak-"))
    phases: dict[str, float] = {}  # wall-clock seconds of setting up, the load, winding down and checking
    mark = time.monotonic()

    def phase(name: str) -> None:
        nonlocal mark
        phases[name] = round(time.monotonic() - mark, 1)
        mark = time.monotonic()

    logs = work / "logs"
    logs.mkdir()
    processes: dict[str, subprocess.Popen] = {}
    cluster = camera = sink = app = admin = None
    name = f"soak_{secrets.token_hex(4)}"
    summary: dict = {}
    try:
        if args.database:
            server_url = args.database.rsplit("/", 1)[0]
            admin = psycopg.connect(args.database, autocommit=True)
        else:
            binaries = postgres_binaries()
            if binaries is None:
                raise SystemExit("PostgreSQL's server binaries are not installed (apt-get install postgresql)")
            cluster = Cluster(binaries, logs)
            cluster.start()
            server_url = cluster.url
            admin = psycopg.connect(server_url + "/postgres", autocommit=True)
        admin.execute(f'CREATE DATABASE "{name}"')
        database_url = f"{server_url}/{name}"
        phase("database server")
        sink = MailServer().__enter__()
        front = free_port()
        base = f"https://127.0.0.1:{front}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("RECOVERY_")}
        settings = {
            "RECOVERY_ENV": "production",
            "RECOVERY_SECRET_KEY": secrets.token_urlsafe(48),
            "RECOVERY_VAULT_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
            "RECOVERY_DATABASE_URL": database_url.replace("postgresql://", "postgresql+psycopg://"),
            "RECOVERY_RATELIMIT_STORAGE_URI": args.redis,
            "RECOVERY_INSTANCE_DIR": str(work / "instance"),
            "RECOVERY_UPLOAD_DIR": str(work / "uploads"),
            "RECOVERY_BASE_URL": base,
            "RECOVERY_SCHEDULER": "off",
            "RECOVERY_WEB_WORKERS": "3",
            "RECOVERY_TRUSTED_PROXIES": "1",
            "RECOVERY_SCHEDULER_STANDBY_POLL_SECONDS": "2",
            "RECOVERY_SCHEDULER_HEARTBEAT_SECONDS": "5",
            # The sweep every 5 s so that aged cases cross 75 % and 100 % within a short run;
            # the retry paths sooner than in production, so that they run (and race) in it too.
            "RECOVERY_JOB_SLA_SWEEP_SECONDS": "5",
            "RECOVERY_JOB_OUTBOX_SECONDS": "10",
            "RECOVERY_JOB_PRECHECKS_SECONDS": "15",
            "RECOVERY_OUTBOX_RETRY_AFTER_SECONDS": "20",
            "RECOVERY_OUTBOX_CLAIM_TIMEOUT_SECONDS": "60",
            "RECOVERY_SMTP_HOST": "127.0.0.1",
            "RECOVERY_SMTP_PORT": str(sink.port),
            "RECOVERY_SMTP_SECURITY": "none",
            "RECOVERY_MAIL_FROM": "no-reply@soak.example",
            # Everyone comes from 127.0.0.1, and user ids start again at 1 in each run's database while
            # Redis keeps its counters for an hour: the limits would measure themselves, not the service.
            "RECOVERY_LIMIT_SIGN_IN": ROOMY,
            "RECOVERY_LIMIT_CODE_CHECK": ROOMY,
            "RECOVERY_LIMIT_CODE_SEND": ROOMY,
            "RECOVERY_CASE_LIMIT_PER_ADDRESS": ROOMY,
            "RECOVERY_CASE_LIMIT_PER_USER": ROOMY,
        }
        env.update(settings, PYTHONPATH=str(ROOT))
        python = sys.executable

        def spawn(key, command, extra=None):
            with (logs / f"{key}.log").open("a") as out:
                processes[key] = subprocess.Popen(
                    command,
                    cwd=ROOT,
                    env={**env, **(extra or {})},
                    stdout=out,
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

        subprocess.run(
            [python, "-m", "flask", "--app", "wsgi", "db", "upgrade"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )
        # This process uses the app's own code to set up and to check, with the same settings.
        for key in [key for key in os.environ if key.startswith("RECOVERY_")]:
            del os.environ[key]
        os.environ.update(settings)
        from recovery_app import create_app

        app = create_app()
        camera = Camera(app.config["RECOVERY_DOCUMENT_TYPES"])
        phase("migrations")
        people = make_people(app, args)
        # The aged cases' photos are drawn while the servers start.
        shots = [camera.shoot(romanised) for _, _, romanised in people["seeded_accounts"]]
        phase("people")
        start_web("a")
        start_web("b")
        # The schedulers start with the web: whatever they sweep before the cases are aged does not
        # matter, the load waits for a sweep that began after the ageing.
        spawn("scheduler-1", [python, "-m", "flask", "--app", "wsgi", "scheduler", "run"])
        spawn("scheduler-2", [python, "-m", "flask", "--app", "wsgi", "scheduler", "run"])
        cert, key = make_certificate(work)
        (work / "tls.pem").write_text(cert.read_text() + key.read_text())
        (work / "haproxy.cfg").write_text(f"""global
    maxconn 500
    log stdout format raw local0
defaults
    mode http
    log global
    option httplog
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
    # process: the instance stays in the pool as long as it answers at all, however
    # slowly. On a saturated machine every thread of both instances may be busy with
    # password hashes for many seconds: a short check timeout then takes both out at once.
    http-check expect rstatus ^(200|503)$
    http-request set-header X-Forwarded-For %[src]
    timeout check 30s
    server a 127.0.0.1:{ports["a"]} check inter 1s fall 2 rise 1
    server b 127.0.0.1:{ports["b"]} check inter 1s fall 2 rise 1
""")
        spawn("haproxy", ["haproxy", "-db", "-f", str(work / "haproxy.cfg")])

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

        def database_answers(seconds=180) -> None:
            """Until /healthz, through the front door, reads the database again."""
            started = time.monotonic()
            while time.monotonic() - started < seconds:
                try:
                    if poll.get(base + "/healthz", timeout=30, verify=False).json()["database"]["status"] == "ok":
                        return
                except (requests.RequestException, ValueError, KeyError):
                    pass
                time.sleep(0.2)  # polling for the database to be back
            raise RuntimeError(f"the service did not read its database within {seconds} s")

        def lease() -> tuple[str | None, object]:
            with psycopg.connect(database_url, connect_timeout=5) as connection:
                row = connection.execute(
                    "SELECT holder, heartbeat_at FROM scheduler_lease WHERE name = 'scheduler'"
                ).fetchone()
            return row if row else (None, None)

        for key in ports:
            serving(f"http://127.0.0.1:{ports[key]}")
        serving(base)
        phase("web up")

        log = Log()
        opened: list[Opened] = []
        seconds = args.minutes * 60

        # Aged cases: opened through the intake like any other, then their SLA clock moved back.
        setup_log, setup_until = Log(), time.monotonic() + 600
        aged = [
            CaseAccount(Browser(base, email, seed, setup_log, setup_until), romanised, shot)
            for (email, seed, romanised), shot in zip(people["seeded_accounts"], shots, strict=True)
        ]
        references: list[str | None] = [None] * len(aged)

        def open_aged(index: int) -> None:
            for _ in range(3):  # a loaded machine may time a request out; the seller tries again
                try:
                    references[index] = visit(aged[index], camera, setup_log, opened, seeded="aged")
                    return
                except Exception:  # noqa: BLE001 - counted by its journey
                    continue

        openers = [threading.Thread(target=open_aged, args=(i,)) for i in range(len(aged))]
        for opener in openers:
            opener.start()
        for opener in openers:
            opener.join()
        if None in references:
            raise RuntimeError(f"could not open the aged cases: {dict(setup_log.errors)}")
        from recovery_app.models.base import utcnow

        load_starts = utcnow() + timedelta(seconds=10)  # about when the next sweep has run
        thirds = len(references) // 3
        margin = timedelta(hours=app.config["RECOVERY_SLA_HOURS"] * (1 - app.config["RECOVERY_AT_RISK_SHARE"]))
        plan = []
        for i, reference in enumerate(references):
            if i < thirds:  # waiting, unclaimed, already past its due time: the next sweep escalates it
                plan.append((reference, "overdue", load_starts - timedelta(minutes=10 + i)))
            elif i < 2 * thirds:  # held by the absent reviewer, due while the load runs
                share = (i - thirds + 1) / (thirds + 1) * 0.7
                plan.append((reference, "held", load_starts + timedelta(seconds=seconds * share)))
            else:  # held, crossing 75 % of the SLA while the load runs
                share = (i - 2 * thirds + 1) / (len(references) - 2 * thirds + 1) * 0.7
                plan.append((reference, "at_risk", load_starts + margin + timedelta(seconds=seconds * share)))
        age_cases(app, plan, people["away_reviewer"])
        aged_at = utcnow()  # committed: a sweep that starts after this finds the aged cases
        phase("aged cases")
        for opened_case in opened:
            opened_case.seeded = next(kind for ref, kind, _ in plan if ref == opened_case.reference)

        with psycopg.connect(database_url) as connection:
            started = time.monotonic()
            while not connection.execute(
                "SELECT 1 FROM job_runs WHERE job = 'sla_sweep' AND error IS NULL AND started_at > %s LIMIT 1",
                (aged_at,),
            ).fetchone():
                if time.monotonic() - started > 120:
                    raise RuntimeError("no SLA sweep within 120 s of ageing the cases")
                time.sleep(0.5)  # polling for the sweep that finds the aged cases

        # The load.
        phase("schedulers")
        began = time.time()
        until = time.monotonic() + seconds
        threads = []
        rng = random.Random(11)

        def person(email, seed):
            return Browser(base, email, seed, log, until)

        for email, seed, _ in people["sellers"]:
            threads.append(threading.Thread(target=seller_life, args=(person(email, seed), log, args.think)))
        accounts = [CaseAccount(person(email, seed), romanised) for email, seed, romanised in people["case_accounts"]]
        for n in range(args.case_sellers):
            mine = accounts[n * ACCOUNTS_PER_CASE_SELLER : (n + 1) * ACCOUNTS_PER_CASE_SELLER]
            threads.append(threading.Thread(target=case_seller_life, args=(mine, camera, log, opened, args.think)))
        for email, seed in people["reviewers"]:
            threads.append(
                threading.Thread(target=reviewer_life, args=(person(email, seed), log, args.think, rng.random()))
            )
        for email, seed in people["managers"]:
            threads.append(
                threading.Thread(target=manager_life, args=(person(email, seed), log, args.think, rng.random()))
            )
        rng.shuffle(threads)
        for thread in threads:
            thread.daemon = True
            thread.start()

        faults = []

        def at_share(share: float) -> None:
            time.sleep(max(0.0, began + seconds * share - time.time()))

        # Fault 1: SIGKILL of instance A's master.
        at_share(0.25)
        master = processes["a"]
        killed_at, fault_at = time.monotonic(), time.time()
        master.send_signal(signal.SIGKILL)
        master.wait()
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
        orphans_gone = time.monotonic() - killed_at
        time.sleep(SYSTEMD_RESTART_WEB)
        start_web("a")
        serving(f"http://127.0.0.1:{ports['a']}")
        faults.append(
            {
                "fault": "SIGKILL of instance A's gunicorn master",
                "at_s": fault_at - began,
                "recovered_s": time.monotonic() - killed_at,
                "recovered": "instance A serves again",
                "orphaned_workers_gone_s": orphans_gone,
            }
        )

        # Fault 2: PostgreSQL restarted.
        at_share(0.5)
        if cluster is None:
            faults.append({"fault": "PostgreSQL restart", "skipped": "--database names a server this run does not own"})
            window = None
        else:
            started, fault_at = time.monotonic(), time.time()
            cluster.restart()
            accepting = time.time()
            database_answers()
            window = (fault_at, accepting + RESTART_MARGIN)
            faults.append(
                {
                    "fault": "PostgreSQL restart (pg_ctl restart -m fast)",
                    "at_s": fault_at - began,
                    "database_down_s": accepting - fault_at,
                    "recovered_s": time.monotonic() - started,
                    "recovered": "the service reads its database again (/healthz through haproxy)",
                    "window_s": [fault_at - began, accepting + RESTART_MARGIN - began],
                }
            )

        # Fault 3: SIGKILL of the scheduler holding the lock, once one holds it with a fresh heartbeat.
        at_share(0.75)
        victim = holder = None
        started = time.monotonic()
        while victim is None and time.monotonic() - started < 120:
            holder, beat = lease()
            pid = int(holder.split(":")[1]) if holder else None
            fresh = beat is not None and (utcnow() - beat).total_seconds() < 10
            victim = next(
                (key for key, proc in processes.items() if key.startswith("scheduler") and proc.pid == pid), None
            )
            if victim is None or not fresh or processes[victim].poll() is not None:
                victim = None
                time.sleep(0.5)  # polling for a settled holder after the restart
        if victim is None:
            raise RuntimeError("no scheduler held the lock within 120 s")
        killed_at, fault_at = time.monotonic(), time.time()
        processes[victim].send_signal(signal.SIGKILL)
        processes[victim].wait()
        took_over = None
        while time.monotonic() - killed_at < 120:
            now_holder, beat = lease()
            if now_holder and now_holder != holder:
                took_over = time.monotonic() - killed_at
                break
            time.sleep(0.2)  # polling the lease row
        faults.append(
            {
                "fault": "SIGKILL of the scheduler holding the lock",
                "at_s": fault_at - began,
                "recovered_s": took_over,
                "recovered": "the other scheduler holds the lock",
            }
        )
        time.sleep(max(0.0, SYSTEMD_RESTART_SCHEDULER - (time.monotonic() - killed_at)))
        spawn(victim, [python, "-m", "flask", "--app", "wsgi", "scheduler", "run"])
        for fault in faults:
            fault["during_load"] = fault.get("at_s", 0) < seconds

        for thread in threads:
            thread.join(timeout=max(1.0, until - time.monotonic()) + 180)
        elapsed = time.time() - began
        phase("load")
        stragglers = sum(thread.is_alive() for thread in threads)

        # Let the sweep pass the last aged due time, and the outbox empty, before stopping.
        last_due = max(due - (margin if kind == "at_risk" else timedelta(0)) for _, kind, due in plan)
        last_sweep = None
        with psycopg.connect(database_url) as connection:
            started = time.monotonic()
            while time.monotonic() - started < 30:
                last_sweep = connection.execute(
                    "SELECT max(started_at) FROM job_runs WHERE job = 'sla_sweep' AND error IS NULL"
                ).fetchone()[0]
                if last_sweep is not None and last_sweep >= last_due:
                    break
                time.sleep(0.5)  # polling for the next sweep
            drain = max(20.0, min(60.0, seconds / 10))
            started = time.monotonic()
            while time.monotonic() - started < drain:
                if not connection.execute(
                    "SELECT 1 FROM outbox WHERE status IN ('pending', 'sending') LIMIT 1"
                ).fetchone():
                    break
                time.sleep(0.5)  # polling for the outbox to empty
        scrape = requests.get(f"http://127.0.0.1:{ports['b']}/metrics", timeout=30).text
        phase("sweep and outbox")
        # Checks run on a still database: the servers and schedulers stop first (SIGTERM, graceful).
        for proc in processes.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in processes.values():
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
        time.sleep(0.5)  # the SMTP server's last messages

        phase("stopping")
        verify = subprocess.run(
            [python, "-m", "flask", "--app", "wsgi", "audit", "verify"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        checks = {
            "cases": check_cases(app, opened),
            "escalations": check_escalations(app, plan, last_sweep),
            "messages": check_messages(app, sink),
            "files": check_files(app),
            "audit": {"said": (verify.stdout or verify.stderr).strip(), "ok": verify.returncode == 0},
        }
        phase("checks")
        summary = report(args, log, faults, window, checks, began, elapsed, stragglers, scrape)
        summary["phases_s"] = phases
        print("wall-clock seconds:", phases)
    except BaseException as exc:
        summary = {"ok": False, "stopped_by": f"{type(exc).__name__}: {exc}"}
        raise
    finally:
        for proc in processes.values():
            if proc.poll() is None:
                proc.kill()
        if camera is not None:
            camera.close()
        if app is not None:
            from recovery_app.extensions import db

            with app.app_context():
                db.engine.dispose()
        if sink is not None:
            sink.__exit__(None, None, None)
        if admin is not None:
            if cluster is None:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.close()
        if cluster is not None:
            cluster.remove()
        if summary.get("ok"):
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"logs kept in {logs}", file=sys.stderr)
        if args.json:
            args.json.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return 0 if summary.get("ok") else 1


def report(args, log: Log, faults, window, checks, began, elapsed, stragglers, scrape) -> dict:
    """Print the figures and the checks; return them as a dict (for ``--json``)."""
    journeys = defaultdict(list)
    failed: Counter = Counter()
    for name, _at, took, ok in log.journeys:
        if ok:
            journeys[name].append(took)
        else:
            failed[name] += 1
    statuses = Counter(outcome for *_, outcome in log.requests)
    fives = [
        (at - took, at, outcome)
        for _j, at, took, outcome in log.requests
        if isinstance(outcome, int) and outcome >= 500
    ]

    def restarts_own(start: float, end: float) -> bool:  # the request was under way while the database was away
        return window is not None and start <= window[1] and end >= window[0]

    inside = [end for start, end, _ in fives if restarts_own(start, end)]
    outside = [(round(end - began, 1), outcome) for start, end, outcome in fives if not restarts_own(start, end)]
    people = (
        f"{args.sellers} sellers, {args.case_sellers} sellers opening cases, {args.reviewers} reviewers, "
        f"{args.managers} manager(s); {args.seeded_cases} aged cases; think time about {args.think:g} s"
    )
    print(f"{people}; {elapsed:.0f} s on {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end")
    print("two gunicorn instances of 3 workers behind haproxy (TLS), two schedulers, PostgreSQL, Redis, SMTP sink")
    own = resource.getrusage(resource.RUSAGE_SELF)
    print(f"CPU of this script (the people's browsers, TLS, the checks): {own.ru_utime + own.ru_stime:.0f} s")
    print(f"requests: {len(log.requests)} ({len(log.requests) / elapsed:.1f}/s)")
    print(f"{'journey':48} {'done':>5} {'failed':>6} {'per min':>7} {'p50 s':>7} {'p95 s':>7} {'p99 s':>7}")
    table = {}
    for name in sorted(set(journeys) | set(failed)):
        values = journeys.get(name, [])
        p50, p95, p99 = quantiles(values)
        table[name] = {"done": len(values), "failed": failed[name], "p50_s": p50, "p95_s": p95, "p99_s": p99}
        print(
            f"{name:48} {len(values):>5} {failed[name]:>6} {len(values) / elapsed * 60:>7.1f} "
            f"{p50:>7.2f} {p95:>7.2f} {p99:>7.2f}"
        )
    print("done:", dict(sorted(log.outcomes.items())))
    print("answers:", dict(sorted(statuses.items(), key=str)))
    print("errors by kind:", dict(sorted(log.errors.items())) or "none")
    print(
        "4xx, 5xx and failed requests:", {f"{j} {p} {o}": n for (j, p, o), n in sorted(log.unexpected.items(), key=str)}
    )
    if stragglers:
        print(f"people still busy 180 s after the deadline: {stragglers}")
    for fault in faults:
        if "skipped" in fault:
            print(f"{fault['fault']}: not done ({fault['skipped']})")
            continue
        took = fault["recovered_s"]
        said = f"{took:.1f} s" if took is not None else "not within 120 s"
        print(f"{fault['fault']} at {fault['at_s']:.0f} s: {fault['recovered']} after {said}")
        if "orphaned_workers_gone_s" in fault:
            print(
                f"  its orphaned workers had finished their requests after {fault['orphaned_workers_gone_s']:.1f} s; "
                f"started again {SYSTEMD_RESTART_WEB:g} s later; the rest is the new workers loading the app"
            )
        if "window_s" in fault:
            print(
                f"  PostgreSQL refused connections for {fault['database_down_s']:.1f} s; "
                f"5xx allowed on requests under way from {fault['window_s'][0]:.0f} s to {fault['window_s'][1]:.0f} s "
                f"(until {RESTART_MARGIN:g} s after it accepted connections again): {len(inside)} there"
            )
    print(f"5xx outside the restart window: {len(outside)}", outside[:10] if outside else "")
    five = [line for line in scrape.splitlines() if line.startswith("recovery_http_server_errors_total")]
    print("5xx counted by /metrics of instance B:", five or "none")
    for key, found in checks.items():
        details = {k: v for k, v in found.items() if k not in ("ok", "problems") and v not in ([], {})}
        print(f"check {key}: {'holds' if found['ok'] else 'FAILS'}", details)
        for problem in found.get("problems", [])[:20]:
            print("   ", problem)
    recoveries = [fault["recovered_s"] for fault in faults if "skipped" not in fault]
    targets = {
        "no_5xx_outside_restart_window": not outside,
        "each_recovery_within_30_s": all(took is not None and took <= RECOVERY_TARGET for took in recoveries),
        "all_checks_hold": all(found["ok"] for found in checks.values()),
    }
    print("targets:", {name: "met" if met else "MISSED" for name, met in targets.items()})
    return {
        "people": people,
        "began_at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(began)),
        "seconds": elapsed,
        "cores": os.cpu_count(),
        "driver_cpu_s": own.ru_utime + own.ru_stime,
        "load_average_end": os.getloadavg()[0],
        "requests": len(log.requests),
        "requests_per_second": len(log.requests) / elapsed,
        "journeys": table,
        "outcomes": dict(log.outcomes),
        "statuses": {str(k): v for k, v in statuses.items()},
        "errors": dict(log.errors),
        "unexpected_answers": [
            {"journey": journey, "path": path, "answer": str(outcome), "count": count}
            for (journey, path, outcome), count in sorted(log.unexpected.items(), key=str)
        ],
        "error_examples": log.error_examples,
        "error_times_s": {kind: [round(at - began, 1) for at in times] for kind, times in log.error_times.items()},
        "faults": faults,
        "restart_margin_s": RESTART_MARGIN,
        "server_errors_inside_window": len(inside),
        "server_errors_outside_window": len(outside),
        "checks": checks,
        "targets": targets,
        "ok": all(targets.values()),
    }


if __name__ == "__main__":
    sys.exit(main())
