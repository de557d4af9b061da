"""Face test helpers: the real dlib encoder with a process-wide cache, photos as base64, enrolment over HTTP.

Every photo of ``shared/data/faces`` is encoded at most once per test process,
whatever the number of tests and backends that use it.
"""

from __future__ import annotations

import base64
import hashlib
import io
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ticketing.credentials.face import DlibFaceEncoder


class CachingEncoder:
    """A `FaceEncoder` that remembers embeddings (and refusals) by image digest; counts real encodes."""

    def __init__(self, inner: DlibFaceEncoder) -> None:
        self.inner = inner
        self.model_version = inner.model_version
        self.calls = 0
        self._cache: dict[str, np.ndarray | Exception] = {}

    def encode(self, image_bytes: bytes) -> np.ndarray:
        key = hashlib.sha256(image_bytes).hexdigest()
        if key not in self._cache:
            self.calls += 1
            try:
                self._cache[key] = self.inner.encode(image_bytes)
            except Exception as exc:  # noqa: BLE001 - cached and re-raised as is
                self._cache[key] = exc
        value = self._cache[key]
        if isinstance(value, Exception):
            raise value
        return value.copy()

    def distance(self, a: np.ndarray, b: np.ndarray) -> float:
        return self.inner.distance(a, b)


_ENCODER: CachingEncoder | None = None


def caching_encoder() -> CachingEncoder:
    global _ENCODER
    if _ENCODER is None:
        _ENCODER = CachingEncoder(DlibFaceEncoder())
    return _ENCODER


def photo(shared_data: Path, rel: str) -> bytes:
    return (shared_data / "faces" / rel).read_bytes()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def photo_b64(shared_data: Path, rel: str) -> str:
    return b64(photo(shared_data, rel))


def blank_png() -> bytes:
    """A grey picture with no face in it."""
    out = io.BytesIO()
    Image.new("RGB", (320, 240), (128, 128, 128)).save(out, format="PNG")
    return out.getvalue()


def enrol(client: Any, headers: dict[str, str], traveler_id: str, image_b64: str, consent: Any = True) -> Any:
    body: dict[str, Any] = {"image": image_b64}
    if consent is not None:
        body["consent"] = consent
    return client.post(f"/v1/travelers/{traveler_id}/face", headers=headers, json=body)

