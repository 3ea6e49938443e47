"""Is there a face? OpenCV's packaged frontal-face Haar cascade, nothing downloaded.

A face found says only that a face is there; whether it is the same person is
the reviewer's call. No face found is a "look closely", never a failure:
cascades miss faces that are tilted, small or badly lit.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

CASCADE = "haarcascade_frontalface_default.xml"
DETECT_SIDE = 1000


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
    gray = cv2.equalizeHist(gray)
    smallest = max(30, min(gray.shape[:2]) // 12)
    found = _cascade().detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(smallest, smallest))
    return len(found)
