"""The browser reaches the live app and Japanese text renders."""

from .conftest import screenshot


def test_error_page_renders_in_japanese(live_server, new_context):
    page = new_context().new_page()
    page.goto(f"{live_server}/nowhere")
    assert "このページは存在しないか" in page.inner_text("main")
    assert page.locator("link[rel=stylesheet]").count() == 1
    screenshot(page, "smoke-404-ja")
