"""Running the pre-checks of a case, storing their results, and what the
reviewer's panel and queue read from them.

Pre-checks advise; they never decide a case and never change its status. The
one thing they change on a case is the four-eyes flag: a document that matches
another user's document makes both cases high-risk, with a reason and an
audit event.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache

import cv2
import pytesseract
from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import case as sql_case
from sqlalchemy import exists, func, or_, select, update
from sqlalchemy.orm import aliased

from .. import audit
from ..case_labels import SIDE_LABELS, STATUS_LABELS
from ..database import lock_row, one_at_a_time
from ..documents import storage
from ..extensions import db
from ..models import Case, Document
from ..models.cases import DOCUMENT_SIDES
from ..models.prechecks import DocumentHash, DocumentMatch, PrecheckResult, PrecheckRun
from . import faces, imaging, mrz, quality, reuse

CHECKS = ("quality", "mrz", "reuse", "face")
VERDICT_ORDER = {"pass": 0, "review": 1, "fail": 2}
REUSED = "document_reused"  # the code added to Case.risk_reasons
SHOWN_MATCHES = 5  # other cases named on a reuse line; the rest are counted

CHECK_LABELS = {
    "quality": _l("Image quality"),
    "mrz": _l("Passport machine-readable zone"),
    "reuse": _l("Reused document"),
    "face": _l("Face"),
}
VERDICT_LABELS = {"pass": _l("Pass"), "review": _l("Look closely"), "fail": _l("Fail")}
WHY = {
    "quality": _l("A blurred, glared or dark image hides edits and makes details unreadable."),
    "mrz": _l("Forged passports often get the check digits, dates or name wrong."),
    "reuse": _l("The same document sent by two different people means at least one of them is not its owner."),
    "face": _l("Without a visible face the selfie cannot be compared with the document photo."),
}
REASON_LABELS = {
    "blurred": _l("Blurred"),
    "soft": _l("Slightly soft"),
    "glare": _l("Glare covers part of the image"),
    "some_glare": _l("Some glare"),
    "too_dark": _l("Too dark"),
    "dim": _l("Dim"),
    "small": _l("Low resolution"),
    "no_image": _l("The PDF holds no image to check"),
    "mrz_not_found": _l("No machine-readable zone could be read"),
    "mrz_garbled": _l("The machine-readable zone was read only partly"),
    "check_digit": _l("A check digit is wrong"),
    "expired": _l("Expired when the case was submitted"),
    "name_mismatch": _l("Name differs from the user's name"),
    "not_passport": _l("The document is not a passport"),
    "reused": _l("Matches a document of another user's case"),
    "no_face": _l("No face found"),
}
RISK_REASON_LABEL = _l("A document matches a document of another user's case")


class PrecheckError(RuntimeError):
    """A check could not run (the message is kept on the run and shown to the reviewer)."""


# --- running ------------------------------------------------------------------


@lru_cache(maxsize=1)
def library_versions() -> dict[str, str]:
    """What produced a result, stored with it so old results can be told apart."""
    versions = {"opencv": cv2.__version__}
    for package in ("imagehash", "mrz"):
        versions[package] = importlib.metadata.version(package)
    try:
        versions["tesseract"] = str(pytesseract.get_tesseract_version())
    except pytesseract.TesseractNotFoundError:
        versions["tesseract"] = "missing"
    return versions


@dataclass
class Examined:
    """What the checks measured on one document, before anything is stored."""

    document_id: int
    quality: quality.Quality | None = None  # None: a PDF without an image
    faces: int | None = None  # None: not looked for (this side shows no face)
    mrz: mrz.MrzReading | None = None  # None: not a passport front
    phash: str | None = None


def examine(case: Case, round_: int) -> list[Examined]:
    """The slow part: decode, measure, OCR and hash every document of ``round_``.
    Reads only, so a worker runs it outside any write transaction and other
    workers can store their results meanwhile."""
    found = []
    for document in (d for d in case.documents if d.round == round_ and d.purged_at is None):
        examined = Examined(document.id)
        found.append(examined)
        try:
            pixels = imaging.decode(storage.read(document), document.content_type)
        except imaging.NoImage:
            continue
        gray = imaging.gray(pixels)
        examined.quality = quality.measure(gray)
        if document.side in ("front", "selfie"):
            examined.faces = faces.count_faces(gray)
        if document.side == "front" and case.document_type == "passport":
            examined.mrz = mrz.read(gray, case.submitted_at.date())
        examined.phash = reuse.phash(imaging.to_pil(pixels))
    return found


def record(case: Case, examined: list[Examined], now: datetime) -> str:
    """Judge what ``examine`` measured against the settings and store the
    results (and any reuse found). Flushes, never commits. Returns the worst verdict."""
    config = current_app.config
    documents = {d.id: d for d in case.documents}
    for item in examined:
        document = documents[item.document_id]
        if item.quality is None:
            _store(case, document, "quality", "review", ["no_image"], {}, now)
            continue
        verdict, reasons = quality.judge(item.quality, config)
        _store(case, document, "quality", verdict, reasons, item.quality.as_dict(), now)
        if item.faces is not None:
            _store(
                case,
                document,
                "face",
                "pass" if item.faces else "review",
                [] if item.faces else ["no_face"],
                {"faces": item.faces},
                now,
            )
        if item.mrz is not None:
            _check_mrz(case, document, item.mrz, now)
        _check_reuse(case, document, item.phash, now)
    db.session.flush()
    return _worst([r.verdict for r in _results_for(case.id, [item.document_id for item in examined])]) or "pass"


def run_checks(case: Case, round_: int, now: datetime) -> str:
    """Run every check on the documents of ``round_`` and store the results in
    this transaction. Returns the worst verdict."""
    return record(case, examine(case, round_), now)


def _check_mrz(case: Case, document: Document, reading: mrz.MrzReading, now: datetime) -> None:
    if not reading.found:
        _store(case, document, "mrz", "review", ["mrz_not_found"], {}, now)
        return
    measured = {
        "surname": reading.surname,
        "given_names": reading.given_names,
        "nationality": reading.nationality,
        "birth_date": reading.birth_date,
        "expiry_date": reading.expiry_date,
        "lines": reading.lines,
        "failed_check_digits": reading.failed_check_digits,
    }
    if reading.garbled:
        _store(case, document, "mrz", "review", ["mrz_garbled"], measured, now)
        return
    fails, looks = [], []
    if reading.failed_check_digits:
        fails.append("check_digit")
    if reading.document_type != "P":
        looks.append("not_passport")
    if mrz.is_expired(reading, case.submitted_at):
        fails.append("expired")
    if not mrz.name_matches(reading, case.user.romanised_name or ""):
        looks.append("name_mismatch")
    verdict = "fail" if fails else ("review" if looks else "pass")
    _store(case, document, "mrz", verdict, fails + looks, measured, now)


def _check_reuse(case: Case, document: Document, phash: str, now: datetime) -> None:
    # Two workers recording copies of one document at the same moment would
    # each insert their hash and look for the other's before it is committed,
    # and neither would find a match: the lookups run one after the other.
    one_at_a_time("document-hashes")
    stored = db.session.execute(
        select(DocumentHash).where(DocumentHash.document_id == document.id)
    ).scalar_one_or_none()
    if stored is None:
        db.session.add(
            DocumentHash(
                document_id=document.id,
                case_id=case.id,
                user_id=case.user_id,
                phash=phash,
                created_at=now,
                **reuse.band_values(phash),
            )
        )
        db.session.flush()
    limit = current_app.config["RECOVERY_PRECHECK_REUSE_MAX_DISTANCE"]
    for match in reuse.find_matches(phash, other_than_user_id=case.user_id, max_distance=limit):
        _record_match(case, document, match.stored, match.distance, now)
    _refresh_reuse_result(case.id, document.id, now)


def _record_match(case: Case, document: Document, other: DocumentHash, distance: int, now: datetime) -> None:
    known = db.session.execute(
        select(DocumentMatch.id).where(
            DocumentMatch.document_id == document.id, DocumentMatch.matched_document_id == other.document_id
        )
    ).first()
    if known is not None:
        return
    other_case = db.session.get(Case, other.case_id)
    db.session.add_all(
        [
            DocumentMatch(
                case_id=case.id,
                document_id=document.id,
                matched_case_id=other_case.id,
                matched_document_id=other.document_id,
                distance=distance,
                found_at=now,
            ),
            DocumentMatch(
                case_id=other_case.id,
                document_id=other.document_id,
                matched_case_id=case.id,
                matched_document_id=document.id,
                distance=distance,
                found_at=now,
            ),
        ]
    )
    db.session.flush()
    _flag_reuse(case, document.id, other_case, other.document_id, distance, now)
    _refresh_reuse_result(other_case.id, other.document_id, now)


def _flag_reuse(case: Case, document_id: int, other_case: Case, other_document_id: int, distance: int, now) -> None:
    """Both cases need four eyes from now on.

    Their reasons are read, added to and written back whole, and a reviewer's
    first look at either may be adding its own at this moment: they are read
    under the cases' locks. Both are locked before the audit log's head, as a
    reviewer or the SLA sweep takes a case and then the head: one case, the
    head, then the other could wait on a reviewer holding the other."""
    lock_row(Case, case.id, other_case.id)
    for flagged, counterpart, doc_id in ((case, other_case, document_id), (other_case, case, other_document_id)):
        _flag_high_risk(flagged, counterpart, doc_id, distance, now)


def _flag_high_risk(case: Case, counterpart: Case, document_id: int, distance: int, now: datetime) -> None:
    """Four eyes from now on; existing reasons are kept. The status is not touched.
    The caller holds the case's lock (``_flag_reuse``)."""
    case.high_risk = True
    reasons = list(case.risk_reasons or [])
    if REUSED not in reasons:
        case.risk_reasons = reasons + [REUSED]
    audit.record(
        "precheck.document_reused",
        now=now,
        subject_type="case",
        subject_id=case.id,
        details={"document_id": document_id, "matched_case": counterpart.reference, "distance": distance},
    )


