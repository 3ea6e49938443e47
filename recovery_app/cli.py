"""``flask`` commands for operators: users, outbox, audit, demo data."""

from __future__ import annotations

import secrets
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup
from flask_babel import force_locale
from sqlalchemy import select

from . import audit, notify
from .auth.users import UserError, create_user, get_or_create_account
from .database import on_commit, on_rollback, unit
from .extensions import db
from .forms import unsafe_characters
from .models import Account, OutboxMessage, User
from .models.base import utcnow
from .models.users import ROLES, SELLER_ROLES
from .ops.cli import backup_cli
from .prechecks.cli import prechecks_cli
from .reports.cli import reports_cli
from .scheduler.cli import scheduler_cli
from .web import ROW_ID_MAX

users_cli = AppGroup("users", help="Create and list users.")
outbox_cli = AppGroup("outbox", help="Messages waiting to be sent, or sent.")
audit_cli = AppGroup("audit", help="The hash-chained audit log.")


def _text(max_length: int, kind: str = "line"):
    """A click callback that refuses what the web forms refuse in the same
    field: control, bidi-override and other invisible characters, and more
    than the column holds. A value given only as spaces counts as not given."""

    def check(_ctx, param, value):
        if value is None:
            return None
        if unsafe_characters(value, kind):
            raise click.BadParameter("contains control or invisible characters", param=param)
        value = value.strip() if kind == "line" else value
        if len(value) > max_length:
            raise click.BadParameter(f"is longer than {max_length} characters", param=param)
        return value

    return check


@users_cli.command("create")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--email", required=True, callback=_text(254))
@click.option(
    "--password", required=True, callback=_text(4096, "password"), help="At least 12 characters; not a common password."
)
@click.option("--account", "account_name", callback=_text(200), help="Seller account name (seller roles only).")
@click.option("--name", "display_name", default="", callback=_text(200))
@click.option("--locale", type=click.Choice(["ja", "en"]), default="ja")
def users_create(role, email, password, account_name, display_name, locale):
    """Create a user. Staff: --role reviewer|manager. Sellers: also --account NAME."""
    now = utcnow()
    if role in SELLER_ROLES and not account_name:
        raise click.UsageError("seller roles need --account NAME")
    if role not in SELLER_ROLES and account_name:
        raise click.UsageError("staff roles do not take --account")
    try:
        with unit(), force_locale("en"):  # the password rules speak the operator's language here
            account = get_or_create_account(account_name, now) if account_name else None
            user = create_user(
                email=email,
                password=password,
                role=role,
                account=account,
                display_name=display_name,
                locale=locale,
                now=now,
            )
    except UserError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"created {user.role} {user.email} (id {user.id}); 2-step verification is set up at first sign-in")


@users_cli.command("list")
def users_list():
    """List every user with role, account and 2SV state."""
    rows = db.session.execute(select(User, Account.name).outerjoin(Account).order_by(User.id)).all()
    for user, account_name in rows:
        state = "must enroll 2SV" if user.must_enroll_2sv else "2SV on"
        click.echo(f"{user.id:>5}  {user.role:<12}  {user.email:<40}  {account_name or '-':<24}  {state}")


@outbox_cli.command("list")
@click.option("--limit", type=click.IntRange(1, 10000), default=50)
@click.option("--channel", type=click.Choice(["sms", "voice", "email"]))
@click.option("--status", type=click.Choice(["pending", "sending", "sent", "failed"]))
def outbox_list(limit, channel, status):
    """The newest messages first, with their text (codes are masked once a real provider sent them)."""
    query = select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit)
    if channel:
        query = query.where(OutboxMessage.channel == channel)
    if status:
        query = query.where(OutboxMessage.status == status)
    for message in db.session.execute(query).scalars():
        click.echo(
            f"#{message.id} {message.created_at:%Y-%m-%d %H:%M:%S}Z {message.channel} to {message.to} "
            f"[{message.status}, tries {message.tries}]"
        )
        if message.delivery_status:
            click.echo(
                f"  delivery report: {message.delivery_status}"
                + (f" (error {message.delivery_error})" if message.delivery_error else "")
            )
        if message.last_error and message.status != "sent":
            click.echo(f"  last error: {message.last_error}")
        subject, body = notify.services.text_of(message)
        if subject:
            click.echo(f"  {subject}")
        for line in body.strip().splitlines():
            click.echo(f"  | {line}")


