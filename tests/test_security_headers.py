"""Security headers on every response (pages, errors, static files)."""

import pytest


@pytest.mark.parametrize("path", ["/", "/nowhere", "/static/css/app.css", "/language/en"])
def test_headers_on_every_response(client, path):
    response = client.get(path)
    response.close()  # static files are streamed from an open file
    csp = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"]