def _refresh_reuse_result(case_id: int, document_id: int, now: datetime) -> None:
    """The reuse verdict of a document from its stored matches (both ways):
    each other case once, at its closest distance, the closest SHOWN_MATCHES
    kept with a count of the rest (a document copied into many cases would
    otherwise make a page-long list)."""
    closest = func.min(DocumentMatch.distance)
    per_case = (
        select(DocumentMatch.matched_case_id, closest)
        .where(DocumentMatch.document_id == document_id)
        .group_by(DocumentMatch.matched_case_id)
    )
    shown = db.session.execute(per_case.order_by(closest, DocumentMatch.matched_case_id).limit(SHOWN_MATCHES)).all()
    total = db.session.execute(select(func.count()).select_from(per_case.subquery())).scalar_one() if shown else 0
    measured = {
        "matches": [{"case_id": other_id, "distance": dist} for other_id, dist in shown],
        "more_cases": total - len(shown),
        "hash_bits": reuse.HASH_SIZE * reuse.HASH_SIZE,
    }
    verdict = "fail" if shown else "pass"
    document = db.session.get(Document, document_id)
    _store_ids(case_id, document, "reuse", verdict, ["reused"] if shown else [], measured, now)


def _store(
    case: Case, document: Document, check: str, verdict: str, reasons: list[str], measured: dict, now: datetime
) -> None:
    _store_ids(case.id, document, check, verdict, reasons, measured, now)


