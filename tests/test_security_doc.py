"""docs/security.md stays true: a row for every item of docs/standards.md, and
every test a row cites exists (ASVS items are proved, not just claimed)."""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "security.md"
STANDARDS = ROOT / "docs" / "standards.md"
ITEM_ID = r"\d{1,2}\.\d{1,2}\.\d{1,2}"
RANGE = re.compile(rf"({ITEM_ID})(?:\s*[–-]\s*({ITEM_ID}))?")
CITATION = re.compile(r"(tests/[\w/]+\.py)::(\w+)")


def expand(text: str) -> set[str]:
    """Item ids named in ``text``; a range like 6.2.1–6.2.11 names each id in it."""
    ids = set()
    for first, last in RANGE.findall(text):
        ids.add(first)
        if last:
            prefix, start = first.rsplit(".", 1)
            last_prefix, end = last.rsplit(".", 1)
            assert prefix == last_prefix, f"range across sections: {first}-{last}"
            ids.update(f"{prefix}.{n}" for n in range(int(start), int(end) + 1))
    return ids


def standards_sections() -> tuple[str, str]:
    text = STANDARDS.read_text(encoding="utf-8")
    asvs, _, rest = text.partition("## NIST")
    nist = rest.split("\n## ", 1)[0]
    return asvs, nist


def doc_rows() -> list[tuple[str, str, str]]:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Items", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        if not line.startswith("| ") or line.startswith("| ID ") or set(line) <= {"|", "-", " "}:
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        assert len(cells) == 3, f"a row needs ID, what the product does and where it is tested: {line[:80]}"
        rows.append((cells[0], cells[1], cells[2]))
    return rows


@cache
def names_in(path: str) -> frozenset[str]:
    """Test functions of a file, parsed (not imported); parametrised tests by their base name."""
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    return frozenset(
        node.name
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test")
    )


def test_every_asvs_item_of_the_standards_has_a_row():
    asvs, _ = standards_sections()
    wanted = expand(asvs)
    assert len(wanted) >= 50, "the standards file lists fewer items than expected: is the parser right?"
    covered = set().union(*(expand(row_id) for row_id, _, _ in doc_rows() if not row_id.startswith("NIST")))
    assert sorted(wanted - covered, key=lambda i: tuple(map(int, i.split(".")))) == []


def test_every_nist_rule_of_the_standards_has_a_row():
    _, nist = standards_sections()
    rules = [line for line in nist.splitlines() if line.startswith("- ")]
    nist_rows = [row for row in doc_rows() if row[0].startswith("NIST")]
    assert len(nist_rows) >= len(rules) > 0


def test_every_cited_test_exists():
    missing = []
    for row_id, _, tested in doc_rows():
        for path, name in CITATION.findall(tested):
            if not (ROOT / path).is_file() or name.split("[")[0] not in names_in(path):
                missing.append(f"{row_id}: {path}::{name}")
    assert missing == []


def test_every_row_cites_a_test_or_says_it_waits_for_a_merge():
    bare = [row_id for row_id, _, tested in doc_rows() if not CITATION.search(tested)]
    assert bare == []


def test_deviations_say_why():
    text = DOC.read_text(encoding="utf-8")
    for item in ("TOTP ±1 step", "No antivirus signatures"):
        assert item in text
    for row_id, does, _ in doc_rows():
        if "Deviation" in does:
            assert len(does) > 120, f"{row_id}: a deviation needs its reason"


def test_the_readme_links_the_security_page():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "## Security" in readme and "(docs/security.md)" in readme
