"""Where the documents of several hosts should live (not a test: prints measured figures).

    python -P bench/storage.py --database postgresql://postgres@127.0.0.1:5432/bench [--count 40] [--mb 1.5]

Stores ``--count`` encrypted blobs of ``--mb`` MB (random bytes, as
incompressible as JPEG) and reads them back, two ways:

1. the upload folder as the app does it: write a ``.tmp`` file, fsync, rename
   into place after the commit; read the file back;
2. PostgreSQL: one row per blob in a ``bytea`` column, one commit each;
   read the row back (a scratch table, dropped afterwards).

Prints the median and p95 per blob for each, the database's size growth,
and what a pg_dump of the table takes. A shared volume (NFS) cannot be
measured here: its figures would be the first column plus the network.
(``-P``: bench/queue.py would otherwise hide the standard library's queue.)
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


def files(blobs: list[bytes], folder: Path) -> tuple[list[float], list[float]]:
    writes, reads = [], []
    for n, blob in enumerate(blobs):
        final = folder / f"{n:04d}.bin"
        started = time.perf_counter()
        fd = os.open(final.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(blob)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(final.with_suffix(".tmp"), final)
        writes.append(time.perf_counter() - started)
    for n in range(len(blobs)):
        started = time.perf_counter()
        (folder / f"{n:04d}.bin").read_bytes()
        reads.append(time.perf_counter() - started)
    return writes, reads


def database(blobs: list[bytes], url: str) -> tuple[list[float], list[float], int, float]:
    writes, reads = [], []
    with psycopg.connect(url, autocommit=False) as connection:
        connection.execute("DROP TABLE IF EXISTS bench_document_blobs")
        connection.execute("CREATE TABLE bench_document_blobs (id integer PRIMARY KEY, blob bytea NOT NULL)")
        # Encrypted bytes do not compress: keep PostgreSQL from trying.
        connection.execute("ALTER TABLE bench_document_blobs ALTER COLUMN blob SET STORAGE EXTERNAL")
        connection.commit()
        try:
            for n, blob in enumerate(blobs):
                started = time.perf_counter()
                connection.execute("INSERT INTO bench_document_blobs VALUES (%s, %s)", (n, blob))
                connection.commit()
                writes.append(time.perf_counter() - started)
            for n in range(len(blobs)):
                started = time.perf_counter()
                connection.execute("SELECT blob FROM bench_document_blobs WHERE id = %s", (n,)).fetchone()
                connection.commit()
                reads.append(time.perf_counter() - started)
            size = connection.execute("SELECT pg_total_relation_size('bench_document_blobs')").fetchone()[0]
            connection.commit()  # pg_dump must see the table
            with tempfile.TemporaryDirectory() as folder:
                started = time.perf_counter()
                subprocess.run(
                    [
                        "pg_dump",
                        "--format=custom",
                        "--table=bench_document_blobs",
                        f"--file={folder}/blobs.pgdump",
                        f"--dbname={url}",
                    ],
                    check=True,
                )
                dump = time.perf_counter() - started
        finally:
            connection.rollback()
            connection.execute("DROP TABLE IF EXISTS bench_document_blobs")
            connection.commit()
    return writes, reads, size, dump


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", required=True, help="a PostgreSQL URL (a scratch table is made and dropped)")
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--mb", type=float, default=1.5)
    args = parser.parse_args()
    blobs = [secrets.token_bytes(int(args.mb * 1024 * 1024)) for _ in range(args.count)]
    total_mb = args.count * args.mb
    with tempfile.TemporaryDirectory() as folder:
        file_writes, file_reads = files(blobs, Path(folder))
    db_writes, db_reads, size, dump = database(blobs, args.database)
    print(f"{args.count} blobs of {args.mb} MB ({total_mb:.0f} MB)")
    print(f"{'':24} {'write p50':>10} {'write p95':>10} {'read p50':>10} {'read p95':>10}")
    for name, writes, reads in (
        ("upload folder (fsync)", file_writes, file_reads),
        ("PostgreSQL bytea", db_writes, db_reads),
    ):
        print(
            f"{name:24} {statistics.median(writes) * 1000:>8.1f}ms {p95(writes) * 1000:>8.1f}ms "
            f"{statistics.median(reads) * 1000:>8.1f}ms {p95(reads) * 1000:>8.1f}ms"
        )
    print(
        f"PostgreSQL table size: {size / 1024 / 1024:.1f} MB for {total_mb:.0f} MB of blobs; "
        f"pg_dump of it: {dump:.2f} s ({total_mb / dump:.0f} MB/s)"
    )


if __name__ == "__main__":
    sys.exit(main())
