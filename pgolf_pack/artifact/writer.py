"""Writing artifacts: each quantized tensor becomes a manifest record and its blobs, and
`encode_artifact` assembles them (docs/FORMAT.md). Which tables and encodings a tensor's
streams get is the coding policy's choice (`coding.py`); `decode_artifact` is the inverse."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from pgolf_pack import rans
from pgolf_pack.artifact import format as fmt
from pgolf_pack.artifact.coding import code_symbols, code_values, narrow_symbols
from pgolf_pack.errors import InputError
from pgolf_pack.quant import Quantized
from pgolf_pack.quant.scales import SCALE_EXPONENTS
from pgolf_pack.text import printable


@dataclass(frozen=True)
class EncodedTensor:
    """One tensor as the artifact stores it: scheme fields and blobs (its name goes in the record)."""

    name: str
    shape: tuple[int, ...]
    dtype: torch.dtype
    scheme_id: int
    fields: bytes  # the record's scheme fields (FORMAT.md section 4), blob sizes included
    blobs: tuple[bytes, ...]
    label: str  # the spec as text, for reports
    floor_bits: float  # order-0 entropy of what the blobs code (symbols and scale codes, or words)

    @property
    def blob_bytes(self) -> int:
        return sum(len(b) for b in self.blobs)

    def record(self, previous_name: str) -> bytes:
        """The manifest record, names front-coded against the previous record's name."""
        name = self.name.encode("utf-8")
        prev = previous_name.encode("utf-8")
        shared = 0
        while shared < min(len(name), len(prev)) and name[shared] == prev[shared]:
            shared += 1
        out = bytearray(fmt.varint(shared) + fmt.varint(len(name) - shared) + name[shared:])
        out += bytes([fmt.DTYPE_CODES[self.dtype], len(self.shape)])
        for d in self.shape:
            out += fmt.varint(d)
        out += bytes([self.scheme_id]) + self.fields
        return bytes(out)

    def cost(self, previous_name: str) -> int:
        """Bytes this tensor adds to an artifact: its record plus its blobs."""
        return len(self.record(previous_name)) + self.blob_bytes


def encode_tensor(name: str, q: Quantized, *, threads: int | None = None) -> EncodedTensor:
    """The record fields and blobs of one quantized (or value-stored) tensor. Refuses, with an
    InputError naming the tensor, anything a reader would reject (docs/FORMAT.md)."""
    fmt.check_name(name)
    if q.dtype not in fmt.DTYPE_CODES:
        raise InputError(f"tensor '{printable(name)}' has dtype {q.dtype}, which artifacts do not store")
    if len(q.shape) > fmt.MAX_DIMS:
        raise InputError(f"tensor '{printable(name)}' has {len(q.shape)} dimensions; artifacts store at most {fmt.MAX_DIMS}")
    if q.numel > fmt.MAX_TENSOR_ELEMENTS or max(q.shape, default=0) > fmt.MAX_TENSOR_ELEMENTS:
        raise InputError(f"tensor '{printable(name)}' has {q.numel:,} elements, over the format's {fmt.MAX_TENSOR_ELEMENTS:,} "
                         "per tensor; split it into several tensors")
    if q.passthrough is not None:
        return _encode_values(name, q, threads)
    _check_scales(name, q)
    symbols = narrow_symbols(q.symbols.cpu().numpy())
    sym_frame, groups, groups_frame = code_symbols(symbols, threads)
    floor = rans.order0_entropy_bits(symbols)
    if q.scale_codes is None:
        scale_blob = q.scales.to(torch.float16).view(torch.int16).cpu().numpy().astype("<i2").tobytes()
    else:
        codes = q.scale_codes.cpu().numpy()
        scale_blob = rans.encode(codes.astype(np.int16 if np.abs(codes).max(initial=0) < 32768 else np.int32))
        floor += rans.order0_entropy_bits(codes)
    fields = bytearray()
    if q.spec.scheme == "int":
        fields.append(q.spec.bits)
    fields += bytes([q.spec.scale_bits, groups]) + fmt.varint(len(sym_frame)) + fmt.varint(len(scale_blob))
    blobs = (sym_frame, scale_blob)
    if groups:
        fields += fmt.varint(len(groups_frame))
        blobs += (groups_frame,)
    return EncodedTensor(name, q.shape, q.dtype, q.spec.scheme_id, bytes(fields), blobs, str(q.spec), floor)


def _check_scales(name: str, q: Quantized) -> None:
    """Row scales a reader accepts: finite, and minifloat exponents of a normal float32."""
    if not bool(torch.isfinite(q.scales).all()):
        raise InputError(f"tensor '{printable(name)}' gets non-finite row scales under '{q.spec}' (NaN, Inf or huge values); "
                         "store it as raw")
    if q.scale_codes is not None and q.scale_codes.numel():
        exponent = q.scale_codes >> q.spec.scale_bits
        lo, hi = SCALE_EXPONENTS
        if int(exponent.min()) < lo or int(exponent.max()) > hi:
            raise InputError(f"tensor '{printable(name)}' gets row scales outside the stored range under '{q.spec}'; store it as raw")


def _encode_values(name: str, q: Quantized, threads: int | None) -> EncodedTensor:
    """A value scheme's record: its little-endian bytes, or their 16-bit words rANS-coded."""
    t = q.passthrough.detach().cpu().contiguous()
    size = t.element_size()
    raw = t.view(fmt.BIT_VIEWS[size]).numpy().astype(f"<{'u' if size == 1 else 'i'}{size}").tobytes() if t.numel() else b""
    word_coded, blob, floor = code_values(raw, size, t.numel(), threads)
    fields = bytes([fmt.ENCODING_RANS16 if word_coded else fmt.ENCODING_BYTES]) + fmt.varint(len(blob))
    return EncodedTensor(name, q.shape, q.dtype, q.spec.scheme_id, fields, (blob,), str(q.spec), floor)


def encode_artifact(tensors: list[EncodedTensor]) -> bytes:
    """The whole artifact (FORMAT.md section 1) for tensors in this order."""
    if len(tensors) > fmt.MAX_TENSORS:
        raise InputError(f"{len(tensors)} tensors exceed the format's limit of {fmt.MAX_TENSORS}")
    names = [t.name for t in tensors]
    if len(set(names)) != len(names):
        raise InputError("tensor names must be unique")
    manifest = bytearray(fmt.varint(len(tensors)))
    previous = ""
    for t in tensors:
        manifest += t.record(previous)
        previous = t.name
    out = bytearray(fmt.MAGIC) + bytes([fmt.VERSION]) + fmt.varint(len(manifest)) + manifest
    for t in tensors:
        for b in t.blobs:
            out += b
    out += rans.crc32c(bytes(out)).to_bytes(fmt.CRC_BYTES, "little")
    return bytes(out)
