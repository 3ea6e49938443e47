"""A wheel built from a clean checkout runs on its own and speaks Japanese.

The checkout's tracked files are copied elsewhere (so no compiled catalog or
build output of the working tree can leak in), built into a wheel, installed
into an empty directory, and the app is started from there with only the
dependencies of this environment beside it.
"""

import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

RUN_INSTALLED = textwrap.dedent(
    """
    import base64, os, sys
    from pathlib import Path

    import recovery_app
    from recovery_app import create_app

    target, work = Path(sys.argv[1]), Path(sys.argv[2])
    assert Path(recovery_app.__file__).resolve().is_relative_to(target), recovery_app.__file__

    import flask_migrate

    config = {
        "RECOVERY_ENV": "testing",
        "SQLALCHEMY_DATABASE_URI": "sqlite:///" + str(work / "app.db"),
        "SECRET_KEY": "wheel-secret-" + "x" * 40,
        "RECOVERY_VAULT_KEY": base64.urlsafe_b64encode(b"k" * 32).decode(),
        "RECOVERY_INSTANCE_DIR": str(work / "instance"),
        "RECOVERY_UPLOAD_DIR": str(work / "uploads"),
        "RATELIMIT_STORAGE_URI": "memory://",
        "SERVER_NAME": None,
    }
    app = create_app(config)
    with app.app_context():
        flask_migrate.upgrade()

    client = app.test_client()
    page = client.get("/sign-in", headers={"Accept-Language": "ja"})
    print("STATUS", page.status_code)
    print(page.get_data(as_text=True))
    css = client.get("/static/css/auth.css")
    print("CSS", css.status_code, len(css.get_data()))
    """
)


def tracked_files() -> list[str]:
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    )
    return [name for name in listing.stdout.decode().split("\0") if name and (ROOT / name).is_file()]


def build_wheel(tmp_path: Path) -> Path:
    checkout = tmp_path / "checkout"
    for name in tracked_files():
        (checkout / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, checkout / name)
    assert not list(checkout.rglob("*.mo")), "a clean checkout has no compiled catalogs"
    dist = tmp_path / "dist"
    # No build isolation: setuptools and Babel come from this environment, so nothing is downloaded.
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), "."],
        cwd=checkout,
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr[-4000:]
    (wheel,) = dist.glob("recovery_desk-*.whl")
    return wheel


def test_wheel_carries_templates_static_migrations_and_compiled_catalogs(tmp_path):
    wheel = build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in (
        "recovery_app/__init__.py",
        "recovery_app/templates/auth/sign_in.html",
        "recovery_app/static/css/auth.css",
        "recovery_app/migrations/env.py",
        "recovery_app/migrations/alembic.ini",
        "recovery_app/translations/ja/LC_MESSAGES/messages.mo",
        "recovery_app/auth/translations/ja/LC_MESSAGES/messages.mo",
        "recovery_app/auth/context_words.txt",
    ):
        assert expected in names, expected
    assert any(name.startswith("recovery_app/migrations/versions/") for name in names)
    assert not any(name.startswith(("tests/", "templates/", "static/")) for name in names)

    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    work = tmp_path / "work"
    work.mkdir()
    script = work / "run_installed.py"
    script.write_text(RUN_INSTALLED)
    # The installed copy first, then this environment's dependencies; the checkout is nowhere on the path
    # (the editable install's finder lives in site-packages, hence -S and an explicit path).
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "RECOVERY_", "FLASK_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(target), sysconfig.get_paths()["purelib"]])
    result = subprocess.run(
        [sys.executable, "-S", "-P", str(script), str(target), str(work)],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "STATUS 200" in result.stdout
    assert "<h1>ログイン</h1>" in result.stdout
    assert "パスワードの次に、認証アプリまたは電話に届く確認コードを入力していただきます。" in result.stdout
    css_line = next(line for line in result.stdout.splitlines() if line.startswith("CSS "))
    status, size = css_line.split()[1:]
    assert status == "200" and int(size) > 0
