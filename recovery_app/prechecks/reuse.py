"""Reused documents: a 256-bit perceptual hash (``imagehash`` pHash, 16x16 DCT)
of every document image, looked up by bands.

Why 256 bits: on photos of documents the 64-bit pHash is dominated by the
page's outline on the table, and two different passports of the same layout
came within 0-2 bits of each other; at 256 bits they stay 32 or more apart
while a 70% JPEG copy stays within 4 (bench/precheck.py prints the figures).

The lookup: the hash's bits are dealt into 16 bands of 16 bits (bit i goes to
band i mod 16, so every band mixes low and high frequencies). Two hashes within
15 bits of each other share at least one band exactly; the query asks each of
the 16 band indexes for equality (each index covers what is read, so no table
row is touched), then measures the real distance of the few rows that come back.
Copies further apart (up to the configured bound) are found when one band
survived intact, which on measured copies is the rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import imagehash
from PIL import Image
from sqlalchemy import select, union_all

from ..extensions import db
from ..models.prechecks import BAND_COUNT, DocumentHash

HASH_SIZE = 16  # 16 x 16 = 256 bits
BAND_BITS = HASH_SIZE * HASH_SIZE // BAND_COUNT


def phash(image: Image.Image) -> str:
    """The hash as 64 hexadecimal digits."""
    return str(imagehash.phash(image, hash_size=HASH_SIZE))


def bands(hex_hash: str) -> list[int]:
    value = int(hex_hash, 16)
    result = [0] * BAND_COUNT
    for bit in range(BAND_COUNT * BAND_BITS):
        if value >> bit & 1:
            result[bit % BAND_COUNT] |= 1 << (bit // BAND_COUNT)
    return result


def distance(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def band_values(hex_hash: str) -> dict[str, int]:
    return {f"band{i}": value for i, value in enumerate(bands(hex_hash))}


@dataclass(frozen=True)
class Match:
    stored: DocumentHash
    distance: int


def candidate_query(hex_hash: str, *, other_than_user_id: int):
    """(id, hash) of other users' rows sharing at least one band with ``hex_hash``.

    One SELECT per band, joined by UNION ALL, so that each reads only its
    band's covering index (band, hash, user, id) and never the table: a single
    OR over the 16 columns would make SQLite fetch every candidate row from the
    table. A row sharing several bands comes back once per band.
    """
    parts = [
        select(DocumentHash.id, DocumentHash.phash).where(column == value, DocumentHash.user_id != other_than_user_id)
        for column, value in zip(DocumentHash.band_columns(), bands(hex_hash), strict=True)
    ]
    return union_all(*parts)


def find_matches(hex_hash: str, *, other_than_user_id: int, max_distance: int) -> list[Match]:
    """Stored hashes of other users' documents within ``max_distance`` bits.

    The band query returns bare (id, hash) pairs read from the band indexes; at
    a million stored hashes a few hundred unrelated rows share a band by chance,
    and measuring their distance on plain tuples costs microseconds where
    loading them as objects would cost milliseconds. Only real matches are loaded.
    """
    candidates = db.session.execute(candidate_query(hex_hash, other_than_user_id=other_than_user_id)).all()
    target = int(hex_hash, 16)
    close = {row_id: (target ^ int(stored, 16)).bit_count() for row_id, stored in candidates}
    close = {row_id: dist for row_id, dist in close.items() if dist <= max_distance}
    if not close:
        return []
    rows = db.session.execute(select(DocumentHash).where(DocumentHash.id.in_(close))).scalars()
    return sorted((Match(row, close[row.id]) for row in rows), key=lambda m: (m.distance, m.stored.id))