def _store_ids(
    case_id: int, document: Document, check: str, verdict: str, reasons: list[str], measured: dict, now: datetime
) -> None:
    """One row per document and check: a re-run replaces the row, never adds one."""
    row = db.session.execute(
        select(PrecheckResult).where(PrecheckResult.document_id == document.id, PrecheckResult.check == check)
    ).scalar_one_or_none()
    values = {"verdict": verdict, "reasons": list(reasons), "measured": measured, "versions": library_versions()}
    if row is None:
        db.session.add(PrecheckResult(case_id=case_id, document_id=document.id, check=check, created_at=now, **values))
    elif any(getattr(row, key) != value for key, value in values.items()):
        for key, value in values.items():
            setattr(row, key, value)
        row.created_at = now
    db.session.flush()


def _results_for(case_id: int, document_ids: list[int]) -> list[PrecheckResult]:
    if not document_ids:
        return []
    return list(
        db.session.execute(
            select(PrecheckResult)
            .where(PrecheckResult.case_id == case_id, PrecheckResult.document_id.in_(document_ids))
            .order_by(PrecheckResult.document_id, PrecheckResult.id)
        ).scalars()
    )


def _worst(verdicts) -> str | None:
    verdicts = list(verdicts)
    return max(verdicts, key=VERDICT_ORDER.__getitem__) if verdicts else None


def scrub_purged(now: datetime) -> int:
    """Drop the MRZ fields (name, nationality, dates) of results whose document
    retention has purged, in one UPDATE. Verdicts, reasons and hashes stay."""
    purged = select(Document.id).where(Document.purged_at.is_not(None))
    result = db.session.execute(
        update(PrecheckResult)
        .where(
            PrecheckResult.check == "mrz", PrecheckResult.scrubbed_at.is_(None), PrecheckResult.document_id.in_(purged)
        )
        .values(measured={}, scrubbed_at=now)
        .execution_options(synchronize_session=False)
    )
    return max(result.rowcount or 0, 0)


