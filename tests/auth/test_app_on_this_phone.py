"""Setting up an authenticator on the phone the seller holds: a link that opens
the app, and a button that copies the setup key (script from a static file)."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlsplit


def test_setup_page_links_to_the_authenticator_app_and_offers_to_copy_the_key(client, make, auth):
    user = make.user(enrolled=False)
    auth.password(client, user)
    page = client.get("/sign-in/setup/app").get_data(as_text=True)
    link = html.unescape(re.search(r'id="open-authenticator" href="([^"]+)"', page).group(1))
    parts = urlsplit(link)
    assert parts.scheme == "otpauth" and parts.netloc == "totp"
    secret = parse_qs(parts.query)["secret"][0]
    key = re.search(r'id="copy-key" data-key="([A-Z2-7]+)"', page).group(1)
    assert key == secret
    assert "/static/js/auth.js" in page and "<script>" not in page  # the CSP forbids inline script
