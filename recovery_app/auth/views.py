"""Routes of the auth blueprint: parse the form, call the service, render or redirect.

Two browser states (see sessions.py): after the password step only the
challenge, the other ways to get a code and forced enrollment are reachable
here; everything under /settings needs a full session, and every change there
a fresh code (ASVS 7.5.1).
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import timedelta

import segno
from flask import Blueprint, current_app, flash, jsonify, redirect, render_template, request, session, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user, login_required

from .. import web
from ..account.services import save_language
from ..database import begin_write, reads_first, writes
from ..i18n import chosen_language
from ..models.base import utcnow
from . import passkeys, services, twofactor
from .forms import (
    ActionForm,
    BackupChoiceForm,
    ChallengeForm,
    CodeForm,
    PasskeyAddForm,
    PasskeyForm,
    PhoneForm,
    RecoveryCodeForm,
    SignInForm,
)
from .services import AuthError, Challenge
from .sessions import (
    begin_session,
    current_session_row,
    fresh_code_required,
    mark_fresh_code,
    mark_password_passed,
    pending_user,
    pop_signed_out_reason,
    renew_session_token,
)
from .sessions import sign_out as end_this_session

bp = Blueprint("auth", __name__)

CHALLENGE_KEY = "challenge"
CONFIRM_KEY = "confirm_challenge"
NEXT_KEY = "next"
SETUP_METHOD_KEY = "setup_method"
SETUP_CHALLENGE_KEY = "setup_challenge"
SKIP_BACKUP_KEY = "skip_backup"
PASSKEY_KEY = "passkey_challenge_{}"  # the id of this browser's live passkey challenge, per purpose


@contextmanager
def _language_kept(save_for=None):
    """A new session at each sign-in step keeps only the language the visitor
    switched to. Once both steps are passed (``save_for``), the language the
    person chose (switched to, or else asked for by the browser) becomes the
    one that user's e-mails and calls use, and so the one their pages follow."""
    chosen = session.get("lang")
    in_use = chosen_language()
    yield
    if chosen:
        session["lang"] = chosen
    if save_for is not None and in_use:
        save_language(save_for, in_use)


def _language() -> str:
    """The language of this page, which codes sent from it are worded in."""
    return str(get_locale())


@bp.app_template_filter("masked_phone")
def masked_phone(e164):
    return services.masked_phone(e164)


# --- password step ---------------------------------------------------------------


@bp.route("/sign-in", methods=["GET", "POST"])
@reads_first  # the password hash is checked before the unit takes the write lock
@web.configured_limit("RECOVERY_LIMIT_SIGN_IN", methods=["POST"])
def sign_in():
    if current_user.is_authenticated:
        return redirect(web.safe_next(request.args.get("next")) or url_for("pages.home"))
    reason = pop_signed_out_reason()
    if request.method == "GET" and pending_user(utcnow()) is not None:
        return redirect(url_for("auth.challenge"))
    form = SignInForm(next=request.args.get("next", ""))
    error = None
    if form.validate_on_submit():
        now = utcnow()
        try:
            user = services.authenticate(
                form.email.data,
                form.password.data,
                now,
                known_browser=request.cookies.get(current_app.config["RECOVERY_KNOWN_BROWSER_COOKIE"]),
                **web.origin(),
            )
        except AuthError as exc:
            error = exc
        else:
            with _language_kept():
                mark_password_passed(user, now, **web.origin())
            session[NEXT_KEY] = web.safe_next(form.next.data)
            return _after_password(user, now)
    return render_template("auth/sign_in.html", form=form, error=error, reason=reason)


def _after_password(user, now):
    if services.must_enroll(user):
        return redirect(url_for("auth.enroll"))
    if services.trusted_device(user, request.cookies.get(current_app.config["RECOVERY_TRUSTED_DEVICE_COOKIE"]), now):
        return _finish_sign_in(user, now, via="trusted_device")
    unasked = services.sends_code_unasked(user)
    challenge, problem = services.start_challenge(user, now, send=unasked, locale=_language())
    session[CHALLENGE_KEY] = challenge.as_dict()
    if problem is not None:
        flash(str(problem.message), "error")
    if not unasked:  # an open recovery case: show it first, with a way to enter a code instead
        return redirect(url_for("recovery.case_status"))
    return redirect(url_for("auth.challenge"))


