"""Constants of the artifact format; docs/FORMAT.md is the specification they mirror."""

from __future__ import annotations

import torch

MAGIC = b"PGPK"
VERSION = 1
MAX_TENSORS = 100_000
MAX_DIMS = 8
DEFAULT_MAX_ELEMENTS = 1 << 31  # per tensor (reader limit)

# Section 3, "Dtypes"
DTYPE_CODES: dict[torch.dtype, int] = {
    torch.float32: 1, torch.float16: 2, torch.bfloat16: 3, torch.float64: 4, torch.int8: 5,
    torch.uint8: 6, torch.int16: 7, torch.int32: 8, torch.int64: 9, torch.bool: 10,
}
CODE_DTYPES = {v: k for k, v in DTYPE_CODES.items()}

# Section 4, "Schemes" (quantized ids come from pgolf_pack.quant.spec.SCHEME_IDS)
RAW = 4
PASSTHROUGH_DTYPES = {1: torch.float32, 2: torch.float16, 3: torch.bfloat16}
ENCODING_BYTES = 0
ENCODING_RANS16 = 1

# Same-width integer views, for moving tensor bytes through numpy (which has no bfloat16).
BIT_VIEWS = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}
