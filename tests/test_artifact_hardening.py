"""Crafted artifacts and checkpoints (issue #12): the reader's cost follows the record, not
what a frame or a field declares; what the writer accepts the reader reads; every bad input is
one InputError or CorruptDataError naming it. CRCs are recomputed after crafting."""

import json
import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pgolf_pack import rans
from pgolf_pack.analysis import analyze_artifact
from pgolf_pack.artifact import decode_artifact, encode_artifact, encode_tensor, load_artifact
from pgolf_pack.artifact import format as fmt
from pgolf_pack.checkpoint import load_state_dict
from pgolf_pack.cli import unpack as unpack_cli
from pgolf_pack.errors import CorruptDataError, InputError
from pgolf_pack.pack import pack_checkpoint
from pgolf_pack.planner import load_sensitivities
from pgolf_pack.quant import QuantSpec, quantize
from pgolf_pack.quant.spec import SCHEME_IDS


def seal(body: bytes) -> bytes:
    return body + rans.crc32c(body).to_bytes(4, "little")


def artifact(records: list[bytes], blobs: bytes) -> bytes:
    manifest = fmt.varint(len(records)) + b"".join(records)
    return seal(fmt.MAGIC + bytes([fmt.VERSION]) + fmt.varint(len(manifest)) + manifest + blobs)


def record(name: str, dtype: torch.dtype, shape, scheme: str, fields: bytes) -> bytes:
    n = name.encode()
    dims = b"".join(fmt.varint(d) for d in shape)
    return (fmt.varint(0) + fmt.varint(len(n)) + n + bytes([fmt.DTYPE_CODES[dtype], len(shape)]) + dims
            + bytes([SCHEME_IDS[scheme]]) + fields)


