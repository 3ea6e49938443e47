"""A review form sent back for the reviewer to correct: an approval with the
checklist incomplete comes back with the checklist marked and the ticked boxes
kept, and no refused form writes anything (it is not a new viewing either)."""

import re

import pytest
from sqlalchemy import func, select

from recovery_app.extensions import db
from recovery_app.models import AuditEvent
from recovery_app.review import claims, decisions, services
from tests.factories import ALL_CHECKS
from tests.helpers import statements_of

WRITES = ("INSERT", "UPDATE", "DELETE")
MISSING = ["name_matches", "selfie_matches"]
TICKED = [item for item in ALL_CHECKS if item not in MISSING]


def _held(review, reviewer, now):
    case = review.case()
    claims.claim(case.reference, reviewer, now=now)
    db.session.commit()
    return case


def _checklist(html: str) -> str:
    return re.search(r'<fieldset class="checklist.*?</fieldset>', html, flags=re.DOTALL).group(0)


def _box(checklist: str, key: str) -> str:
    return re.search(rf'<input type="checkbox" name="checklist" value="{key}"[^>]*>', checklist).group(0)


def _viewings(case) -> int:
    return db.session.execute(
        select(func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.action == "case.viewed", AuditEvent.subject_id == case.reference)
    ).scalar_one()


def _writes(call) -> list[str]:
    return [statement for statement in statements_of(call) if statement.lstrip().upper().startswith(WRITES)]


def test_incomplete_checklist_comes_back_marked_with_the_ticked_boxes_kept(make, review, auth, now):
    reviewer = make.user("reviewer", locale="en")
    case = _held(review, reviewer, now)
    response = auth.client_for(reviewer).post(f"/review/case/{case.reference}/approve", data={"checklist": TICKED})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    checklist = _checklist(page)
    assert checklist.startswith('<fieldset class="checklist has-error" aria-describedby="checklist-error">')
    message = "Tick every item of the checklist before approving."
    assert f'<p class="field-error" id="checklist-error" role="alert">{message}</p>' in checklist
    assert page.count(message) == 1  # beside the checklist, not in a banner far from it
    for key in TICKED:
        box = _box(checklist, key)
        assert " checked" in box and "aria-invalid" not in box, key
        assert f'data-unticked="{key}"' not in checklist
    for key in MISSING:
        box = _box(checklist, key)
        assert " checked" not in box, key
        assert 'aria-invalid="true" aria-describedby="checklist-error"' in box, key
        assert f'<span class="unticked-tag" data-unticked="{key}">Not ticked yet</span>' in checklist
    assert 'id="approve-form"' in page  # the form is there to finish


def test_incomplete_checklist_is_marked_in_japanese(make, review, auth, now):
    reviewer = make.user("reviewer", locale="ja")
    case = _held(review, reviewer, now)
    response = auth.client_for(reviewer).post(f"/review/case/{case.reference}/approve", data={"checklist": TICKED})
    checklist = _checklist(response.get_data(as_text=True))
    assert "承認する前に、チェックリストのすべての項目にチェックを入れてください。" in checklist
    assert checklist.count(">未チェック</span>") == len(MISSING)


def test_a_complete_checklist_page_marks_nothing(make, review, auth, now):
    reviewer = make.user("reviewer", locale="en")
    case = _held(review, reviewer, now)
    checklist = _checklist(auth.client_for(reviewer).get(f"/review/case/{case.reference}").get_data(as_text=True))
    assert "has-error" not in checklist and "aria-invalid" not in checklist and "unticked" not in checklist


def test_refused_approval_writes_nothing_and_leaves_the_case_as_it_was(make, review, auth, now):
    reviewer = make.user("reviewer", locale="en")
    case = _held(review, reviewer, now)
    client = auth.client_for(reviewer)
    client.get(f"/review/case/{case.reference}")
    db.session.expire_all()
    before = (case.status, case.claimed_by_id, case.last_activity_at, case.risk_assessed_at)
    trail = db.session.execute(select(func.max(AuditEvent.seq))).scalar_one()
    written = _writes(
        lambda: (
            client.post(f"/review/case/{case.reference}/approve", data={"checklist": TICKED}).status_code == 400
            or pytest.fail("the approval was not sent back")
        )
    )
    assert written == []
    db.session.expire_all()
    assert (case.status, case.claimed_by_id, case.last_activity_at, case.risk_assessed_at) == before
    assert db.session.execute(select(AuditEvent.action).where(AuditEvent.seq > trail)).scalars().all() == []


