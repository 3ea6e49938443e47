"""Files that passed the checks, kept for the seller's next try after a form error.

One bad file must not cost the seller every photo. After an error, the files
that passed are staged (encrypted at rest, under a random temporary name, as
``documents.storage.stage`` does for every upload) and described in this
browser's session; the next try uses each of them for a side the seller does
not choose again. They are the seller's only: tied to this session and user,
and good for ``KEPT_FOR``, after which the scheduler's orphan job deletes the
blob (``storage.remove_orphans``) whatever happened to the session.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from ..documents import pipeline, storage

KEPT_FOR = timedelta(hours=1)  # the same hour after which the orphan job removes staged files
SESSION_KEY = "kept_uploads"
NAME_KEPT = 60  # characters of a file name carried in the session cookie, which must stay small


def valid(entries, user_id: int, now: datetime) -> dict[str, dict]:
    """The entries of a session value that belong to ``user_id`` and are young enough."""
    if not isinstance(entries, dict):
        return {}
    kept = {}
    for side, entry in entries.items():
        try:
            fresh = now - datetime.fromisoformat(entry["at"]) < KEPT_FOR
        except (TypeError, KeyError, ValueError):
            continue
        if fresh and entry.get("uid") == user_id:
            kept[side] = entry
    return kept


def _staged(entry: dict) -> storage.StagedFile:
    return storage.staged_file(entry["key"], entry["key_id"], entry["sha256"], entry["size"])


def documents(entries: dict[str, dict]) -> dict[str, tuple[pipeline.CleanDocument, str, dict]]:
    """Each kept side as (clean document, display name, entry); a blob that is
    gone or does not match what was recorded is simply not kept any more."""
    found = {}
    for side, entry in entries.items():
        data = storage.read_staged(_staged(entry))
        if data is None:
            continue
        document = pipeline.CleanDocument(
            data, entry["type"], entry.get("width"), entry.get("height"), entry.get("pages")
        )
        found[side] = (document, entry["name"], entry)
    return found


def remember(entries: dict[str, dict], passed, user_id: int, now: datetime) -> dict[str, dict]:
    """The session value after an error: every file that passed (``passed``
    holds items with ``side``, ``document``, ``display_name`` and ``kept``,
    the entry it came from) is kept; a side chosen again replaces the old file."""
    kept = dict(entries)
    for item in passed:
        if item.kept is not None:
            kept[item.side] = item.kept
            continue
        staged = storage.stage(item.document.data)
        if item.side in kept:
            storage.discard_staged([_staged(kept[item.side])])
        kept[item.side] = {
            "uid": user_id,
            "at": now.isoformat(),
            "key": staged.storage_key,
            "key_id": staged.key_id,
            "sha256": staged.sha256,
            "size": staged.size,
            "type": item.document.content_type,
            "width": item.document.width,
            "height": item.document.height,
            "pages": item.document.pages,
            "name": _short(item.display_name),
        }
    return kept


def _short(name: str) -> str:
    return name if len(name) <= NAME_KEPT else name[: NAME_KEPT - 1] + "…"


def forget(entries: dict[str, dict]) -> None:
    """Remove the kept blobs (the documents were sent, or the seller left)."""
    storage.discard_staged([_staged(entry) for entry in entries.values()])


def shown(entries: dict[str, dict]) -> dict[str, dict]:
    """What the form says about each kept file: its name and size."""
    return {side: {"name": entry["name"], "size": entry["size"]} for side, entry in entries.items()}
