"""Is there a face? OpenCV's packaged frontal-face Haar cascade, nothing downloaded.

A face found says only that a face is there; whether it is the same person is
the reviewer's call. No face found is a "look closely", never a failure:
cascades miss faces that are tilted, small or badly lit.

Detection runs on a copy scaled to a 480-pixel long side: a face that matters
(on a document page or in a selfie) is at least a tenth of the short side, so
it keeps 30 pixels or more there, and the cascade has a tenth of the pixels
to scan. The contrast is stretched, not equalised: histogram equalisation of
a scan (mostly white paper) blew the faces on it out, and none was found.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

CASCADE = "haarcascade_frontalface_default.xml"
DETECT_SIDE = 480
SMALLEST_SHARE = 10  # the smallest face searched for: short side / 10


@lru_cache(maxsize=1)
def _cascade() -> cv2.CascadeClassifier:
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + CASCADE)
    if cascade.empty():
        raise RuntimeError(f"OpenCV's {CASCADE} could not be loaded")
    return cascade


def count_faces(gray: np.ndarray) -> int:
    height, width = gray.shape[:2]
    scale = min(1.0, DETECT_SIDE / max(height, width))
    if scale < 1.0:
        gray = cv2.resize(gray, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
    gray = cv2.normalize(gray, None, 0, 255, cv2.NORM_MINMAX)
    smallest = max(24, min(gray.shape[:2]) // SMALLEST_SHARE)
    found = _cascade().detectMultiScale(gray, scaleFactor=1.15, minNeighbors=5, minSize=(smallest, smallest))
    return len(found)
