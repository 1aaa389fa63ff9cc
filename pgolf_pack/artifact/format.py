"""The artifact container's facts in one place: constants, varints, and the sizes of the bytes
around the records and blobs. docs/FORMAT.md is the specification they mirror; scheme ids live
with the schemes (`pgolf_pack.quant.spec.SCHEMES`)."""

from __future__ import annotations

import torch

from pgolf_pack.errors import InputError

MAGIC = b"PGPK"
VERSION = 1
MAX_TENSORS = 100_000
MAX_DIMS = 8
MAX_TENSOR_ELEMENTS = 1 << 28  # per tensor: the codec's frame limit (rans.DEFAULT_MAX_SYMBOLS); writers refuse more
# Total elements a reader decodes by default: ~1 GiB of float32, several times what any 16 MB
# artifact of a real model holds. Valid frames code all-zero tensors in almost no bytes, so
# without a cap a tiny artifact could ask for any amount of memory; callers raise it on purpose.
DEFAULT_MAX_ELEMENTS = 1 << 28
CRC_BYTES = 4

# Section 3, "Dtypes"
DTYPE_CODES: dict[torch.dtype, int] = {
    torch.float32: 1, torch.float16: 2, torch.bfloat16: 3, torch.float64: 4, torch.int8: 5,
    torch.uint8: 6, torch.int16: 7, torch.int32: 8, torch.int64: 9, torch.bool: 10,
}
CODE_DTYPES = {v: k for k, v in DTYPE_CODES.items()}

# Section 4, value schemes: how the values' bytes are stored
ENCODING_BYTES = 0
ENCODING_RANS16 = 1

# Same-width integer views, for moving tensor bytes through numpy (which has no bfloat16).
BIT_VIEWS = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def varint(v: int) -> bytes:
    """LEB128: 7 bits per byte, low first, high bit = more bytes follow (section 2)."""
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def varint_len(v: int) -> int:
    """len(varint(v)) without building it."""
    n = 1
    while v >= 0x80:
        v >>= 7
        n += 1
    return n


def header_bytes(manifest_bytes: int) -> int:
    """Magic, version and the manifest's length (section 1)."""
    return len(MAGIC) + 1 + varint_len(manifest_bytes)


def container_bytes(record_bytes: list[int]) -> dict[str, int]:
    """The bytes of an artifact outside its records and blobs, given each record's size:
    header, record count and CRC (section 1)."""
    count = varint_len(len(record_bytes))
    header = header_bytes(count + sum(record_bytes))
    return {"header_bytes": header, "count_bytes": count, "crc_bytes": CRC_BYTES,
            "records_bytes": sum(record_bytes), "total_bytes": header + count + CRC_BYTES}


def container_bound(count: int) -> int:
    """An upper bound on container_bytes(...)["total_bytes"] for `count` records whose
    manifest is under 256 MiB (a 4-byte length varint)."""
    return len(MAGIC) + 1 + 4 + varint_len(count) + CRC_BYTES


def check_name(name: str) -> None:
    """A tensor name an artifact can hold: non-empty, encodable as UTF-8 (no lone surrogates)."""
    if not isinstance(name, str) or not name:
        raise InputError(f"tensor names must be non-empty strings, got {name!r}")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"tensor name {name!r} is not valid Unicode (a lone surrogate); rename it") from None
