"""The price of a context model with static tables: payload under optimally normalised
tables plus the tables' serialised bytes, exactly as the codec would normalise and store them.

The plug-in conditional entropies of `entropy.py` assume free, exact tables; this is the
achievable side of the same bound. It omits only the rANS step's rounding loss (under 0.005
bits/symbol) and the frame's fixed header, and it says nothing about whether the decoder
can know the contexts up front: scale buckets it can (rows are ranked by their stored
scales), per-row ids it can, previous symbols only with an adaptive decoder, which the codec's
static-context API does not offer today.
"""

from __future__ import annotations

import numpy as np

from pgolf_pack.rans import FrequencyTable, choose_precision

MIN_PRECISION = 8


def priced_bytes(counts: np.ndarray, *, choose: bool = True) -> dict:
    """Cost of coding a [contexts, K] histogram with one static table per used context.

    Args:
        counts: counts[c, i], one row per context.
        choose: pick the precision as the codec does (minimum expected frame size); False uses
            the lowest precision the alphabet allows, far cheaper with thousands of contexts,
            and near-optimal there since small tables favour low precision.

    Returns:
        {"payload_bytes", "table_bytes", "total_bytes", "tables", "precision"}.
    """
    c = np.ascontiguousarray(counts, dtype=np.uint64)
    if c.ndim == 1:
        c = c[None, :]
    used = c > 0
    live = list(c[used.any(axis=1)])
    if not live:
        return {"payload_bytes": 0.0, "table_bytes": 0, "total_bytes": 0.0, "tables": 0, "precision": 0}
    present = int(used.sum(axis=1).max())
    needed = max(MIN_PRECISION, int(np.ceil(np.log2(max(present, 2)))))
    precision = choose_precision(live) if choose else needed
    payload_bits, table_bytes = 0.0, 0
    for row in live:
        table = FrequencyTable.from_counts(row, precision=precision)
        payload_bits += table.cost_bits(row)
        table_bytes += table.serialized_size
    return {"payload_bytes": payload_bits / 8.0, "table_bytes": table_bytes,
            "total_bytes": payload_bits / 8.0 + table_bytes, "tables": len(live), "precision": precision}
