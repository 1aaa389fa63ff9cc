"""The artifact format: every scheme roundtrips to the quantizer's own reconstruction exactly;
the bytes are deterministic; corrupted, truncated and hostile files fail with a message that
names the problem; writes are atomic."""

import struct

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from pgolf_pack import _rans
from pgolf_pack.artifact import decode_artifact, encode_artifact, encode_tensor, load_artifact
from pgolf_pack.files import write_atomic
from pgolf_pack.errors import CorruptDataError, InputError
from pgolf_pack.quant import QuantSpec, dequantize, quantize

SPECS = ["fp32", "fp16", "bf16", "int2:max", "int4:mse", "int6:std12.85", "int8:max:fp16", "pent", "tern:std2",
         "step:0.05", "step:0.7:s3", "step:0.01:fp16"]


def sample_tensors(seed=0):
    g = torch.Generator().manual_seed(seed)
    return {
        "emb.weight": (torch.randn(40, 24, generator=g) * 0.05).bfloat16(),
        "blocks.0.w": torch.randn(32, 48, generator=g) * 0.02,
        "blocks.0.conv": torch.randn(6, 2, 5, generator=g),
        "blocks.0.gain": torch.rand(48, generator=g) + 0.5,
        "blocks.1.w": torch.randn(16, 48, generator=g).half(),
        "scalar": torch.tensor(0.25),
        "ids": torch.arange(7, dtype=torch.int64),
        "mask": torch.tensor([True, False, True]),
        "f64": torch.randn(3, 3, generator=g, dtype=torch.float64),
    }


def pack(tensors, spec_of):
    out = []
    for name, t in tensors.items():
        spec = spec_of(name, t)
        out.append(encode_tensor(name, quantize(t, QuantSpec.parse(spec))))
    return encode_artifact(out)


@pytest.mark.parametrize("spec", SPECS)
def test_every_scheme_loads_back_exactly(spec):
    tensors = sample_tensors()

    def spec_of(name, t):
        if not t.is_floating_point() or t.dtype == torch.float64:
            return "raw"
        if t.dim() == 0:
            return "fp16" if spec not in ("fp32", "bf16") else spec
        return spec

    data = pack(tensors, spec_of)
    loaded = decode_artifact(data).tensors()
    assert list(loaded) == list(tensors)
    for name, t in tensors.items():
        s = spec_of(name, t)
        expected = t if s == "raw" else dequantize(quantize(t, QuantSpec.parse(s))).to(t.dtype)
        assert loaded[name].dtype == t.dtype and loaded[name].shape == t.shape
        assert torch.equal(loaded[name], expected), name


@given(st.integers(1, 40), st.integers(1, 70), st.sampled_from(SPECS), st.integers(0, 2**31 - 1),
       st.sampled_from([torch.float32, torch.bfloat16, torch.float16]))
def test_roundtrip_property(rows, cols, spec, seed, dtype):
    g = torch.Generator().manual_seed(seed)
    t = (torch.randn(rows, cols, generator=g) * torch.rand(rows, 1, generator=g)).to(dtype)
    data = pack({"t": t}, lambda n, x: spec)
    back = decode_artifact(data).tensors()["t"]
    assert torch.equal(back, dequantize(quantize(t, QuantSpec.parse(spec))).to(dtype))


def test_bytes_are_deterministic():
    a = pack(sample_tensors(), lambda n, t: "raw" if not t.is_floating_point() or t.dim() == 0 else "step:0.1")
    b = pack(sample_tensors(), lambda n, t: "raw" if not t.is_floating_point() or t.dim() == 0 else "step:0.1")
    assert a == b


def small_artifact():
    return pack({"w": torch.randn(8, 16) * 0.1, "b": torch.randn(16)}, lambda n, t: "int6:std12.85")


def test_truncation_at_every_offset_and_bit_flips_are_refused():
    data = small_artifact()
    for cut in range(len(data)):
        with pytest.raises(CorruptDataError):
            decode_artifact(data[:cut]).tensors()
    for pos in range(0, len(data), 3):
        bad = bytearray(data)
        bad[pos] ^= 0x10
        with pytest.raises(CorruptDataError):
            decode_artifact(bytes(bad)).tensors()


def reseal(body: bytes) -> bytes:
    return body + struct.pack("<I", _rans.crc32c(body))


