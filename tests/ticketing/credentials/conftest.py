"""Face fixtures: the real dlib model on the staged photos, each photo encoded once per session."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tests.face_support import CachingEncoder
from ticketing.credentials.face import DlibFaceEncoder


@pytest.fixture(scope="session")
def faces_dir(shared_data: Path) -> Path:
    return shared_data / "faces"


@pytest.fixture(scope="session")
def dlib_encoder() -> DlibFaceEncoder:
    encoder = DlibFaceEncoder()
    encoder.load()
    return encoder


@pytest.fixture(scope="session")
def caching_encoder(dlib_encoder: DlibFaceEncoder) -> CachingEncoder:
    # Same settings as `calibrate`'s default encoder (WebP decoded too: a few staged
    # photos are WebP), so the full-set calibration test reproduces the module constant.
    return CachingEncoder(DlibFaceEncoder(allowed_formats=("JPEG", "PNG", "WEBP")))


@pytest.fixture(scope="session")
def face_bytes(faces_dir: Path) -> Callable[[str], bytes]:
    def read(rel: str) -> bytes:
        return (faces_dir / rel).read_bytes()

    return read


@pytest.fixture(scope="session")
def embed(caching_encoder: CachingEncoder, face_bytes: Callable[[str], bytes]) -> Callable[[str], np.ndarray]:
    """``embed("inspireface/kun.jpg")`` -> float32 (128,), computed once per session."""

    def run(rel: str) -> np.ndarray:
        return caching_encoder.encode(face_bytes(rel))

    return run