def peak_rss_mib(code: str) -> float:
    """Run `code` in a fresh interpreter; its peak RSS growth over the imports, in MiB."""
    script = textwrap.dedent(f"""
        import resource, torch, numpy, pgolf_pack.artifact
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        {code}
        print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return float(done.stdout.split()[-1])


# --- 1. memory bombs: nothing is allocated by a size the frame declares but the record does not

def word_coded_bomb(numel: int, dtype=torch.float32) -> bytes:
    frame = rans.encode(np.zeros(4, dtype=np.uint16), contexts=np.array([0, 1, 0, 1], dtype=np.uint16))
    return artifact([record("w", dtype, (numel,), "fp32" if dtype == torch.float32 else "raw",
                            bytes([fmt.ENCODING_RANS16]) + fmt.varint(len(frame)))], frame)


def column_group_bomb(rows: int) -> bytes:
    ids = rans.encode(np.array([0, 1], dtype=np.uint8))
    symbols = rans.encode(np.zeros((2, 2), dtype=np.int8))
    scales = rans.encode(np.zeros(2, dtype=np.int16))
    fields = bytes([5, 2]) + fmt.varint(len(symbols)) + fmt.varint(len(scales)) + fmt.varint(len(ids))
    return artifact([record("w", torch.float32, (rows, 2), "step", fields)], symbols + scales + ids)


@pytest.mark.parametrize("data", [word_coded_bomb(1 << 27), word_coded_bomb(1 << 26, torch.int64),
                                  column_group_bomb(1 << 26)], ids=["fp32-words", "int64-words", "column-groups"])
def test_declared_sizes_allocate_nothing_before_the_frame_agrees(tmp_path, data):
    with pytest.raises(CorruptDataError, match=r"tensor 'w': .*frame: holds .* expected integers of shape"):
        decode_artifact(data).tensors()
    path = tmp_path / "bomb.pgpk"
    path.write_bytes(data)
    grown = peak_rss_mib(f"""
        try:
            pgolf_pack.artifact.load_artifact({str(path)!r})
        except pgolf_pack.CorruptDataError:
            pass
    """)
    assert grown < 64, f"a {len(data)}-byte artifact made the reader grow by {grown:.0f} MiB"


# --- 3. output size: a total-elements cap, raisable

def zeros_artifact(rows=2048, cols=2048) -> bytes:
    return encode_artifact([encode_tensor("z", quantize(torch.zeros(rows, cols), QuantSpec.parse("step:0.1")))])


def test_total_elements_cap_refuses_huge_zero_tensors_and_can_be_raised(tmp_path, capsys):
    data = zeros_artifact()
    assert len(data) < 200  # four million zeros in a few dozen bytes
    with pytest.raises(CorruptDataError, match=r"more than 1,000,000 elements in all.*max-elements"):
        decode_artifact(data, max_elements=1_000_000)
    assert decode_artifact(data).tensors()["z"].shape == (2048, 2048)
    path = tmp_path / "z.pgpk"
    path.write_bytes(data)
    assert unpack_cli.main([str(path), "-o", str(tmp_path / "z.pt"), "--max-elements", "1000"]) == 2
    assert "more than 1,000 elements" in capsys.readouterr().err and not (tmp_path / "z.pt").exists()
    assert unpack_cli.main([str(path), "-o", str(tmp_path / "z.pt")]) == 0


def test_format_limits_per_tensor_and_per_dimension():
    over = artifact([record("w", torch.float32, (1 << 15, (1 << 13) + 1), "fp32", bytes([0]) + fmt.varint(0))], b"")
    with pytest.raises(CorruptDataError, match="elements exceed the format's limit"):
        decode_artifact(over)
    wide = artifact([record("w", torch.float32, (0, (1 << 64) - 1), "fp32", bytes([0]) + fmt.varint(0))], b"")
    with pytest.raises(CorruptDataError, match=r"a dimension of .* exceeds the format's limit"):
        decode_artifact(wide)
    rows = artifact([record("w", torch.float32, (1 << 28, 0), "step", bytes([5, 0, 0, 0]))], b"")
    with pytest.raises(CorruptDataError, match=r"more than 1,000 elements in all"):
        decode_artifact(rows, max_elements=1000)  # no elements, but 2^28 row scales to decode


# --- 4. written but unreadable: the writer enforces the reader's rules

def test_nan_and_inf_are_stored_exactly_or_refused_by_name():
    w = torch.randn(64, 64)
    w[3, 5], w[7, 1] = math.nan, math.inf
    sd = {"w": w, "v": torch.randn(32, 32)}
    r = pack_checkpoint(sd, 100_000)
    assert r.plan.specs["w"] == "raw"
    back = decode_artifact(r.data).tensors()["w"]
    assert torch.equal(back.isnan(), w.isnan()) and torch.equal(back.nan_to_num(), w.nan_to_num())
    with pytest.raises(InputError, match=r"tensor 'w' holds NaN or Inf values"):
        pack_checkpoint(sd, 100_000, specs_for=lambda n, t: ["step:0.1"])


def test_huge_finite_weights_pack_and_load():
    w = torch.randn(32, 32)
    w[0, 0] = 1e38
    r = pack_checkpoint({"w": w}, 5_000)
    assert r.total_bytes <= 5_000 and decode_artifact(r.data).tensors()["w"].shape == (32, 32)


@pytest.mark.parametrize("sd,message", [
    ({"": torch.zeros(2)}, "non-empty"),
    ({"a\ud800b": torch.zeros(2)}, "lone surrogate"),
    ({"u": torch.zeros(2, dtype=torch.uint16)}, "dtype uint16, which artifacts do not store"),
    ({"c": torch.zeros(2, dtype=torch.complex64)}, "dtype complex64"),
    ({"big": torch.zeros(1).expand(fmt.MAX_TENSOR_ELEMENTS + 1)}, "split it"),
])
def test_unstorable_state_dicts_are_refused_up_front(sd, message):
    with pytest.raises(InputError, match=message):
        pack_checkpoint(sd, 10**9)


def test_keys_that_collide_as_strings_are_refused(tmp_path):
    path = tmp_path / "dup.pt"
    torch.save({1: torch.zeros(2), "1": torch.ones(2)}, path)
    with pytest.raises(InputError, match="two tensors named '1'"):
        load_state_dict(path)


def test_non_finite_sensitivities_are_refused(tmp_path):
    path = tmp_path / "s.json"
    path.write_text('{"w": Infinity}')
    with pytest.raises(InputError, match="finite weights"):
        load_sensitivities(path)
    with pytest.raises(InputError, match="finite and >= 0"):
        pack_checkpoint({"w": torch.randn(8, 8)}, 10_000, sensitivities=[("w", math.inf)])


# --- 7 and 8: silent wrong results, and analysis that agrees with the loader

def test_bool_bytes_above_one_are_corrupt_and_analysis_agrees(tmp_path):
    data = artifact([record("m", torch.bool, (4,), "raw", bytes([0]) + fmt.varint(4))], bytes([0, 1, 2, 1]))
    with pytest.raises(CorruptDataError, match="tensor 'm': a bool value is stored as a byte above 1"):
        decode_artifact(data).tensors()
    path = tmp_path / "m.pgpk"
    path.write_bytes(data)
    with pytest.raises(CorruptDataError, match="byte above 1"):
        analyze_artifact(path, sample=None)


def test_analysis_runs_the_loaders_symbol_checks(tmp_path):
    symbols = rans.encode(np.full((2, 2), 3, dtype=np.int8))  # outside ternary's ±1
    scales = rans.encode(np.zeros(2, dtype=np.int16))
    fields = bytes([5, 0]) + fmt.varint(len(symbols)) + fmt.varint(len(scales))
    data = artifact([record("t", torch.float32, (2, 2), "tern", fields)], symbols + scales)
    path = tmp_path / "t.pgpk"
    path.write_bytes(data)
    for load in (lambda: load_artifact(path), lambda: analyze_artifact(path, sample=None)):
        with pytest.raises(CorruptDataError, match=r"tensor 't': symbols outside ±1"):
            load()


# --- whole-artifact fuzzing: mutate, recompute every CRC, load; only CorruptDataError

def reseal_all(data: bytearray, frames: list[tuple[int, int]]) -> bytes:
    for off, size in frames:
        if size >= 4 and off + size <= len(data) - 4:
            data[off + size - 4:off + size] = rans.crc32c(bytes(data[off:off + size - 4])).to_bytes(4, "little")
    return seal(bytes(data[:-4]))


def fuzz_seed() -> tuple[bytes, list[tuple[int, int]]]:
    g = torch.Generator().manual_seed(1)
    sd = {"emb": torch.randn(48, 40, generator=g).bfloat16(), "w": torch.randn(64, 96, generator=g) * torch.linspace(
        0.1, 3, 96), "g": torch.rand(40, generator=g), "ids": torch.arange(9), "m": torch.tensor([True, False])}
    data = pack_checkpoint(sd, 6_000).data
    return data, [blob for e in decode_artifact(data).entries for blob in e.blobs]


SEED = fuzz_seed()


@settings(max_examples=120)
@given(st.lists(st.tuples(st.integers(0, len(SEED[0]) - 5), st.integers(0, 255)), min_size=1, max_size=4),
       st.integers(0, len(SEED[0])))
def test_mutated_resealed_artifacts_raise_only_corrupt_data(mutations, cut):
    data = bytearray(SEED[0])
    for pos, value in mutations:
        data[pos] = value
    data = reseal_all(data, SEED[1])[:cut] if cut < 16 else reseal_all(data, SEED[1])
    try:
        decode_artifact(data, max_elements=1 << 20).tensors(threads=1)
    except CorruptDataError:
        pass


def test_written_artifacts_read_back_with_the_report_in_json(tmp_path):
    """Every artifact the packer writes loads; the pack report is plain JSON (no NaN)."""
    sd = {"w": torch.randn(40, 30), "b": torch.zeros(30), "s": torch.tensor(2.0), "i": torch.arange(5, dtype=torch.int16)}
    r = pack_checkpoint(sd, 8_000)
    assert list(decode_artifact(r.data).tensors()) == list(sd)
    json.dumps([t.to_dict() for t in r.tensors], allow_nan=False)


DTYPES = list(fmt.DTYPE_CODES)


@st.composite
def state_dicts(draw):
    names = draw(st.lists(st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12),
                          min_size=1, max_size=5, unique=True))
    sd = {}
    for name in names:
        dtype = draw(st.sampled_from(DTYPES))
        shape = tuple(draw(st.lists(st.integers(0, 40), min_size=0, max_size=3)))
        g = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
        t = torch.randn(shape, generator=g) * draw(st.sampled_from([1e-3, 1.0, 1e30]))
        if draw(st.booleans()) and t.numel():
            t.view(-1)[0] = draw(st.sampled_from([math.nan, math.inf, -math.inf, 0.0]))
        sd[name] = (t > 0) if dtype == torch.bool else t.to(dtype) if dtype.is_floating_point else \
            torch.randint(-100 if dtype != torch.uint8 else 0, 100, shape, generator=g, dtype=dtype)
    return sd


@settings(max_examples=40)
@given(state_dicts(), st.integers(200, 60_000))
def test_every_artifact_the_packer_writes_reads_back(sd, budget):
    """Random checkpoints (any stored dtype, empty and scalar tensors, NaN/Inf, huge values,
    Unicode names): pack_checkpoint either refuses with BudgetError or writes an artifact whose
    tensors load with the same names, shapes and dtypes, exact where stored as values."""
    from pgolf_pack.errors import BudgetError

    try:
        r = pack_checkpoint(sd, budget)
    except BudgetError:
        return
    back = decode_artifact(r.data).tensors()
    assert list(back) == list(sd)
    for name, t in sd.items():
        assert back[name].dtype == t.dtype and back[name].shape == t.shape, name
        if r.plan.specs[name] == "raw" or not t.is_floating_point():
            assert torch.equal(back[name].nan_to_num(), t.nan_to_num()) and torch.equal(back[name].isnan(), t.isnan())
