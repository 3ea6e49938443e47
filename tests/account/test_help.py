"""The help page answers what the FAQ answers, in both languages, with anchors."""

import pytest

ANCHORS = (
    "what-is-2sv",
    "authenticator-apps",
    "passkeys",
    "no-email-codes",
    "trusted-device",
    "several-users",
    "no-code",
    "lost-phone",
    "keep-access",
    "forgot-password",
)


@pytest.mark.parametrize(
    "language, words",
    [
        (
            "en",
            (
                "What is 2-step verification?",
                "authenticator app",
                "never sent by e-mail",
                "12 hours",
                "ask for codes on this device",
                "their own login",
                "What is a passkey?",
                "only at this site",
            ),
        ),
        (
            "ja",
            (
                "2段階認証とは",
                "認証アプリ",
                "メール",
                "12時間",
                "このデバイスで再度コードを要求しない",
                "ログイン",
                "パスキーとは",
                "このサイト本来のアドレスでしか使えません",
            ),
        ),
    ],
)
def test_help_page_answers_the_faq_in_each_language(app, language, words):
    page = app.test_client().get("/help", headers={"Accept-Language": language})
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    for word in words:
        assert word in text, word
    for anchor in ANCHORS:
        assert f'id="{anchor}"' in text and f'href="#{anchor}"' in text


def test_every_page_footer_links_to_help(app):
    text = app.test_client().get("/account/password/forgot").get_data(as_text=True)
    assert 'href="/help"' in text


def test_help_links_owners_to_their_users_page(client, auth, make):
    auth.fast_sign_in(client, make.user("seller_owner"))
    assert 'href="/account/users"' in client.get("/help").get_data(as_text=True)