def _finish_sign_in(user, now, *, via: str, remember: bool = False):
    token = services.complete_sign_in(user, now, via=via, remember_device=remember, **web.origin())
    target = web.safe_next(session.get(NEXT_KEY)) or url_for("pages.home")
    with _language_kept(save_for=user):
        begin_session(user, now, **web.origin())  # a new session: nothing from before the sign-in is kept (ASVS 7.2.4)
    if via == "recovery_code":
        target = _codes_left_first(target, now)
    response = redirect(target)
    config = current_app.config
    response.set_cookie(
        config["RECOVERY_KNOWN_BROWSER_COOKIE"],
        services.known_browser_token(user),
        path="/",
        httponly=True,
        samesite="Lax",
        secure=config["RECOVERY_COOKIE_SECURE"],
        max_age=config["RECOVERY_KNOWN_BROWSER_DAYS"] * 86400,
    )
    if token:
        response.set_cookie(
            config["RECOVERY_TRUSTED_DEVICE_COOKIE"],
            token,
            path="/",
            httponly=True,
            samesite="Lax",
            secure=config["RECOVERY_COOKIE_SECURE"],
            max_age=config["RECOVERY_TRUSTED_DEVICE_DAYS"] * 86400,
        )
    return response


def _codes_left_first(target: str, now) -> str:
    """After a sign-in with a recovery code, the count of codes left comes
    first, with the offer of new ones. The code just passed counts as the
    fresh code that creating new ones asks for (ASVS 7.5.1)."""
    mark_fresh_code(now)
    return url_for("auth.codes_left", next=target)


@bp.post("/sign-out")
def sign_out():
    now = utcnow()
    user = current_user._get_current_object() if current_user.is_authenticated else pending_user(now)
    services.record_sign_out(user, now, **web.origin())
    end_this_session(now)
    flash(_("You are signed out."), "success")
    return redirect(url_for("auth.sign_in"))


def _password_step_expired():
    flash(_("Please sign in with your e-mail address and password first."), "warning")
    return redirect(url_for("auth.sign_in"))


# --- the challenge ------------------------------------------------------------------


@bp.route("/sign-in/code", methods=["GET", "POST"])
@web.configured_limit("RECOVERY_LIMIT_CODE_CHECK", methods=["POST"])
def challenge():
    now = utcnow()
    user = pending_user(now)
    if user is None:
        return _password_step_expired()
    if services.must_enroll(user):
        return redirect(url_for("auth.enroll"))
    current = Challenge.from_dict(session.get(CHALLENGE_KEY))
    if current is None or (current.passkey and request.method == "GET" and not passkeys.passkeys_of(user)):
        # (a passkey removed meanwhile: the next way)
        # Starting one may send a code, so the unit writes from here; the page
        # usually finds the challenge started and only reads.
        begin_write()
        user = pending_user(now)  # read again under the write lock: still this browser's step?
        if user is None:
            return _password_step_expired()
        current, problem = services.start_challenge(
            user, now, send=services.sends_code_unasked(user), locale=_language()
        )
        session[CHALLENGE_KEY] = current.as_dict()
    form = PasskeyForm() if current.passkey else RecoveryCodeForm() if current.recovery else ChallengeForm()
    error = None
    if form.validate_on_submit():
        try:
            if current.passkey:
                via = services.verify_passkey(
                    user,
                    "sign_in",
                    session.pop(PASSKEY_KEY.format("sign_in"), None),
                    form.credential.data,
                    now,
                    **web.origin(),
                )
            else:
                via = services.verify_code(user, current, form.code.data, now, **web.origin())
        except AuthError as exc:
            error = exc
        else:
            return _finish_sign_in(user, now, via=via, remember=form.remember_device.data)
    method = services.method_of(user, current.method_id)
    return render_template(
        "auth/challenge.html",
        form=form,
        error=error,
        user=user,
        challenge=current,
        method=method,
        locked_until=_locked_until(user, now),
        trouble=services.code_delivery_trouble(method, now),
        case=recovery_case_to_show(user, now),
    )