def varint(v):  # written again on purpose: an oracle independent of pgolf_pack.artifact.format
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def manifest_file(records: bytes, count: int, blobs: bytes = b"") -> bytes:
    manifest = varint(count) + records
    return reseal(b"PGPK\x01" + varint(len(manifest)) + manifest + blobs)


@pytest.mark.parametrize(
    "data,message",
    [
        (b"", "not a pgolf-pack artifact"),
        (b"PGPK", "truncated"),
        (reseal(b"PGPK\x02\x01\x00"), "artifact version 2"),
        (small_artifact()[:-1] + b"\x00", "checksum mismatch"),
        (manifest_file(b"", 2), "truncated: the manifest ends inside field 'name_shared'"),
        (manifest_file(varint(0) + varint(1) + b"a" + b"\x63", 1), "unknown dtype code 99"),
        (manifest_file(varint(3) + varint(1) + b"a", 1), "shares 3 name bytes"),
        (manifest_file(varint(0) + varint(1) + b"\xff" + b"\x01\x00", 1), "not UTF-8"),
        (manifest_file(varint(0) + varint(1) + b"a\x01\x09" + b"\x01" * 9, 1), "9 dimensions exceed 8"),
        (manifest_file(varint(0) + varint(1) + b"a\x01\x01" + varint(1 << 40) + b"\x01\x00\x00", 1),
         "a dimension of .* exceeds the format's limit"),
        (manifest_file(varint(0) + varint(1) + b"a\x01\x01\x04\x63", 1), "unknown scheme id 99"),
        (manifest_file(varint(0) + varint(1) + b"a\x01\x01\x04\x01\x07\x10", 1), "unknown passthrough encoding 7"),
        (manifest_file(varint(0) + varint(1) + b"a\x01\x01\x04\x01\x00\x10", 1), "runs past the end"),
        (manifest_file(varint(0) + varint(1) + b"a\x01\x01\x04\x01\x00\x04", 1, b"\x00" * 6), "2 bytes follow the last blob"),
        (manifest_file(varint(0) + varint(1) + b"a\x01\x01\x04\x01\x00\x04" + b"zz", 1, b"\x00" * 4),
         "2 bytes follow the last manifest record"),
        (manifest_file(varint(0) + varint(1) + b"a\x01\x01\x04\x0a\x09\x05\x00\x00", 1), "k = 9"),
        (manifest_file(varint(0) + varint(1) + b"a\x01\x01\x04\x0d\x0b\x00\x00", 1), "scale format 11"),
        (manifest_file(varint(0) + varint(1) + b"a\x01\x01\x04\x0d\x05\x01\x00\x00", 1), "1 column groups"),
        (manifest_file(varint(0) + varint(1) + b"a\x01\x01\x04\x01\x00\x04" + varint(0) + varint(0) + b"\x01\x01\x04\x01\x00\x04", 2, b"\x00" * 8),
         "empty or repeated name"),
    ],
)
def test_malformed_files_name_the_problem(data, message):
    with pytest.raises(CorruptDataError, match=message):
        decode_artifact(data).tensors()


def test_bad_blob_contents_are_caught_with_the_tensor_named():
    # a quantized record whose symbols frame is fine but has the wrong shape
    from pgolf_pack import rans

    frame = rans.encode(np.zeros((3, 3), dtype=np.int8))
    scales = b"\x00\x3c" * 2  # two fp16 ones
    rec = varint(0) + varint(1) + b"w" + b"\x01\x02" + varint(2) + varint(4) + b"\x0a\x06\x00\x00" + varint(len(frame)) + varint(4)
    with pytest.raises(CorruptDataError, match=r"tensor 'w': symbols frame: limit exceeded: .* limit of 8 symbols"):
        decode_artifact(manifest_file(rec, 1, frame + scales)).tensors()
    frame = rans.encode(np.zeros((4, 2), dtype=np.int8))  # the right count in the wrong shape
    rec = varint(0) + varint(1) + b"w" + b"\x01\x02" + varint(2) + varint(4) + b"\x0a\x06\x00\x00" + varint(len(frame)) + varint(4)
    with pytest.raises(CorruptDataError, match=r"tensor 'w': symbols frame: holds int8\[4, 2\], expected integers of shape \[2, 4\]"):
        decode_artifact(manifest_file(rec, 1, frame + scales)).tensors()
    frame = rans.encode(np.full((2, 4), 40, dtype=np.int8))
    rec = varint(0) + varint(1) + b"w" + b"\x01\x02" + varint(2) + varint(4) + b"\x0a\x06\x00\x00" + varint(len(frame)) + varint(4)
    with pytest.raises(CorruptDataError, match=r"tensor 'w': symbols outside ±31 for scheme int6"):
        decode_artifact(manifest_file(rec, 1, frame + scales)).tensors()
    codes = rans.encode(np.array([5000, 0], dtype=np.int32))
    frame = rans.encode(np.zeros((2, 4), dtype=np.int8))
    rec = (varint(0) + varint(1) + b"w" + b"\x01\x02" + varint(2) + varint(4) + b"\x0d\x05\x00"
           + varint(len(frame)) + varint(len(codes)))
    with pytest.raises(CorruptDataError, match=r"scale exponent lies outside"):
        decode_artifact(manifest_file(rec, 1, frame + codes)).tensors()


