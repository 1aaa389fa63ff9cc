"""QuantSpec: how one tensor is stored, written as a short string such as "int6:std12.85".

Grammar (docs/FORMAT.md lists the stable ids the artifact stores for each scheme):

    fp32 | fp16 | bf16                        exact passthrough in that dtype (float tensors)
    raw                                       the tensor's own dtype and bytes (any dtype)
    int<K>[:<clip>][:<scale>]                 K = 2..8, symbols in [-(2^(K-1)-1), 2^(K-1)-1]
    pent[:<clip>][:<scale>]                   pentanary, symbols in {-2..2}
    tern[:<clip>][:<scale>]                   ternary, symbols in {-1, 0, 1} (same grid as int2)
    step:<k>[:<scale>]                        step = k * row std; integers unbounded (|q| <= 32767)

    clip  = max | std<k> | mse                row max, k * row std (the records' "SDClip"), or the
                                              per-row clip with the least squared error
    scale = fp16 | s<B>                       per-row scales as fp16, or as minifloats with B = 1..10
                                              mantissa bits, entropy-coded (default s5)

With rANS behind the quantizer the grid's width k costs nothing by itself: the step size sets
the rate, so "step" (no clamping at all) is usually the best scheme per byte; the clamped ones
exist for compatibility with what competitors know and for QAT.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from pgolf_pack.errors import InputError

DEFAULT_SCALE_BITS = 5
STEP_QMAX = 32767  # keeps any step's symbols inside the codec's 65,536-symbol alphabet


@dataclass(frozen=True)
class Scheme:
    """One way an artifact stores a tensor: the single home of its name, stable id and rules.

    A *value* scheme stores the tensor's values exactly (in `value_dtype`, or in the tensor's
    own dtype for `raw`); a quantized one stores integer symbols in [-qmax, qmax] per row
    times a per-row scale (`qmax` of int-k depends on k, see `QuantSpec.qmax`).
    """

    name: str
    id: int  # stored in artifacts (docs/FORMAT.md, "Schemes"); never reuse a retired id
    stores_values: bool
    value_dtype: torch.dtype | None = None  # passthrough dtype; None for raw (the tensor's own)
    qmax: int = 0  # quantized: largest symbol magnitude (0 for int-k: it depends on k)
    clamped: bool = False  # quantized with a clip (int-k, pent, tern), as opposed to step

    @property
    def float_only(self) -> bool:
        """Whether only floating-point tensors may use it (everything but raw)."""
        return self.name != "raw"


SCHEMES: tuple[Scheme, ...] = (
    Scheme("fp32", 1, True, torch.float32),
    Scheme("fp16", 2, True, torch.float16),
    Scheme("bf16", 3, True, torch.bfloat16),
    Scheme("raw", 4, True),
    Scheme("int", 10, False, clamped=True),
    Scheme("pent", 11, False, qmax=2, clamped=True),
    Scheme("tern", 12, False, qmax=1, clamped=True),
    Scheme("step", 13, False, qmax=STEP_QMAX),
)
SCHEME_BY_NAME: dict[str, Scheme] = {s.name: s for s in SCHEMES}
SCHEME_BY_ID: dict[int, Scheme] = {s.id: s for s in SCHEMES}
SCHEME_IDS: dict[str, int] = {s.name: s.id for s in SCHEMES}
PASSTHROUGH = tuple(s.name for s in SCHEMES if s.stores_values and s.value_dtype is not None)  # fp32 fp16 bf16
CLAMPED = tuple(s.name for s in SCHEMES if s.clamped)

_CLIP = re.compile(r"^(max|mse|std(\d+(\.\d+)?|\.\d+))$")
_SCALE = re.compile(r"^(fp16|s(\d+))$")


@dataclass(frozen=True)
class QuantSpec:
    """One tensor's storage choice. Build with `QuantSpec.parse("int6:std12.85")`."""

    scheme: str  # a name in SCHEMES: fp32 | fp16 | bf16 | raw | int | pent | tern | step
    bits: int = 0  # int-k only
    clip: str = "max"  # max | std | mse (clamped schemes)
    k: float = 0.0  # std multiplier: clip = k*std (clamped) or step = k*std (step)
    scale_bits: int = DEFAULT_SCALE_BITS  # 0 = fp16 scales

    def __post_init__(self) -> None:
        if self.scheme not in SCHEME_IDS:
            raise InputError(f"unknown quantization scheme '{self.scheme}' (use {', '.join(SCHEME_IDS)})")
        if self.scheme == "int" and not 2 <= self.bits <= 8:
            raise InputError(f"int-k needs k in 2..8, got {self.bits}")
        if self.scheme in CLAMPED and self.clip not in ("max", "std", "mse"):
            raise InputError(f"unknown clip '{self.clip}' (use max, std<k> or mse)")
        if (self.clip == "std" or self.scheme == "step") and not self.k > 0:
            raise InputError(f"{self.scheme} needs a positive std multiplier, got {self.k}")
        if not 0 <= self.scale_bits <= 10:
            raise InputError(f"scale mantissa bits must be in 1..10 (or fp16), got {self.scale_bits}")

    @classmethod
    def parse(cls, text: str) -> QuantSpec:
        """Parse the grammar in the module docstring; raises InputError naming the bad part."""
        parts = text.strip().lower().split(":")
        head, rest = parts[0], parts[1:]
        if head in SCHEME_BY_NAME and SCHEME_BY_NAME[head].stores_values:
            if rest:
                raise InputError(f"'{text}': passthrough schemes take no options")
            return cls(head)
        scale_bits = DEFAULT_SCALE_BITS
        if rest and _SCALE.match(rest[-1]):
            m = _SCALE.match(rest.pop())
            scale_bits = 0 if m.group(1) == "fp16" else int(m.group(2))
        if head == "step":
            if len(rest) != 1:
                raise InputError(f"'{text}': write a step as step:<k>, k = step in row standard deviations")
            return cls("step", k=_float(rest[0], text), scale_bits=scale_bits)
        m = re.match(r"^(int)(\d)$|^(pent|tern)$", head)
        if not m:
            raise InputError(f"'{text}': unknown scheme '{head}' (fp32, fp16, bf16, raw, int2..int8, pent, tern, step)")
        scheme, bits = (m.group(1), int(m.group(2))) if m.group(1) else (m.group(3), 0)
        clip, k = ("mse" if scheme in ("pent", "tern") else "max"), 0.0
        if rest:
            c = rest.pop(0)
            if not _CLIP.match(c):
                raise InputError(f"'{text}': unknown clip '{c}' (max, std<k>, mse)")
            clip, k = ("std", _float(c[3:], text)) if c.startswith("std") else (c, 0.0)
        if rest:
            raise InputError(f"'{text}': unexpected '{':'.join(rest)}'")
        return cls(scheme, bits=bits, clip=clip, k=k, scale_bits=scale_bits)

    def __str__(self) -> str:
        if self.is_passthrough:
            return self.scheme
        scale = "fp16" if self.scale_bits == 0 else f"s{self.scale_bits}"
        if self.scheme == "step":
            return f"step:{self.k:g}:{scale}"
        clip = f"std{self.k:g}" if self.clip == "std" else self.clip
        name = f"int{self.bits}" if self.scheme == "int" else self.scheme
        return f"{name}:{clip}:{scale}"

    @property
    def kind(self) -> Scheme:
        return SCHEME_BY_NAME[self.scheme]

    @property
    def is_passthrough(self) -> bool:
        """Stored as exact values (fp32, fp16, bf16 or raw), not as symbols and scales."""
        return self.kind.stores_values

    @property
    def qmax(self) -> int:
        """Largest symbol magnitude: 2^(k-1)-1 for int-k, 2 pentanary, 1 ternary, 32767 step."""
        return symbol_limit(self.scheme, self.bits)

    @property
    def scheme_id(self) -> int:
        return self.kind.id


def symbol_limit(scheme: str, bits: int = 0) -> int:
    """The largest |symbol| a quantized scheme stores (0 for value schemes)."""
    return (1 << (bits - 1)) - 1 if scheme == "int" else SCHEME_BY_NAME[scheme].qmax


def _float(text: str, spec: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise InputError(f"'{spec}': '{text}' is not a number") from None
