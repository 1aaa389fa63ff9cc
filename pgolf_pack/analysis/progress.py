"""Execution helpers shared by the reports: progress hooks (the command line turns them into
tqdm bars) and the threading policy."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import torch

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


@contextmanager
def single_threaded_torch() -> Iterator[None]:
    """Run torch ops on one intra-op thread for the duration.

    The reports parallelise over tensors with their own thread pools; torch's intra-op threads
    on top oversubscribe the cores, and when another process holds a core each parallel op
    waits on its slow half: measured 6x more CPU time on a 2-core machine sharing a core.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