def recovery_case_to_show(user, now):
    """The seller's open recovery case, or one decided recently (they come here
    from the decision e-mail and cannot pass the code step)."""
    from ..recovery.services import latest_case

    case = latest_case(user)
    recent = timedelta(days=current_app.config["RECOVERY_RETENTION_DAYS"])
    if case is None or (not case.is_open and (case.closed_at is None or now - case.closed_at > recent)):
        return None
    return case


def _locked_until(user, now):
    """When the 10-wrong-codes pause ends, while it lasts (the page says so)."""
    if user.code_locked_until is not None and now < user.code_locked_until:
        return user.code_locked_until
    return None


@bp.get("/sign-in/other-ways")
def backups():
    now = utcnow()
    user = pending_user(now)
    if user is None:
        return _password_step_expired()
    current = Challenge.from_dict(session.get(CHALLENGE_KEY))
    method = services.method_of(user, current.method_id) if current else None
    return render_template(
        "auth/backups.html",
        form=BackupChoiceForm(),
        methods=services.usable_methods(user),
        has_passkey=bool(passkeys.passkeys_of(user)),
        recovery_codes_left=twofactor.remaining_recovery_codes(user),
        current=current,
        method=method,
        trouble=services.code_delivery_trouble(method, now),
    )


@bp.post("/sign-in/other-ways")
@web.configured_limit("RECOVERY_LIMIT_CODE_SEND", methods=["POST"])
def use_backup():
    now = utcnow()
    user = pending_user(now)
    if user is None:
        return _password_step_expired()
    form = BackupChoiceForm()
    if not form.validate_on_submit():
        return redirect(url_for("auth.backups"))
    recovery = form.method_id.data == "recovery"
    method_id = web.row_id(form.method_id.data)
    if method_id is None and not recovery and form.method_id.data != "passkey":
        return redirect(url_for("auth.backups"))
    try:
        challenge, problem = services.start_challenge(
            user,
            now,
            current=Challenge.from_dict(session.get(CHALLENGE_KEY)),
            method_id=method_id,
            channel=form.channel.data or None,
            recovery=recovery,
            passkey=form.method_id.data == "passkey",
            locale=_language(),
        )
    except AuthError as exc:
        flash(str(exc.message), "error")
        return redirect(url_for("auth.backups"))
    session[CHALLENGE_KEY] = challenge.as_dict()
    if problem is not None:
        flash(str(problem.message), "error")
    return redirect(url_for("auth.challenge"))


def _passkey_options(user, purpose: str):
    """Start a passkey ceremony for ``user``: the options as JSON for static/js/passkeys.js;
    the challenge stays server-side and this browser keeps only its id."""
    try:
        challenge_id, options = services.passkey_options(
            user, purpose, utcnow(), replacing=session.get(PASSKEY_KEY.format(purpose))
        )
    except AuthError as exc:
        return jsonify(error=str(exc.message)), 400
    session[PASSKEY_KEY.format(purpose)] = challenge_id
    return current_app.response_class(options, mimetype="application/json")


def _json_refusal(message: str):
    return jsonify(error=message), 400


@bp.post("/sign-in/passkey/options")
@web.configured_limit("RECOVERY_LIMIT_CODE_CHECK")
def passkey_sign_in_options():
    user = pending_user(utcnow())
    if user is None:
        return _json_refusal(_("Please sign in with your e-mail address and password first."))
    return _passkey_options(user, "sign_in")


# --- forced enrollment ---------------------------------------------------------------


def _enrolling_user(now):
    user = pending_user(now)
    if user is None or not user.must_enroll_2sv:
        return None
    return user


