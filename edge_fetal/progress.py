"""A progress bar on stderr for long loops (tqdm), quiet when output is not a terminal."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")


def progress(items: Iterable[T], total: int | None = None, label: str = "") -> Iterator[T]:
    """Iterate `items` with a progress bar (disabled when stderr is not a terminal)."""
    yield from tqdm(items, total=total, desc=label, file=sys.stderr, disable=not sys.stderr.isatty(), leave=False)