# --- reading: the panel, the queue, the checklist --------------------------------


@dataclass
class PanelLine:
    """One line of the panel. Labels stay lazy: they are translated when rendered."""

    check: str
    label: object
    side: object
    verdict: str
    verdict_label: object
    values: list[tuple[object, str]]
    reasons: list
    why: object
    matches: list[dict] = field(default_factory=list)
    more_matches: int = 0


@dataclass
class Panel:
    state: str  # none | running | done | failed
    verdict: str | None = None
    lines: list[PanelLine] = field(default_factory=list)
    error: str | None = None
    attempts: int = 0

    @property
    def badge_class(self) -> str:
        return {"pass": "badge-ok", "review": "badge-warn", "fail": "badge-bad"}.get(self.verdict or "", "badge-info")


def latest_run(case_id: int) -> PrecheckRun | None:
    return db.session.execute(
        select(PrecheckRun).where(PrecheckRun.case_id == case_id).order_by(PrecheckRun.round.desc()).limit(1)
    ).scalar_one_or_none()


def panel(case: Case) -> Panel:
    """What the reviewer's pre-check panel shows for ``case``."""
    run = latest_run(case.id)
    if run is None:
        has_documents = any(d.purged_at is None for d in case.documents)
        return Panel(state="running" if has_documents and case.is_open else "none")
    if run.status in ("pending", "running"):
        return Panel(state="running", error=run.last_error, attempts=run.attempts)
    if run.status == "failed":
        return Panel(state="failed", error=run.last_error, attempts=run.attempts)
    documents = {d.id: d for d in case.documents if d.round == run.round}
    results = _results_for(case.id, list(documents))
    results.sort(key=lambda r: (CHECKS.index(r.check), DOCUMENT_SIDES.index(documents[r.document_id].side), r.id))
    lines = [_line(result, documents[result.document_id]) for result in results]
    # From the results, not the run: a later case's copy turns this case's reuse line to fail.
    verdict = _worst(result.verdict for result in results) or run.verdict
    return Panel(state="done", verdict=verdict, lines=lines, attempts=run.attempts)


def _line(result: PrecheckResult, document: Document) -> PanelLine:
    m = result.measured or {}
    values: list[tuple[str, str]] = []
    matches: list[dict] = []
    more = 0
    if result.check == "quality" and "sharpness" in m:
        values = [
            (_l("Pixels"), f"{m['width']} × {m['height']}"),
            (_l("Sharpness"), f"{m['sharpness']:.0f}"),
            (_l("Glare"), f"{m['glare'] * 100:.1f} %"),
            (_l("Brightness"), f"{m['brightness']:.0f} / 255"),
        ]
    elif result.check == "mrz" and result.scrubbed_at is not None:
        values = [(_l("Details"), _l("Removed with the documents"))]
    elif result.check == "mrz" and m:
        values = [
            (_l("Surname"), m.get("surname", "")),
            (_l("Given names"), m.get("given_names", "")),
            (_l("Nationality"), m.get("nationality", "")),
            (_l("Date of birth"), m.get("birth_date", "")),
            (_l("Date of expiry"), m.get("expiry_date", "")),
        ]
        if m.get("failed_check_digits"):
            values.append((_l("Failed checks"), ", ".join(m["failed_check_digits"])))
    elif result.check == "face":
        values = [(_l("Faces found"), str(m.get("faces", 0)))]
    elif result.check == "reuse":
        # Results stored before the list was kept short may name a case more than once, unsorted, unlimited.
        closest: dict[int, int] = {}
        for item in m.get("matches", []):
            closest[item["case_id"]] = min(item["distance"], closest.get(item["case_id"], item["distance"]))
        ranked = sorted(closest.items(), key=lambda pair: (pair[1], pair[0]))
        more = m.get("more_cases", 0) + max(0, len(ranked) - SHOWN_MATCHES)
        ranked = ranked[:SHOWN_MATCHES]
        ids = [case_id_ for case_id_, _ in ranked]
        cases = {c.id: c for c in db.session.execute(select(Case).where(Case.id.in_(ids))).scalars()} if ids else {}
        for case_id_, distance in ranked:
            item = {"case_id": case_id_, "distance": distance}
            other = cases.get(item["case_id"])
            if other is not None:
                matches.append(
                    {
                        "reference": other.reference,
                        "status": other.status,
                        "case_id": other.id,
                        "status_label": STATUS_LABELS.get(other.status, other.status),
                        "distance": item["distance"],
                    }
                )
        values = [(_l("Closest distance"), f"{matches[0]['distance']} / {m.get('hash_bits', 256)}")] if matches else []
    return PanelLine(
        check=result.check,
        label=CHECK_LABELS[result.check],
        side=SIDE_LABELS.get(document.side, document.side),
        verdict=result.verdict,
        verdict_label=VERDICT_LABELS[result.verdict],
        values=values,
        reasons=[REASON_LABELS.get(code, code) for code in result.reasons or []],
        why=WHY[result.check],
        matches=matches,
        more_matches=more,
    )


