"""The reviewer reads every security event of a seller as words, never as a code."""

from flask_babel import force_locale

from recovery_app.auth.events import KINDS
from recovery_app.review import casefile


def test_every_security_event_kind_has_a_label_in_both_languages(app):
    kinds = set(KINDS) | {"recovery_withdrawn"}  # written by the recovery intake itself
    assert kinds <= set(casefile.EVENT_LABELS), sorted(kinds - set(casefile.EVENT_LABELS))
    with app.test_request_context():
        for kind in kinds:
            with force_locale("en"):
                english = str(casefile.EVENT_LABELS[kind])
            with force_locale("ja"):
                japanese = str(casefile.EVENT_LABELS[kind])
            assert english != kind and japanese != english, kind