@bp.get("/sign-in/setup")
def enroll():
    now = utcnow()
    user = _enrolling_user(now)
    if user is None:
        return redirect(url_for("auth.challenge")) if pending_user(now) else _password_step_expired()
    step = services.enrollment_step(user)
    if step == "backup" and session.get(SKIP_BACKUP_KEY):
        step = "codes"
    return render_template(
        "auth/enroll.html",
        step=step,
        form=ActionForm(),
        methods=services.usable_methods(user),
        passkeys=passkeys.passkeys_of(user),
        passkeys_available=passkeys.available(),
        enrolling=True,
        approved_case=_approved_case(user, now),
    )


def _approved_case(user, now):
    """The recent approval that sent this user to set 2SV up again, if that is why."""
    case = recovery_case_to_show(user, now)
    return case if case is not None and case.status == "approved" else None


@bp.route("/sign-in/setup/app", methods=["GET", "POST"])
@writes  # opening the page creates the pending authenticator
def enroll_app():
    user = _enrolling_user(utcnow())
    if user is None:
        return _password_step_expired()
    return _app_method(user, enrolling=True)


@bp.route("/sign-in/setup/phone", methods=["GET", "POST"])
@web.configured_limit("RECOVERY_LIMIT_CODE_SEND", methods=["POST"])
def enroll_phone():
    user = _enrolling_user(utcnow())
    if user is None:
        return _password_step_expired()
    return _phone_method(user, enrolling=True)


@bp.route("/sign-in/setup/phone/confirm", methods=["GET", "POST"])
@web.configured_limit("RECOVERY_LIMIT_CODE_CHECK", methods=["POST"])
def enroll_phone_confirm():
    user = _enrolling_user(utcnow())
    if user is None:
        return _password_step_expired()
    return _phone_confirm(user, enrolling=True)


@bp.route("/sign-in/setup/passkey", methods=["GET", "POST"])
@web.configured_limit("RECOVERY_LIMIT_CODE_CHECK", methods=["POST"])
def enroll_passkey():
    user = _enrolling_user(utcnow())
    if user is None:
        return _password_step_expired()
    return _passkey_method(user, enrolling=True)


@bp.post("/sign-in/setup/passkey/options")
@web.configured_limit("RECOVERY_LIMIT_CODE_CHECK")
def enroll_passkey_options():
    user = _enrolling_user(utcnow())
    if user is None:
        return _json_refusal(_("Please sign in with your e-mail address and password first."))
    return _passkey_options(user, "register")


@bp.post("/sign-in/setup/skip-backup")
def enroll_skip_backup():
    if _enrolling_user(utcnow()) is None:
        return _password_step_expired()
    if ActionForm().validate_on_submit():
        session[SKIP_BACKUP_KEY] = True
    return redirect(url_for("auth.enroll"))


@bp.post("/sign-in/setup/recovery-codes")
@reads_first  # ten argon2 hashes before the write lock
def enroll_codes():
    now = utcnow()
    user = _enrolling_user(now)
    if user is None:
        return _password_step_expired()
    return _recovery_codes(user, now, enrolling=True)


@bp.post("/sign-in/setup/finish")
def enroll_finish():
    now = utcnow()
    user = _enrolling_user(now)
    if user is None:
        return _password_step_expired()
    if not ActionForm().validate_on_submit():
        return redirect(url_for("auth.enroll"))
    try:
        services.finish_enrollment(user, now, **web.origin())
    except AuthError as exc:
        flash(str(exc.message), "error")
        return redirect(url_for("auth.enroll"))
    flash(_("2-step verification is on. From now on you will be asked for a code when you sign in."), "success")
    return _finish_sign_in(user, now, via="enrollment")


# --- adding a method: shared by enrollment and settings ------------------------------------


def _done_url(enrolling: bool) -> str:
    return url_for("auth.enroll") if enrolling else url_for("auth.settings")


def _method_changed_url(enrolling: bool) -> str:
    """Where a finished method change goes: outside enrollment, to the sessions
    page with its offer to end every other session (ASVS 7.4.3)."""
    if enrolling or "account.sessions" not in current_app.view_functions:
        return _done_url(enrolling)
    return url_for("account.sessions", after="method")