def _newest_round(case_id):
    """The newest document round of ``case_id`` (a column or a correlated
    reference), read from the (case_id, round) index of documents."""
    documents = aliased(Document)
    return select(func.max(documents.round)).where(documents.case_id == case_id).scalar_subquery()


def _current_results(*conditions):
    """Results on documents of their case's newest round: an earlier round's
    results describe documents the seller has since replaced, and the panel no
    longer shows them."""
    return (
        select(PrecheckResult.case_id)
        .join(Document, Document.id == PrecheckResult.document_id)
        .where(*conditions, Document.round == _newest_round(PrecheckResult.case_id))
    )


def current_reason_codes(case_id: int) -> set[str]:
    """Every reason code the checks gave on ``case_id``'s newest round of documents."""
    rows = db.session.execute(
        _current_results(PrecheckResult.case_id == case_id).with_only_columns(PrecheckResult.reasons)
    ).scalars()
    return {code for reasons in rows for code in (reasons or [])}


def flagged_filter():
    """For the queue's "pre-check flags" filter: ``select(Case).where(flagged_filter())``.
    A case is flagged when a check on its newest round of documents said look
    closely or fail, or the checks of that round could not run."""
    result_flag = _current_results(
        PrecheckResult.case_id == Case.id, PrecheckResult.verdict.in_(("review", "fail"))
    ).exists()
    run_failed = exists().where(
        PrecheckRun.case_id == Case.id,
        PrecheckRun.status == "failed",
        PrecheckRun.round == _newest_round(PrecheckRun.case_id),
    )
    return or_(result_flag, run_failed)


def failed_filter():
    """Cases with at least one failed check on their newest round of documents (the queue's badge)."""
    return _current_results(PrecheckResult.case_id == Case.id, PrecheckResult.verdict == "fail").exists()


def verdicts_for(case_ids: list[int]) -> dict[int, str]:
    """The worst verdict per case over its newest round of documents, in one query (for queue rows)."""
    if not case_ids:
        return {}
    query = (
        _current_results(PrecheckResult.case_id.in_(case_ids))
        .add_columns(func.max(_rank_expression()))
        .group_by(PrecheckResult.case_id)
    )
    names = {value: key for key, value in VERDICT_ORDER.items()}
    return {case_id: names[int(value)] for case_id, value in db.session.execute(query).all()}


def _rank_expression():
    return sql_case({verdict: rank for verdict, rank in VERDICT_ORDER.items()}, value=PrecheckResult.verdict, else_=0)


def checklist_suggestions(case: Case) -> dict[str, bool]:
    """Pre-marks for the reviewer's checklist (keys of review's CHECKLIST): True
    where the checks found nothing wrong, False where they did; absent where
    they cannot say. A suggestion only: the reviewer still ticks."""
    run = latest_run(case.id)
    if run is None or run.status != "done":
        return {}
    sides = {d.id: d.side for d in case.documents if d.round == run.round}
    results = _results_for(case.id, list(sides))
    codes = {(r.check, code) for r in results for code in (r.reasons or [])}
    suggestions: dict[str, bool] = {}
    quality_verdicts = [r.verdict for r in results if r.check == "quality" and sides[r.document_id] != "selfie"]
    if quality_verdicts:
        suggestions["photo_clear"] = all(verdict == "pass" for verdict in quality_verdicts)
    if any(r.check == "mrz" and r.measured for r in results) and ("mrz", "mrz_garbled") not in codes:
        suggestions["type_matches"] = ("mrz", "not_passport") not in codes
        suggestions["not_expired"] = ("mrz", "expired") not in codes
        suggestions["name_matches"] = ("mrz", "name_mismatch") not in codes
    # A face found says nothing about whose face it is: only its absence is suggested.
    if any(r.check == "face" and sides[r.document_id] == "selfie" and r.verdict != "pass" for r in results):
        suggestions["selfie_matches"] = False
    return suggestions
