"""Image quality: pixel size, sharpness, glare and darkness.

* Sharpness is the variance of the Laplacian on the image scaled to a
  1000-pixel long side, so a large photo and a small one are judged alike.
* Glare is the share of the image covered by the largest blown-out region
  (grey level 250 or more) that does not touch the border: a reflection sits
  on the document, while a scanner's white margin runs to the edge.
* Darkness is the mean grey level.

Thresholds come from ``RECOVERY_PRECHECK_*`` settings (see config.py for the
measurements behind them).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

MEASURE_SIDE = 1000
BLOWN_OUT = 250


@dataclass(frozen=True)
class Quality:
    width: int
    height: int
    sharpness: float
    glare: float
    brightness: float

    def as_dict(self) -> dict:
        return asdict(self)


def measure(gray: np.ndarray) -> Quality:
    height, width = gray.shape[:2]
    scale = MEASURE_SIDE / max(height, width)
    sized = cv2.resize(
        gray,
        (max(1, round(width * scale)), max(1, round(height * scale))),
        interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC,
    )
    sharpness = float(cv2.Laplacian(sized, cv2.CV_64F).var())
    return Quality(
        width=width,
        height=height,
        sharpness=round(sharpness, 1),
        glare=round(_glare_share(sized), 4),
        brightness=round(float(sized.mean()), 1),
    )


def _glare_share(gray: np.ndarray) -> float:
    mask = (gray >= BLOWN_OUT).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    height, width = gray.shape
    largest = 0
    for label in range(1, count):
        x, y, w, h, area = stats[label]
        if x == 0 or y == 0 or x + w == width or y + h == height:
            continue
        largest = max(largest, int(area))
    return largest / float(width * height)


def judge(quality: Quality, config) -> tuple[str, list[str]]:
    """``(verdict, reasons)``: fail when the image cannot serve, review when it is marginal."""
    fails, looks = [], []
    if quality.sharpness < config["RECOVERY_PRECHECK_SHARPNESS_FAIL"]:
        fails.append("blurred")
    elif quality.sharpness < config["RECOVERY_PRECHECK_SHARPNESS_REVIEW"]:
        looks.append("soft")
    if quality.glare >= config["RECOVERY_PRECHECK_GLARE_FAIL"]:
        fails.append("glare")
    elif quality.glare >= config["RECOVERY_PRECHECK_GLARE_REVIEW"]:
        looks.append("some_glare")
    if quality.brightness < config["RECOVERY_PRECHECK_DARK_FAIL"]:
        fails.append("too_dark")
    elif quality.brightness < config["RECOVERY_PRECHECK_DARK_REVIEW"]:
        looks.append("dim")
    if min(quality.width, quality.height) < config["RECOVERY_PRECHECK_MIN_SHORT_SIDE"]:
        looks.append("small")
    if fails:
        return "fail", fails + looks
    return ("review", looks) if looks else ("pass", [])