def _app_method(user, *, enrolling: bool):
    now = utcnow()
    method = services.pending_method(user, session.get(SETUP_METHOD_KEY), "totp")
    if method is None:
        method, _seed = services.start_app_method(user, now)
        session[SETUP_METHOD_KEY] = method.id
    form = CodeForm()
    error = None
    if form.validate_on_submit():
        try:
            services.confirm_app_method(user, method.id, form.code.data, now, **web.origin())
        except AuthError as exc:
            error = exc
        else:
            session.pop(SETUP_METHOD_KEY, None)
            flash(_("Your authenticator app is set up."), "success")
            return redirect(_method_changed_url(enrolling))
    seed = twofactor.totp_seed(method)
    uri = twofactor.provisioning_uri(user, seed)
    qr = segno.make(uri, error="m").svg_inline(scale=4, omitsize=True, light="#fff")
    return render_template(
        "auth/method_app.html",
        form=form,
        error=error,
        qr=qr,
        seed=seed,
        uri=uri,
        enrolling=enrolling,
        action=request.path,
    )


def _phone_method(user, *, enrolling: bool):
    form = PhoneForm()
    error = None
    if form.validate_on_submit():
        now = utcnow()
        try:
            method, challenge_id = services.start_phone_method(
                user, form.number.data, form.channel.data, now, locale=_language()
            )
        except AuthError as exc:
            error = exc
        else:
            session[SETUP_METHOD_KEY] = method.id
            session[SETUP_CHALLENGE_KEY] = challenge_id
            return redirect(url_for("auth.enroll_phone_confirm" if enrolling else "auth.add_phone_confirm"))
    return render_template("auth/method_phone.html", form=form, error=error, enrolling=enrolling, action=request.path)


def _phone_confirm(user, *, enrolling: bool):
    now = utcnow()
    method = services.pending_method(user, session.get(SETUP_METHOD_KEY))
    challenge_id = session.get(SETUP_CHALLENGE_KEY)
    if method is None or method.kind not in ("sms", "voice") or not isinstance(challenge_id, str):
        flash(_("This set-up has expired. Please start again."), "warning")
        return redirect(_done_url(enrolling))
    form = CodeForm()
    error = None
    if request.method == "POST" and request.form.get("resend") and ActionForm().validate_on_submit():
        try:
            services.resend_phone_code(user, method.id, challenge_id, now, locale=_language())
        except AuthError as exc:
            error = exc
        else:
            flash(_("We sent a new code."), "success")
            return redirect(request.path)
    elif form.validate_on_submit():
        try:
            services.confirm_phone_method(user, method.id, challenge_id, form.code.data, now, **web.origin())
        except AuthError as exc:
            error = exc
        else:
            session.pop(SETUP_METHOD_KEY, None)
            session.pop(SETUP_CHALLENGE_KEY, None)
            flash(_("Your phone is set up."), "success")
            return redirect(_method_changed_url(enrolling))
    return render_template(
        "auth/method_phone_confirm.html",
        form=form,
        resend_form=ActionForm(),
        error=error,
        method=method,
        enrolling=enrolling,
        action=request.path,
    )


def _passkey_method(user, *, enrolling: bool):
    form = PasskeyAddForm()
    error = None
    if request.method == "GET":
        form.name.data = services.default_passkey_name(web.client_browser())
    elif form.validate_on_submit():
        try:
            services.add_passkey(
                user,
                session.pop(PASSKEY_KEY.format("register"), None),
                form.credential.data,
                form.name.data,
                utcnow(),
                **web.origin(),
            )
        except AuthError as exc:
            error = exc
        else:
            flash(_("Your passkey is set up."), "success")
            return redirect(_method_changed_url(enrolling))
    options_url = url_for("auth.enroll_passkey_options" if enrolling else "auth.add_passkey_options")
    return render_template(
        "auth/method_passkey.html",
        form=form,
        error=error,
        enrolling=enrolling,
        action=request.path,
        options_url=options_url,
        available=passkeys.available(),
    )


def _recovery_codes(user, now, *, enrolling: bool):
    if not ActionForm().validate_on_submit():
        return redirect(_done_url(enrolling))
    try:
        codes = services.new_recovery_codes(user, now, **web.origin())
    except AuthError as exc:
        flash(str(exc.message), "error")
        return redirect(_done_url(enrolling))
    text = "\n".join([_("Recovery codes for %(email)s", email=user.email), "", *codes, ""])
    return render_template("auth/recovery_codes.html", codes=codes, text=text, form=ActionForm(), enrolling=enrolling)


