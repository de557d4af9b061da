"""Shared test fixtures.

Real public feeds and face photos live in ``../shared/data`` beside the
repository (or wherever ``MAAS_SHARED_DATA`` points); they are never copied
into the repository.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MAAS_SHARED_DATA", REPO_ROOT.parent / "shared" / "data")).resolve()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The directory of real feeds and photos (see its README)."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"shared test data not found at {SHARED_DATA}; set MAAS_SHARED_DATA")
    return SHARED_DATA
