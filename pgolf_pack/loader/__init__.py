"""The submission loader: `standalone.py` decodes artifacts with numpy and torch only, so it can
ship inside a submission's counted code; `compact_loader()` is its one-line counted form."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

STANDALONE = Path(__file__).with_name("standalone.py")


def loader_source() -> str:
    """The standalone loader's source, exactly as it ships."""
    return STANDALONE.read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def compact_loader() -> bytes:
    """The loader as one `load_pgpk = ...exec(...)` line (newline included): the counted bytes."""
    import numpy as np
    import torch

    from pgolf_pack.loader.minify import compact

    # every attribute name an outside object could be asked for keeps its name
    foreign = set().union(*(dir(o) for o in (np, torch, np.ndarray, torch.Tensor, torch.float32, memoryview, bytes,
                                             list, dict, set, int, np.uint32, np.ufunc)))
    return compact(loader_source(), "load_pgpk", foreign)
