"""Benchmark of the upload pipeline (not a test: prints measured figures).

    /work/venv/bin/python bench/upload.py [--rounds N]

1. A 12-megapixel JPEG (4000×3000, photo-like): time per file through the
   pipeline (libmagic type, Pillow decode under the pixel cap, EXIF
   orientation, metadata-free re-encode, AES-GCM encryption, staged write and
   move into place), beside the bare Pillow decode-plus-encode of the same
   file in the same run, and their ratio.
2. Peak memory of a fresh process handling one real request that opens a
   case with a 10 MB JPEG (plus back and selfie), through the Flask app:
   resident set size before the request and its peak during it (Linux
   /proc/self/status VmHWM, reset just before the request).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from PIL import Image, ImageChops, ImageDraw, ImageFilter  # noqa: E402


def photo_like(width: int, height: int, *, noise: int) -> Image.Image:
    """A card on a desk with sensor-like noise: compresses like a phone photo."""
    base = Image.new("RGB", (width, height), (120, 110, 95))
    draw = ImageDraw.Draw(base)
    draw.rounded_rectangle(
        (width * 0.1, height * 0.15, width * 0.9, height * 0.85),
        radius=width // 40,
        fill=(228, 234, 242),
        outline=(40, 60, 90),
        width=max(4, width // 400),
    )
    draw.rectangle((width * 0.14, height * 0.25, width * 0.34, height * 0.7), fill=(150, 160, 175))
    for row in range(8):
        y = height * 0.25 + row * height * 0.055
        draw.rectangle((width * 0.4, y, width * (0.6 + 0.03 * (row % 4)), y + height * 0.02), fill=(50, 50, 60))
    base = base.filter(ImageFilter.GaussianBlur(2))
    noise = Image.merge("RGB", [Image.effect_noise((width, height), noise) for _ in range(3)])
    return ImageChops.add(base, noise, scale=1.0, offset=-128)


def jpeg(image: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def make_app(workdir: Path):
    import flask_migrate

    from recovery_app import create_app

    app = create_app(
        {
            "RECOVERY_ENV": "testing",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{workdir / 'bench.db'}",
            "SECRET_KEY": "bench-" + "x" * 40,
            "RECOVERY_VAULT_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
            "RECOVERY_INSTANCE_DIR": str(workdir / "instance"),
            "RECOVERY_UPLOAD_DIR": str(workdir / "uploads"),
            "RATELIMIT_ENABLED": False,
        }
    )
    with app.app_context(), contextlib.redirect_stderr(io.StringIO()):  # alembic's progress lines
        flask_migrate.upgrade()
    return app


def bench_pipeline(rounds: int) -> dict:
    from recovery_app.documents import pipeline, storage

    data = jpeg(photo_like(4000, 3000, noise=6), 90)
    with tempfile.TemporaryDirectory(prefix="bench-upload-") as tmp:
        app = make_app(Path(tmp))
        limits = pipeline.Limits.from_config(app.config)
        with app.app_context():

            def through_pipeline():
                clean = pipeline.clean(data, limits)
                staged = storage.stage(clean.data)
                storage.commit_staged([staged])

            def bare_pillow():
                with Image.open(io.BytesIO(data)) as image:
                    image.load()
                    out = io.BytesIO()
                    image.save(out, "JPEG", quality=pipeline.JPEG_QUALITY)

            through_pipeline(), bare_pillow()  # warm caches and imports
            ours, bare = [], []
            for _ in range(rounds):  # interleaved, so both see the same machine state
                start = time.perf_counter()
                through_pipeline()
                ours.append(time.perf_counter() - start)
                start = time.perf_counter()
                bare_pillow()
                bare.append(time.perf_counter() - start)
    return {
        "file_mb": len(data) / 1e6,
        "pipeline_median_ms": statistics.median(ours) * 1000,
        "pipeline_min_ms": min(ours) * 1000,
        "pillow_median_ms": statistics.median(bare) * 1000,
        "pillow_min_ms": min(bare) * 1000,
        "ratio_median": statistics.median(ours) / statistics.median(bare),
    }


def ten_mb_jpeg() -> bytes:
    """A 12-megapixel JPEG of just under 10 MB (noisy enough to be that large)."""
    image = photo_like(4000, 3000, noise=40)
    best = b""
    for quality in range(80, 99):
        data = jpeg(image, quality)
        if len(data) > 10 * 1024 * 1024:
            break
        best = data
    return best


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def memory_child(folder: Path) -> None:
    """Run in a fresh process: one real request opening a case with a 10 MB JPEG.
    The files are made by the parent, so that making them does not count."""
    from werkzeug.datastructures import FileStorage, MultiDict
    from werkzeug.test import encode_multipart

    from recovery_app.auth.sessions import PENDING_KEY
    from recovery_app.auth.users import create_user, get_or_create_account
    from recovery_app.extensions import db
    from recovery_app.models import Case
    from recovery_app.models.base import utcnow

    front, back, selfie = ((folder / f"{side}.jpg").read_bytes() for side in ("front", "back", "selfie"))
    with tempfile.TemporaryDirectory(prefix="bench-upload-") as tmp:
        app = make_app(Path(tmp))
        with app.app_context():
            account = get_or_create_account("Bench shop", utcnow())
            user = create_user(
                email="bench@example.test",
                password="x" * 20,
                role="seller_owner",
                account=account,
                now=utcnow(),
                check_password=False,
            )
            db.session.commit()
            user_id, epoch = user.id, user.session_epoch
        app.config["WTF_CSRF_ENABLED"] = False
        client = app.test_client()
        with client.session_transaction() as session:
            session[PENDING_KEY] = {"uid": user_id, "epoch": epoch, "at": utcnow().isoformat()}
        fields = MultiDict({"document_type": "drivers_licence", "consent": "y"})
        for side, data in (("front", front), ("back", back), ("selfie", selfie)):
            fields.add(side, FileStorage(io.BytesIO(data), filename=f"{side}.jpg", content_type="image/jpeg"))
        boundary, body = encode_multipart(fields)
        before = _status_mb("VmRSS")
        Path("/proc/self/clear_refs").write_text("5")  # Linux: restart the peak (VmHWM) from here
        start = time.perf_counter()
        response = client.post("/recovery/", data=body, content_type=f"multipart/form-data; boundary={boundary}")
        elapsed = time.perf_counter() - start
        peak = _status_mb("VmHWM")
        with app.app_context():
            stored = db.session.query(Case).count()
    print(
        json.dumps(
            {
                "status": response.status_code,
                "cases": stored,
                "front_mb": len(front) / 1e6,
                "body_mb": len(body) / 1e6,
                "request_s": elapsed,
                "rss_before_mb": before,
                "peak_rss_mb": peak,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--memory-child", metavar="FOLDER", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(Path(args.memory_child))
        return

    figures = bench_pipeline(args.rounds)
    print(f"12-megapixel JPEG, {figures['file_mb']:.1f} MB, {args.rounds} rounds each (interleaved):")
    print(
        f"  pipeline (type, decode, orient, re-encode, encrypt, store): median {figures['pipeline_median_ms']:.0f} ms"
        f", best {figures['pipeline_min_ms']:.0f} ms"
    )
    print(
        f"  bare Pillow decode + encode of the same file:              median {figures['pillow_median_ms']:.0f} ms"
        f", best {figures['pillow_min_ms']:.0f} ms"
    )
    print(f"  ratio pipeline / bare Pillow (medians): {figures['ratio_median']:.2f}")

    with tempfile.TemporaryDirectory(prefix="bench-files-") as folder:
        (Path(folder) / "front.jpg").write_bytes(ten_mb_jpeg())
        (Path(folder) / "back.jpg").write_bytes(jpeg(photo_like(1600, 1000, noise=6), 88))
        (Path(folder) / "selfie.jpg").write_bytes(jpeg(photo_like(1000, 1500, noise=5), 88))
        child = subprocess.run(
            [sys.executable, __file__, "--memory-child", folder], capture_output=True, text=True, check=True
        )
    memory = json.loads(child.stdout.strip().splitlines()[-1])
    print(
        f"One request opening a case with a {memory['front_mb']:.1f} MB JPEG front (body {memory['body_mb']:.1f} MB),"
        f" fresh process: HTTP {memory['status']}, {memory['cases']} case stored,"
        f" {memory['request_s'] * 1000:.0f} ms"
    )
    print(
        f"  resident memory before the request {memory['rss_before_mb']:.0f} MB; peak during it "
        f"{memory['peak_rss_mb']:.0f} MB (+{memory['peak_rss_mb'] - memory['rss_before_mb']:.0f} MB)"
    )


if __name__ == "__main__":
    main()