@outbox_cli.command("retry")
@click.argument("message_id", type=click.IntRange(1, ROW_ID_MAX))
def outbox_retry(message_id):
    """Send a failed message again now, with all its tries again."""
    now = utcnow()
    with unit():
        again = notify.services.retry(message_id, now)
    if not again:
        raise click.ClickException(f"message #{message_id} does not exist or has not failed")
    result = notify.send_now([message_id], now)
    if result["sent"]:
        click.echo(f"message #{message_id} sent")
    else:
        click.echo(
            f"message #{message_id} not sent yet; the outbox job tries it again "
            "(see 'flask outbox list --status pending')"
        )


@audit_cli.command("verify")
def audit_verify():
    """Walk the chain; exit 1 naming the first entry that does not hold."""
    result = audit.verify()
    if result.ok:
        click.echo(f"audit chain intact: {result.checked} entries")
        return
    click.echo(
        f"audit chain BROKEN at entry {result.broken_seq}: {result.problem} "
        f"({result.checked} entries before it are intact)",
        err=True,
    )
    raise SystemExit(1)


DEMO_USERS = (
    ("owner@demo-shop.example", "seller_owner", "山田 花子", "Hanako Yamada", "ja"),
    ("staff@demo-shop.example", "seller_user", "佐藤 健", "Ken Sato", "ja"),
    ("reviewer@recovery-desk.example", "reviewer", "Reviewer One", "Reviewer One", "en"),
    ("manager@recovery-desk.example", "manager", "Manager One", "Manager One", "en"),
)


@click.command("demo")
@click.option(
    "--cases",
    "case_count",
    type=click.IntRange(0, 50_000),
    default=0,
    show_default=True,
    help="Also create this many demo cases over the last 30 days (once; skipped if they exist).",
)
@click.option("--seed", type=int, default=None, help="Random seed, for the same demo data every time.")
def demo(case_count, seed):
    """Create the demo users once (random passwords kept in instance/) and print them;
    with --cases N, also a month of realistic cases in every state."""
    if current_app.config["RECOVERY_ENV"] == "production":
        raise click.ClickException("demo data is for development only")
    credentials = Path(current_app.config["RECOVERY_INSTANCE_DIR"]) / "demo-users.txt"
    if db.session.execute(select(User).where(User.email == DEMO_USERS[0][0])).scalar_one_or_none() is None:
        now = utcnow()
        lines = []
        with unit():
            account = get_or_create_account("Demo Shop 合同会社", now)
            for email, role, name, romanised, locale in DEMO_USERS:
                password = "-".join(secrets.token_hex(3) for _ in range(4))
                create_user(
                    email=email,
                    password=password,
                    role=role,
                    now=now,
                    display_name=name,
                    romanised_name=romanised,
                    locale=locale,
                    account=account if role in SELLER_ROLES else None,
                )
                lines.append(f"{role:<13} {email:<34} {password}")
        credentials.parent.mkdir(parents=True, exist_ok=True)
        credentials.write_text("\n".join(lines) + "\n")
        credentials.chmod(0o600)
    if case_count:
        _demo_cases(case_count, seed)
    click.echo("Demo users (each sets up 2-step verification at first sign-in):")
    if credentials.exists():
        for line in credentials.read_text().splitlines():
            click.echo(f"  {line}")
    else:
        click.echo(f"  (the demo users exist but {credentials} is gone; reset a password with 'flask users')")


def _demo_cases(count: int, seed: int | None) -> None:
    from .demo import seed_cases
    from .documents import storage
    from .reports import rollups

    with unit():
        now = utcnow()
        rollups.take_turn()  # before the new cases' hooks lock the marks (see take_turn)
        created, staged = seed_cases(count, now=now, seed=seed)
        if created:
            rollups.rebuild(now)  # the demo's past days, as the reports read them
        on_commit(lambda: storage.commit_staged(staged))
        on_rollback(lambda: storage.discard_staged(staged))
    if not created:
        click.echo("Demo cases exist already; none added.")
        return
    click.echo(f"Created {created} demo cases over the last 30 days ({len(staged)} document images).")


def init_app(app) -> None:
    app.cli.add_command(users_cli)
    app.cli.add_command(outbox_cli)
    app.cli.add_command(audit_cli)
    app.cli.add_command(demo)
    app.cli.add_command(scheduler_cli)
    app.cli.add_command(reports_cli)
    app.cli.add_command(prechecks_cli)
    app.cli.add_command(backup_cli)
