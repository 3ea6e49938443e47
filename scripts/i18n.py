#!/usr/bin/env python3
"""Translation catalogs, one per feature (see recovery_app/i18n_catalogs.py).

scripts/i18n.py update    extract messages and merge them into each catalog
scripts/i18n.py compile   build the .mo files the app loads (run by the install step)
scripts/i18n.py missing   list messages that have no Japanese yet (exit 1 if any)
scripts/i18n.py fill CATALOG FILE.json   set Japanese from {"English": "日本語", ...}
"""

from __future__ import annotations

import glob
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from recovery_app.i18n_catalogs import CATALOGS, LANGUAGES  # noqa: E402

KEYWORDS = ["-k", "_l", "-k", "lazy_gettext", "-k", "_n:1,2", "-k", "lazy_ngettext:1,2"]


def sources(patterns) -> list[str]:
    found: list[str] = []
    for pattern in patterns:
        path = ROOT / pattern
        if "*" in pattern:
            found.extend(sorted(glob.glob(str(path))))
        elif path.is_dir():
            found.extend(
                str(p) for p in sorted(path.rglob("*")) if p.suffix in (".py", ".html", ".txt") and p.is_file()
            )
        elif path.exists():
            found.append(str(path))
    return found


def extract(catalog: str, pot: Path) -> None:
    files = sources(CATALOGS[catalog])
    subprocess.run(
        [
            sys.executable,
            "-m",
            "babel.messages.frontend",
            "-q",
            "extract",
            "-F",
            str(ROOT / "babel.cfg"),
            *KEYWORDS,
            "--no-location",
            "--sort-output",
            "-o",
            str(pot),
            *files,
        ]
        if files
        else [sys.executable, "-c", f"open({str(pot)!r}, 'w').write('msgid \"\"\\nmsgstr \"\"\\n')"],
        check=True,
        cwd=ROOT,
    )


def po_path(catalog: str, lang: str) -> Path:
    return ROOT / catalog / "translations" / lang / "LC_MESSAGES" / "messages.po"


def update() -> None:
    for catalog in CATALOGS:
        with tempfile.TemporaryDirectory() as tmp:
            pot = Path(tmp) / "messages.pot"
            extract(catalog, pot)
            for lang in LANGUAGES:
                po = po_path(catalog, lang)
                action = "update" if po.exists() else "init"
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "babel.messages.frontend",
                        "-q",
                        action,
                        "-i",
                        str(pot),
                        "-d",
                        str(ROOT / catalog / "translations"),
                        "-l",
                        lang,
                        *(["--no-fuzzy-matching", "--ignore-obsolete"] if action == "update" else []),
                    ],
                    check=True,
                    cwd=ROOT,
                )
                _drop_creation_date(po)
                print(f"{action}d {po.relative_to(ROOT)}")


def _drop_creation_date(po: Path) -> None:
    """The extraction time changes on every update and only makes catalogs
    conflict when two changes meet; nothing reads it."""
    lines = po.read_text(encoding="utf-8").splitlines(keepends=True)
    po.write_text("".join(line for line in lines if not line.startswith('"POT-Creation-Date:')), encoding="utf-8")


def compile_all() -> None:
    for catalog in CATALOGS:
        directory = ROOT / catalog / "translations"
        if directory.exists():
            subprocess.run(
                [sys.executable, "-m", "babel.messages.frontend", "-q", "compile", "-d", str(directory)],
                check=True,
                cwd=ROOT,
            )


def missing() -> list[tuple[str, str]]:
    """(catalog, msgid) for every extracted message without a usable translation."""
    from babel.messages.pofile import read_po

    gaps = []
    for catalog in CATALOGS:
        with tempfile.TemporaryDirectory() as tmp:
            pot = Path(tmp) / "messages.pot"
            extract(catalog, pot)
            with pot.open("rb") as fh:
                template = read_po(fh)
        for lang in LANGUAGES:
            po = po_path(catalog, lang)
            translations = {}
            if po.exists():
                with po.open("rb") as fh:
                    translations = {m.id: m for m in read_po(fh) if m.id}
            for message in template:
                if not message.id:
                    continue
                found = translations.get(message.id)
                strings = found.string if found is not None else None
                empty = not strings or (isinstance(strings, tuple) and not all(strings))
                if found is None or empty or found.fuzzy:
                    gaps.append((f"{catalog} [{lang}]", message.id if isinstance(message.id, str) else message.id[0]))
    return gaps


def fill(catalog: str, json_file: str) -> int:
    import json

    from babel.messages.pofile import read_po, write_po

    entries = json.loads(Path(json_file).read_text(encoding="utf-8"))
    po = po_path(catalog.rstrip("/"), "ja")
    with po.open("rb") as fh:
        messages = read_po(fh)
    unknown = []
    for msgid, msgstr in entries.items():
        message = messages.get(msgid)
        if message is None:
            unknown.append(msgid)
            continue
        message.string = msgstr
        message.flags.discard("fuzzy")
    with po.open("wb") as fh:
        write_po(fh, messages, width=100)
    for msgid in unknown:
        print(f"not in {po.relative_to(ROOT)} (run update first?): {msgid}")
    return 1 if unknown else 0


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else ""
    if command == "update":
        update()
    elif command == "compile":
        compile_all()
    elif command == "missing":
        gaps = missing()
        for where, msgid in gaps:
            print(f"{where}: {msgid}")
        return 1 if gaps else 0
    elif command == "fill" and len(argv) == 4:
        return fill(argv[2], argv[3])
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
