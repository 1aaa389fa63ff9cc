"""Per-row scales in the forms an artifact stores: fp16, or minifloat codes.

A minifloat with B mantissa bits represents s = (1 + j / 2^B) * 2^E, j in [0, 2^B), E any
exponent of a normal float32; its code is the integer E * 2^B + j, which grows with s, so the
codes of one tensor's rows are a narrow band of integers that the rANS coder stores in a few
bits each (a log grid of 2^B steps per octave). Both directions work on the IEEE-754 bits
(round to nearest, ties to even), so every device computes the same scales; and because a
scale has at most B + 1 significant bits, symbol * scale is exact in float32 for
|symbol| < 2^(23 - B).
"""

from __future__ import annotations

import torch

MIN_SCALE = 2.0**-40  # all-zero rows get this scale; their symbols are all 0 anyway
MAX_SCALE = 2.0**40
SCALE_EXPONENTS = (-126, 127)  # a minifloat code's exponent E: a normal float32's (readers check it)


def round_scales(scales: torch.Tensor, scale_bits: int) -> tuple[torch.Tensor | None, torch.Tensor]:
    """(codes, exact float32 scales) nearest to `scales` (> 0); codes is None for fp16 scales."""
    s = scales.float().clamp(MIN_SCALE, MAX_SCALE)
    if scale_bits == 0:
        return None, s.to(torch.float16).float()
    bits = s.view(torch.int32).to(torch.int64)
    exponent = (bits >> 23) - 127
    mantissa = bits & 0x7FFFFF
    shift = 23 - scale_bits
    j = mantissa >> shift
    rem = mantissa & ((1 << shift) - 1)
    half = 1 << (shift - 1)
    j = j + ((rem > half) | ((rem == half) & (j & 1 == 1))).to(torch.int64)  # ties to even
    codes = (exponent << scale_bits) + j  # j == 2^B carries into the exponent by itself
    return codes, decode_scales(codes, scale_bits)


def decode_scales(codes: torch.Tensor, scale_bits: int) -> torch.Tensor:
    """Exact float32 scales of minifloat codes (see the module docstring)."""
    codes = codes.to(torch.int64)
    exponent = codes >> scale_bits  # arithmetic shift: floor division for negative codes
    j = codes - (exponent << scale_bits)
    bits = ((exponent + 127) << 23) | (j << (23 - scale_bits))
    return bits.to(torch.int32).view(torch.float32)