def test_write_atomic_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "a.pgpk"
    write_atomic(target, b"ok")
    with pytest.raises(TypeError):
        write_atomic(target, 12345)  # not bytes: fails mid-write
    assert target.read_bytes() == b"ok"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pgpk"]
    with pytest.raises(InputError, match="does not exist"):
        write_atomic(tmp_path / "missing" / "x.pgpk", b"")


def test_load_artifact_from_disk(tmp_path):
    path = tmp_path / "m.pgpk"
    write_atomic(path, small_artifact())
    assert set(load_artifact(path)) == {"w", "b"}
    with pytest.raises(InputError, match="does not exist"):
        load_artifact(tmp_path / "nope.pgpk")


def test_written_files_get_umask_permissions(tmp_path):
    import os

    umask = os.umask(0o022)
    try:
        write_atomic(tmp_path / "p.pgpk", b"x")
    finally:
        os.umask(umask)
    assert (tmp_path / "p.pgpk").stat().st_mode & 0o777 == 0o644


def test_column_groups_roundtrip_and_bad_maps_are_caught():
    from pgolf_pack import rans

    g = torch.Generator().manual_seed(3)
    spread = torch.linspace(0.1, 3.0, 256)  # columns of very different spread: groups pay
    w = torch.randn(128, 256, generator=g) * spread
    q = quantize(w, QuantSpec.parse("step:0.3"))
    e = encode_tensor("w", q)
    assert len(e.blobs) == 3 and e.fields[1] in (2, 4, 8)
    data = encode_artifact([e])
    assert torch.equal(decode_artifact(data).tensors()["w"], dequantize(q))
    # a map with an id outside [0, G)
    bad_ids = rans.encode(np.full(256, 9, dtype=np.uint8))
    fields = e.fields[:2] + varint(len(e.blobs[0])) + varint(len(e.blobs[1])) + varint(len(bad_ids))
    rec = varint(0) + varint(1) + b"w" + b"\x01\x02" + varint(128) + varint(256) + b"\x0d" + fields
    with pytest.raises(CorruptDataError, match=r"column-group ids outside"):
        decode_artifact(manifest_file(rec, 1, e.blobs[0] + e.blobs[1] + bad_ids)).tensors()


def test_column_split_estimate_agrees_with_real_coding():
    """The writer encodes only the split its histogram estimate prefers: that split must be the
    one real coding finds smallest (up to table-size noise)."""
    from pgolf_pack import rans
    from pgolf_pack.artifact.coding import COLUMN_GROUPS, column_groups, most_promising_groups

    rng = np.random.default_rng(5)
    sym = (rng.standard_normal((96, 300)) * np.linspace(0.3, 4, 300)).round().astype(np.int8)
    g, ids = most_promising_groups(sym)
    assert g in COLUMN_GROUPS and np.array_equal(ids, column_groups(sym, g))
    real = {k: len(rans.encode(sym, contexts=np.tile(column_groups(sym, k).astype(np.uint16), 96)))
            + len(rans.encode(column_groups(sym, k))) for k in COLUMN_GROUPS}
    assert real[g] <= min(real.values()) * 1.002
    flat = rng.integers(-3, 4, (64, 64)).astype(np.int8)  # identical columns: no split pays
    assert most_promising_groups(flat)[0] == 0
