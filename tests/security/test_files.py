"""What main already holds of the file rules (ASVS 5.2.1, 5.3.1, 5.3.2, 5.4.1):
the request size cap, and document storage outside any served path under
generated names, encrypted, never executable."""

from __future__ import annotations

import stat
from pathlib import Path

from werkzeug.test import encode_multipart

from recovery_app.documents import storage
from tests.security.conftest import changed_tables, snapshot

JPEG_WITH_SCRIPT = b"\xff\xd8\xff\xe0<?php system($_GET['c']); ?><script>alert(1)</script>"


def test_a_request_over_the_size_cap_gets_a_clear_page_and_changes_nothing(app, client):
    # ASVS 5.2.1
    cap = app.config["MAX_CONTENT_LENGTH"]
    before = snapshot()
    response = client.post("/sign-in", data={"email": "a@example.test", "password": "x" * (cap + 1)})
    assert response.status_code == 413
    assert "too large" in response.get_data(as_text=True) or "大きすぎ" in response.get_data(as_text=True)
    assert changed_tables(before, snapshot()) == []


def test_a_form_refused_by_the_form_reader_is_not_told_about_file_sizes(app, client):
    # ASVS 5.2.1: within the size cap, but a text field over MAX_FORM_MEMORY_SIZE.
    client.get("/language/en")
    before = snapshot()
    # Encoded here: the test client would spool a body this large to a file it never closes.
    boundary, body = encode_multipart(
        {"email": "a@example.test", "password": "x" * (app.config["MAX_FORM_MEMORY_SIZE"] + 1)}
    )
    response = client.post("/sign-in", data=body, content_type=f"multipart/form-data; boundary={boundary}")
    page = response.get_data(as_text=True)
    assert response.status_code == 413
    assert "more fields, or a longer text, than this page accepts" in page
    assert "Files may be at most" not in page
    assert changed_tables(before, snapshot()) == []


def test_documents_are_stored_outside_every_served_path_under_generated_names(app):
    # ASVS 5.3.1, 5.3.2, 5.4.1
    staged = storage.stage(JPEG_WITH_SCRIPT)
    storage.commit_staged([staged])
    path = staged.final_path
    upload_dir = Path(app.config["RECOVERY_UPLOAD_DIR"]).resolve()
    static_dir = Path(app.static_folder).resolve()
    template_dir = (Path(app.root_path).parent / "templates").resolve()
    assert path.resolve().is_relative_to(upload_dir)
    assert not upload_dir.is_relative_to(static_dir) and not upload_dir.is_relative_to(template_dir)
    assert staged.storage_key.isalnum() and len(staged.storage_key) == 40  # secrets.token_hex(20)
    assert path.name.startswith(staged.storage_key)
    data = path.read_bytes()
    assert b"<?php" not in data and b"<script>" not in data  # encrypted at rest
    mode = path.stat().st_mode
    assert not mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH) and not mode & stat.S_IROTH
    for rule in app.url_map.iter_rules():
        assert not rule.rule.startswith(str(upload_dir))
    with app.test_client() as client:
        assert client.get(f"/static/../uploads/{staged.storage_key[:2]}/{path.name}").status_code == 404
