"""Error pages for requests that cannot even be routed."""

import pytest

BAD_HOSTS = ["a" * 64 + ".example.test", "a..b", "x" * 300]


@pytest.mark.parametrize("host", BAD_HOSTS)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_host_header_no_address_can_hold_gets_a_plain_400(client, host, method):
    # No URL of the site can be built for such a request, so the usual error page
    # (links, style sheet) cannot be written; the person still reads why.
    response = client.open("/help", method=method, headers={"Host": host, "Accept-Language": "ja"})
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "リクエストを処理できませんでした" in page and 'lang="ja"' in page
    assert "href=" not in page and "<script" not in page
    assert response.headers["X-Frame-Options"] == "DENY"


def test_a_json_client_gets_the_same_refusal_as_json(client):
    response = client.get("/help", headers={"Host": "a..b", "Accept": "application/json"})
    assert response.status_code == 400
    assert response.get_json()["status"] == 400 and response.get_json()["error"]