# --- security settings -------------------------------------------------------------------


@bp.get("/settings/security")
@login_required
def settings():
    now = utcnow()
    user = current_user
    return render_template(
        "auth/settings.html",
        form=ActionForm(),
        methods=services.usable_methods(user),
        passkeys=passkeys.passkeys_of(user),
        passkeys_available=passkeys.available(),
        recovery_codes_left=twofactor.remaining_recovery_codes(user),
        devices=services.trusted_devices(user, now),
        describe_browser=web.describe_browser,
    )


@bp.get("/settings/security/codes-left")
@login_required
def codes_left():
    left = twofactor.remaining_recovery_codes(current_user)
    return render_template(
        "auth/codes_left.html",
        form=ActionForm(),
        left=left,
        few=left <= services.FEW_RECOVERY_CODES,
        next=web.safe_next(request.args.get("next")) or url_for("pages.home"),
    )


@bp.route("/settings/confirm", methods=["GET", "POST"])
@writes  # opening the page starts the challenge
@login_required
@web.configured_limit("RECOVERY_LIMIT_CODE_CHECK", methods=["POST"])
def confirm():
    """Ask for a fresh code before a change to sign-in settings (ASVS 7.5.1)."""
    now = utcnow()
    user = current_user._get_current_object()
    target = web.safe_next(request.args.get("next")) or url_for("auth.settings")
    current = Challenge.from_dict(session.get(CONFIRM_KEY))
    if current is None or request.args.get("method") or request.args.get("recovery") or request.args.get("passkey"):
        wanted = request.args.get("method", "")
        try:
            current, problem = services.start_challenge(
                user,
                now,
                current=current,
                method_id=web.row_id(wanted),
                recovery=bool(request.args.get("recovery")),
                passkey=bool(request.args.get("passkey")),
                locale=_language(),
            )
        except AuthError:
            current, problem = services.start_challenge(user, now, locale=_language())
        session[CONFIRM_KEY] = current.as_dict()
        if problem is not None:
            flash(str(problem.message), "error")
    form = PasskeyForm() if current.passkey else RecoveryCodeForm() if current.recovery else CodeForm()
    error = None
    if form.validate_on_submit():
        try:
            if current.passkey:
                services.verify_passkey(
                    user,
                    "fresh",
                    session.pop(PASSKEY_KEY.format("fresh"), None),
                    form.credential.data,
                    now,
                    **web.origin(),
                )
            else:
                services.verify_code(user, current, form.code.data, now, **web.origin())
        except AuthError as exc:
            error = exc
        else:
            mark_fresh_code(now)
            row = current_session_row()
            if row is not None:
                renew_session_token(row)  # a new session token at re-authentication (ASVS 7.2.4)
            session.pop(CONFIRM_KEY, None)
            return redirect(target)
    return render_template(
        "auth/confirm.html",
        form=form,
        error=error,
        challenge=current,
        method=services.method_of(user, current.method_id),
        methods=services.usable_methods(user),
        has_passkey=bool(passkeys.passkeys_of(user)),
        recovery_codes_left=twofactor.remaining_recovery_codes(user),
        locked_until=_locked_until(user, now),
        target=target,
    )


@bp.post("/settings/confirm/passkey/options")
@login_required
@web.configured_limit("RECOVERY_LIMIT_CODE_CHECK")
def confirm_passkey_options():
    return _passkey_options(current_user._get_current_object(), "fresh")


@bp.route("/settings/security/passkey", methods=["GET", "POST"])
@login_required
@fresh_code_required
@web.configured_limit("RECOVERY_LIMIT_CODE_CHECK", methods=["POST"])
def add_passkey():
    return _passkey_method(current_user._get_current_object(), enrolling=False)


