"""Both languages are complete: every message in the code has its Japanese."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_message_has_a_japanese_translation():
    result = subprocess.run([sys.executable, "scripts/i18n.py", "missing"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, (
        "messages without Japanese (run scripts/i18n.py update, then translate):\n" + result.stdout
    )


def test_language_follows_the_browser_and_the_switch(client):
    page = client.get("/language/en?next=/nowhere", headers={"Accept-Language": "ja"})
    assert page.status_code == 302 and page.headers["Location"].endswith("/nowhere")
    english = client.get("/nowhere")
    assert "This page does not exist" in english.get_data(as_text=True)


def test_japanese_is_chosen_from_accept_language(app):
    fresh = app.test_client()
    text = fresh.get("/nowhere", headers={"Accept-Language": "ja-JP,ja;q=0.9"}).get_data(as_text=True)
    assert "このページは存在しないか" in text


def test_unknown_accept_language_falls_back_without_error(app):
    fresh = app.test_client()
    response = fresh.get("/nowhere", headers={"Accept-Language": "xx-invalid;;q=abc, ***"})
    assert response.status_code == 404


def test_language_switch_refuses_off_site_next(client):
    response = client.get("/language/ja?next=https://evil.example/")
    assert response.status_code == 302
    assert "evil.example" not in response.headers["Location"]


def test_a_message_shared_by_several_catalogs_reads_the_same_in_each():
    # The catalogs are merged at run time and the last one wins, so one English
    # message with two Japanese renderings would change meaning by load order.
    from collections import defaultdict

    from babel.messages.pofile import read_po

    renderings = defaultdict(dict)
    for po in sorted(ROOT.glob("recovery_app/**/translations/ja/LC_MESSAGES/messages.po")):
        with po.open("rb") as fh:
            for message in read_po(fh):
                if message.id and message.string:
                    key = message.id if isinstance(message.id, str) else message.id[0]
                    renderings[key][str(po.relative_to(ROOT))] = str(message.string)
    clashes = {msgid: found for msgid, found in renderings.items() if len(set(found.values())) > 1}
    assert clashes == {}, f"translate these the same everywhere (or give them distinct English): {clashes}"


# docs/glossary.md: the word on the right of each pair never appears in a Japanese catalog.
AVOIDED_JAPANESE = {
    r"サインイン|サインアウト": "ログイン / ログアウト",
    r"二段階認証|2要素認証": "2段階認証",
    r"回復": "復旧 (or 取り戻す)",
    r"ブラウザ(?!ー)": "ブラウザー",
    r"信頼済みデバイス|省略しているデバイス": "信頼済みのデバイス",
    r"(?<!ド)メイン(?!メニュー)": "第一手段",
    r"どの方法も使えない": "どれも使えません",
    r"レビュアー": "審査担当者",
    r"回復コード|バックアップコード|復旧コード": "リカバリーコード",
    r"受付済み": "審査待ち",
}


def test_japanese_uses_the_glossary_words():
    import re

    from babel.messages.pofile import read_po

    found = []
    for po in sorted(ROOT.glob("recovery_app/**/translations/ja/LC_MESSAGES/messages.po")):
        with po.open("rb") as fh:
            catalog = read_po(fh)
        for message in catalog:
            strings = message.string if isinstance(message.string, tuple) else (message.string,)
            for text in filter(None, strings):
                for pattern, preferred in AVOIDED_JAPANESE.items():
                    if re.search(pattern, text):
                        found.append(f"{po.relative_to(ROOT)}: {text!r} (use {preferred})")
    assert found == []
