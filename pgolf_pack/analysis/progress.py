"""Progress hooks: the reports call them, the command line turns them into tqdm bars."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

Progress = Callable[[str, int, str], Any]  # (description, total, unit) -> object with update(n) and close()


def locked_update(bar: Any, lock: threading.Lock) -> None:
    """Advance a bar by one from any thread."""
    with lock:
        bar.update(1)


def ticking(items: Iterable, bar: Any) -> Iterator:
    """Yield `items`, advancing `bar` after each."""
    for item in items:
        bar.update(1)
        yield item