@bp.post("/settings/security/passkey/options")
@login_required
@fresh_code_required
@web.configured_limit("RECOVERY_LIMIT_CODE_CHECK")
def add_passkey_options():
    return _passkey_options(current_user._get_current_object(), "register")


@bp.post("/settings/security/passkeys/<int:passkey_id>/remove")
@login_required
@fresh_code_required
def remove_passkey(passkey_id: int):
    return _settings_change(
        services.remove_passkey, passkey_id, done=_("The passkey was removed."), then=_method_changed_url(False)
    )


@bp.route("/settings/security/app", methods=["GET", "POST"])
@writes  # opening the page creates the pending authenticator
@login_required
@fresh_code_required
def add_app():
    return _app_method(current_user._get_current_object(), enrolling=False)


@bp.route("/settings/security/phone", methods=["GET", "POST"])
@login_required
@fresh_code_required
@web.configured_limit("RECOVERY_LIMIT_CODE_SEND", methods=["POST"])
def add_phone():
    return _phone_method(current_user._get_current_object(), enrolling=False)


@bp.route("/settings/security/phone/confirm", methods=["GET", "POST"])
@login_required
@fresh_code_required
@web.configured_limit("RECOVERY_LIMIT_CODE_CHECK", methods=["POST"])
def add_phone_confirm():
    return _phone_confirm(current_user._get_current_object(), enrolling=False)


def _settings_change(change, *args, done: str, then: str | None = None):
    """Run one settings change for the signed-in user and go back to the settings
    page (or to ``then`` when it worked)."""
    if not ActionForm().validate_on_submit():
        return redirect(url_for("auth.settings"))
    try:
        change(current_user._get_current_object(), *args, utcnow(), **web.origin())
    except AuthError as exc:
        flash(str(exc.message), "error")
    else:
        flash(done, "success")
        if then:
            return redirect(then)
    return redirect(url_for("auth.settings"))


@bp.post("/settings/security/methods/<int:method_id>/primary")
@login_required
@fresh_code_required
def make_primary(method_id: int):
    return _settings_change(services.make_primary, method_id, done=_("The main way to get codes has changed."))


@bp.post("/settings/security/methods/<int:method_id>/remove")
@login_required
@fresh_code_required
def remove_method(method_id: int):
    return _settings_change(
        services.remove_method, method_id, done=_("The method was removed."), then=_method_changed_url(False)
    )


@bp.post("/settings/security/recovery-codes")
@reads_first  # ten argon2 hashes before the write lock
@login_required
@fresh_code_required
def regenerate_codes():
    return _recovery_codes(current_user._get_current_object(), utcnow(), enrolling=False)


@bp.post("/settings/security/devices/<int:device_id>/revoke")
@login_required
@fresh_code_required
def revoke_device(device_id: int):
    return _settings_change(
        services.revoke_trusted_devices, device_id, done=_("That device will be asked for a code at its next sign-in.")
    )


@bp.post("/settings/security/devices/revoke-all")
@login_required
@fresh_code_required
def revoke_devices():
    return _settings_change(
        services.revoke_trusted_devices, None, done=_("Every device will be asked for a code at its next sign-in.")
    )


@bp.post("/settings/security/sign-out-everywhere")
@login_required
@fresh_code_required
def sign_out_everywhere():
    now = utcnow()
    if not ActionForm().validate_on_submit():
        return redirect(url_for("auth.settings"))
    services.sign_out_everywhere(current_user._get_current_object(), now, **web.origin())
    end_this_session(now, "signed_out_everywhere")
    flash(_("You are signed out on every device, including this one."), "success")
    return redirect(url_for("auth.sign_in"))


@bp.route("/settings/security/turn-off", methods=["GET", "POST"])
@login_required
@fresh_code_required
def turn_off():
    form = ActionForm()
    if form.validate_on_submit():
        now = utcnow()
        services.turn_off_2sv(current_user._get_current_object(), now, **web.origin())
        end_this_session(now, "twofactor_disabled")
        flash(
            _("2-step verification is off and you are signed out. You will set it up again at your next sign-in."),
            "warning",
        )
        return redirect(url_for("auth.sign_in"))
    return render_template("auth/turn_off.html", form=form)