def test_the_service_refuses_an_incomplete_checklist_on_the_checklist_before_writing(make, review, now, english):
    reviewer = make.user("reviewer")
    case = _held(review, reviewer, now)
    refused = []

    def approve():
        with pytest.raises(services.ReviewError) as error:
            decisions.approve(case.reference, reviewer, TICKED, now=now)
        refused.append(error.value)

    assert _writes(approve) == []
    assert refused[0].field == "checklist"
    assert str(refused[0]) == "Tick every item of the checklist before approving."


def test_someone_who_may_not_decide_is_told_so_rather_than_to_tick_more(make, review, auth, now):
    holder, other = make.user("reviewer"), make.user("reviewer", locale="en")
    case = _held(review, holder, now)
    response = auth.client_for(other).post(
        f"/review/case/{case.reference}/approve", data={"checklist": TICKED}, follow_redirects=True
    )
    page = response.get_data(as_text=True)
    assert "only they or a manager can decide it" in page and "Tick every item" not in page
    refusals = db.session.execute(
        select(AuditEvent.details).where(AuditEvent.action == "case.refused", AuditEvent.subject_id == case.reference)
    ).scalars()
    assert [details["action"] for details in refusals] == ["approve"]  # still audited (ASVS 16.3.2)


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("approve", {"checklist": TICKED}),
        ("approve", {"checklist": [*ALL_CHECKS, "made_up"]}),
        ("reject", {"reason": "", "message": "Nope.", "confirm": "y"}),
        ("reject", {"reason": "expired", "message": "Unconfirmed."}),
        ("request-documents", {"message": ""}),
        ("notes", {"body": "   "}),
    ],
)
def test_a_refused_form_is_not_a_new_viewing_and_writes_nothing(make, review, auth, now, path, data):
    reviewer = make.user("reviewer", locale="en")
    case = _held(review, reviewer, now)
    client = auth.client_for(reviewer)
    client.get(f"/review/case/{case.reference}")
    viewed = _viewings(case)
    assert viewed == 1
    written = _writes(
        lambda: (
            client.post(f"/review/case/{case.reference}/{path}", data=data).status_code == 400
            or pytest.fail(f"{path} was not sent back")
        )
    )
    assert written == [], path
    assert _viewings(case) == viewed
    client.get(f"/review/case/{case.reference}")
    assert _viewings(case) == viewed + 1  # opening the case file again is a viewing


def test_a_refused_reassignment_is_not_a_new_viewing_either(make, review, auth, now):
    reviewer, manager = make.user("reviewer"), make.user("manager", locale="en")
    case = _held(review, reviewer, now)
    client = auth.client_for(manager)
    client.get(f"/review/case/{case.reference}")
    viewed = _viewings(case)
    written = _writes(
        lambda: (
            client.post(f"/review/case/{case.reference}/reassign", data={"reviewer": "0"}).status_code == 400
            or pytest.fail("the reassignment was not sent back")
        )
    )
    assert written == []
    assert _viewings(case) == viewed


def test_a_refused_form_that_is_the_first_sight_of_the_case_is_audited_as_an_opening(make, review, auth, now):
    """A form posted straight to a case the reviewer has not opened in this
    session shows them the whole file: that is a viewing, and it leaves a trace."""
    holder, other = make.user("reviewer"), make.user("reviewer", locale="en")
    case = _held(review, holder, now)
    client = auth.client_for(other)
    response = client.post(f"/review/case/{case.reference}/notes", data={"body": "   "})
    assert response.status_code == 400 and case.user.email in response.get_data(as_text=True)
    viewing = db.session.execute(
        select(AuditEvent).where(AuditEvent.action == "case.viewed", AuditEvent.subject_id == case.reference)
    ).scalar_one()
    assert viewing.actor_id == other.id and viewing.details == {"via": "form_sent_back"}
    assert client.post(f"/review/case/{case.reference}/notes", data={"body": "   "}).status_code == 400
    assert _viewings(case) == 1  # the same session, the file already opened: no second trace
