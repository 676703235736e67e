"""Shared fixtures: where the real HC18 data is, and a clear skip when it is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

HC18_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "hc18"
HC18_CSV = HC18_DIR / "training_set_pixel_size_and_HC.csv"
HC18_IMAGES = HC18_DIR / "training_set"


@pytest.fixture(scope="session")
def hc18_dir() -> Path:
    """The real HC18 folder (../shared/data/hc18); tests needing it skip when it is not there."""
    if not HC18_CSV.is_file():
        pytest.skip(f"real HC18 data not found at {HC18_DIR} (present in CI, absent on a fresh user machine)")
    return HC18_DIR
