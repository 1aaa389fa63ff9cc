"""The standalone submission loader: bit-identical to load_artifact over random state dicts,
schemes, scale formats, column groups, lane counts and chunkings; the same accept/reject
decision as the native reader and the pure-Python oracle on mutated artifacts; and the counted
one-line form runs in a fresh interpreter where pgolf_pack cannot be imported."""

import ast
import json
import struct
import subprocess
import sys
from unittest import mock

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from pgolf_pack import _rans, rans
from pgolf_pack import _reference as ref
from pgolf_pack.artifact import EncodedTensor, decode_artifact, encode_artifact, encode_tensor
from pgolf_pack.artifact.format import varint
from pgolf_pack.cli import loader as loader_cli
from pgolf_pack.cli import pack as pack_cli
from pgolf_pack.errors import CorruptDataError
from pgolf_pack.loader import STANDALONE, compact_loader, loader_source
from pgolf_pack.loader.standalone import crc32c, load_pgpk
from pgolf_pack.quant import QuantSpec, quantize

SPECS = ["fp32", "fp16", "bf16", "int2:max", "int3:mse", "int4:mse", "int5:max:s2", "int6:std12.85", "int7:max:s10",
         "int8:max:fp16", "pent", "tern:std2", "step:0.05", "step:0.7:s3", "step:0.01:fp16", "step:0.3:s1"]


def same(a: dict, b: dict) -> bool:
    """Same names, order, dtypes, shapes and bits."""
    if list(a) != list(b):
        return False
    for k in a:
        x, y = a[k], b[k]
        if x.dtype != y.dtype or x.shape != y.shape:
            return False
        if x.numel() and not torch.equal(x.reshape(-1).view(torch.uint8), y.reshape(-1).view(torch.uint8)):
            return False
    return True


def encode(name, t, spec):
    return encode_tensor(name, quantize(t, QuantSpec.parse(spec)))


def reframe(e: EncodedTensor, lanes: int, chunk: int) -> EncodedTensor:
    """The same tensor with every frame re-encoded with `lanes` lanes and `chunk`-symbol chunks."""
    def again(blob, contexts=None):
        values = rans.decode(blob, contexts=contexts)
        return rans.encode(values, contexts=contexts, lanes=lanes, chunk_size=chunk)

    f = e.fields
    if e.scheme_id < 5:
        if f[0] == 0:
            return e
        item = e.dtype.itemsize if e.scheme_id == 4 else {1: 4, 2: 2, 3: 2}[e.scheme_id]
        words = int(np.prod(e.shape)) * item // 2
        ctx = np.arange(words) % (item // 2) if item > 2 else None  # one word table per position in an item
        blob = again(e.blobs[0], ctx)
        return EncodedTensor(e.name, e.shape, e.dtype, e.scheme_id, f[:1] + varint(len(blob)), (blob,), e.label, 0)
    head = f[:3] if e.scheme_id == 10 else f[:2]
    scale_format, groups = head[-2], head[-1]
    rows = e.shape[0] if len(e.shape) > 1 else 1
    blobs = list(e.blobs)
    ctx = None
    if groups:
        ids = rans.decode(blobs[2])
        ctx = np.tile(ids.astype(np.uint16), rows)
        blobs[2] = again(blobs[2])
    blobs[0] = again(blobs[0], ctx)
    if scale_format:
        blobs[1] = again(blobs[1])
    fields = head + b"".join(varint(len(b)) for b in blobs)
    return EncodedTensor(e.name, e.shape, e.dtype, e.scheme_id, fields, tuple(blobs), e.label, 0)


def grouped_tensor(seed=0):
    """A matrix whose columns differ in spread, so the writer codes it with column groups."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(64, 128, generator=g) * torch.linspace(0.1, 3.0, 128)


@st.composite
def state_dicts(draw):
    """A few tensors of random shapes, dtypes and specs (raw for non-float tensors)."""
    seed = draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    out = {}
    for i in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["matrix", "vector", "scalar", "cube", "int", "bool", "grouped"]))
        dtype = draw(st.sampled_from([torch.float32, torch.float16, torch.bfloat16, torch.float64]))
        if kind == "matrix":
            t = torch.randn(draw(st.integers(0, 40)), draw(st.integers(1, 90)), generator=g)
        elif kind == "vector":
            t = torch.randn(draw(st.integers(1, 300)), generator=g)
        elif kind == "scalar":
            t = torch.randn((), generator=g)
        elif kind == "cube":
            t = torch.randn(3, draw(st.integers(1, 5)), 7, generator=g)
        elif kind == "grouped":
            t = grouped_tensor(seed)
        elif kind == "int":
            idtype = draw(st.sampled_from([torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8]))
            low = 0 if idtype == torch.uint8 else -100
            t = torch.randint(low, low + 200, (draw(st.integers(0, 50)),), generator=g).to(idtype)
        else:
            t = torch.rand(draw(st.integers(0, 20)), generator=g) > 0.5
        if t.is_floating_point():
            t = (t * draw(st.sampled_from([1e-3, 0.05, 1.0, 300.0]))).to(dtype)
            spec = draw(st.sampled_from(SPECS + ["raw"]))
            if (t.dim() == 0 or not t.numel()) and spec not in ("fp32", "fp16", "bf16", "raw"):
                spec = "fp16"
        else:
            spec = "raw"
        out[f"layer.{i}.{kind}"] = (t, spec)
    return out


@given(state_dicts(), st.sampled_from([4, 8, 16, 32, 64]), st.sampled_from([1, 7, 64, 333, 1 << 22]))
def test_loader_equals_load_artifact_bit_for_bit(tensors, lanes, chunk):
    encoded = [reframe(encode(n, t, s), lanes, chunk) for n, (t, s) in tensors.items()]
    data = encode_artifact(encoded)
    assert same(load_pgpk(data), decode_artifact(data).tensors())


def test_writer_output_covers_every_scheme_and_format():
    """One artifact as the writer makes it, with every scheme, both scale formats, column groups
    and 16-bit word coding: the loader gives load_artifact's tensors."""
    g = torch.Generator().manual_seed(1)
    parts = [encode(f"t{i}", torch.randn(24, 40, generator=g) * 0.1, s) for i, s in enumerate(SPECS)]
    parts.append(encode("grouped", grouped_tensor(), "step:0.3"))
    parts.append(encode("emb", (torch.randn(256, 64, generator=g) * 0.05).bfloat16(), "bf16"))
    parts.append(encode("wide", (torch.randn(64, 48, generator=g) * 0.05).bfloat16(), "fp32"))  # two word tables
    parts.append(encode("ids", torch.arange(-5, 70, dtype=torch.int64), "raw"))
    parts.append(encode("mask", torch.tensor([True, False, True]), "raw"))
    entries = decode_artifact(encode_artifact(parts)).entries
    assert {e.column_groups > 0 for e in entries} == {True, False}
    assert {(e.scheme, e.encoding) for e in entries} >= {("bf16", 1), ("fp32", 1), ("raw", 0)} and {e.scale_format for e in entries} >= {0, 1, 2, 3, 5, 10}
    data = encode_artifact(parts)
    assert same(load_pgpk(data), decode_artifact(data).tensors())


def test_crc32c_matches_the_codec_at_every_length():
    rng = np.random.default_rng(0)
    for n in [0, 1, 3, 255, 256, 257, 1000, 65536, 65537, 300_001]:
        b = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        assert crc32c(b) == _rans.crc32c(b) == (ref.crc32c(b) if n < 70_000 else _rans.crc32c(b))


# --- accept/reject agreement on mutated artifacts ------------------------------------------

def reseal(body: bytes) -> bytes:
    return body + struct.pack("<I", _rans.crc32c(body))


def oracle_tensors(data: bytes):
    """load_artifact's tensors with every frame decoded by the pure-Python reference coder."""
    def decode(blob, *, contexts=None, max_symbols=1 << 28, **_):
        return ref.decode(bytes(blob), contexts=contexts, max_symbols=max_symbols)

    with mock.patch.object(rans, "decode", decode):
        return decode_artifact(data).tensors(threads=1)


def verdicts(data: bytes):
    """(native, oracle, loader): each the decoded tensors, or None for a refusal."""
    out = []
    for load in (lambda d: decode_artifact(d).tensors(), oracle_tensors, load_pgpk):
        try:
            out.append(load(data))
        except CorruptDataError:
            out.append(None)
        except ValueError as e:  # the loader's refusals are plain ValueErrors
            assert load is load_pgpk, e
            out.append(None)
    return out


def mutation_base():
    g = torch.Generator().manual_seed(5)
    return [
        reframe(encode("a.w", torch.randn(6, 20, generator=g) * 0.1, "int4:mse"), 4, 50),
        reframe(encode("a.g", grouped_tensor(2)[:, :64], "step:0.4"), 8, 1000),
        encode("b.s", torch.randn(9, 11, generator=g), "step:0.3:fp16"),
        encode("c.e", (torch.randn(40, generator=g) * 0.05).half(), "fp16"),
        encode("d.f", torch.randn(5, 3, generator=g), "fp32"),
        encode("e.i", torch.arange(12, dtype=torch.int32), "raw"),
        word_coded("f.e", (torch.randn(12, 10, generator=g) * 0.05).bfloat16(), 3, 16, 50),
        word_coded("g.w", torch.randint(1, 9, (7, 9), generator=g) * 0.25, 1, 4, 40),  # narrow alphabets: fast oracle
    ]


def word_coded(name, t, scheme_id, lanes, chunk):
    """A passthrough tensor stored as a frame of its 16-bit words (encoding 1), small enough for
    the oracle: the writer only picks this encoding for larger tensors."""
    item = t.element_size()
    words = t.reshape(-1).view(torch.int16 if item == 2 else torch.int32).numpy().astype(f"<i{item}").view("<u2")
    ctx = np.arange(words.size) % (item // 2) if item > 2 else None
    frame = rans.encode(words.astype(np.uint16), contexts=ctx, lanes=lanes, chunk_size=chunk)
    return EncodedTensor(name, tuple(t.shape), t.dtype, scheme_id, b"\x01" + varint(len(frame)), (frame,), "words", 0)


@given(st.data())
def test_mutated_artifacts_get_the_same_verdict_everywhere(data):
    parts = mutation_base()
    k = data.draw(st.integers(0, len(parts) - 1))
    e = parts[k]
    blobs = list(e.blobs)
    j = data.draw(st.integers(0, len(blobs) - 1))
    blob = bytearray(blobs[j])
    how = data.draw(st.sampled_from(["flip", "byte", "cut", "grow"]))
    body_end = len(blob) - 4 if blob[:4] == b"PGRA" else len(blob)
    if how in ("flip", "byte") and body_end:
        p = data.draw(st.integers(0, body_end - 1))
        blob[p] = blob[p] ^ (1 << data.draw(st.integers(0, 7))) if how == "flip" else data.draw(st.integers(0, 255))
    elif how == "cut" and body_end:
        del blob[data.draw(st.integers(0, body_end - 1))]
    else:
        blob.insert(data.draw(st.integers(0, body_end)), data.draw(st.integers(0, 255)))
    if blob[:4] == b"PGRA":  # re-seal the frame, so the check under test is not its CRC
        blob = bytearray(reseal(bytes(blob[:-4])))
    blobs[j] = bytes(blob)
    parts[k] = EncodedTensor(e.name, e.shape, e.dtype, e.scheme_id, e.fields, tuple(blobs), e.label, 0)
    native, oracle, loader = verdicts(encode_artifact(parts))  # blob sizes follow the mutation
    assert (native is None) == (oracle is None) == (loader is None)
    if native is not None:
        assert same(native, loader) and same(native, oracle)


@given(st.data())
def test_mutated_manifests_get_the_same_verdict_everywhere(data):
    good = encode_artifact(mutation_base())
    body = bytearray(good[:-4])
    r = ref.Reader(good)
    r.pos = 5
    manifest_end = r.varint() + r.pos
    p = data.draw(st.integers(4, manifest_end - 1))
    body[p] = data.draw(st.integers(0, 255))
    native, oracle, loader = verdicts(reseal(bytes(body)))
    assert (native is None) == (oracle is None) == (loader is None)
    if native is not None:
        assert same(native, loader)


def test_truncations_and_unsealed_flips_are_refused():
    data = encode_artifact(mutation_base()[:3])
    for cut in range(0, len(data), 7):
        with pytest.raises(ValueError):
            load_pgpk(data[:cut])
    for p in range(0, len(data), 11):
        bad = bytearray(data)
        bad[p] ^= 0x20
        with pytest.raises(ValueError):
            load_pgpk(bytes(bad))


def square_step_artifact(frame: bytes, side: int) -> bytes:
    """One fp32 `step` tensor of side x side with this symbols frame and fp16 zero scales."""
    rec = varint(0) + varint(1) + b"w" + b"\x01\x02" + varint(side) + varint(side) + b"\x0d\x00\x00" \
        + varint(len(frame)) + varint(2 * side)
    manifest = varint(1) + rec
    return reseal(b"PGPK\x01" + varint(len(manifest)) + manifest + frame + b"\x00" * (2 * side))


def test_hostile_counts_are_refused_before_allocating():
    # a frame claiming 2^28 symbols in 2^20 one-word chunks, in a few hundred bytes
    frame = bytearray(b"PGRA\x01\x01\x01") + varint(1 << 28) + varint(0) + varint(2) + b"\x04" + varint(1) + varint(0)
    frame += ref.table_fields(0, 2, [8]) + b"\x04" + varint(256) + varint(20) * 16
    art = square_step_artifact(reseal(bytes(frame)), 1 << 14)
    with pytest.raises(ValueError, match="corrupt pgpk artifact"):
        load_pgpk(art)
    with pytest.raises(CorruptDataError):
        decode_artifact(art).tensors()
    # a frame of 2^22 symbols whose one chunk holds a few words: refused once the words run out,
    # not after stepping through all 2^20 groups of lanes
    frame = bytearray(b"PGRA\x01\x01\x02") + varint(1 << 11) * 2 + varint(0) + varint(2) + b"\x01" + varint(1) \
        + varint(0) + ref.table_fields(0, 2, [1]) + b"\x04" + varint(1 << 22) + varint(16 + 8)
    art = square_step_artifact(reseal(bytes(frame) + struct.pack("<4I", *[1 << 20] * 4) + b"\x07" * 8), 1 << 11)
    with pytest.raises(ValueError, match="state"):
        load_pgpk(art)
    with pytest.raises(CorruptDataError):
        decode_artifact(art).tensors()


# --- the shipped forms ----------------------------------------------------------------------

def test_standalone_imports_only_numpy_and_torch():
    tree = ast.parse(loader_source())
    modules = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    modules |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert modules == {"numpy", "torch"}
    assert "__import__" not in loader_source() and "importlib" not in loader_source()


FRESH = """
import sys
sys.modules["pgolf_pack"] = None  # whatever the environment holds, pgolf_pack is not importable here
try:
    import pgolf_pack
    raise SystemExit("pgolf_pack was importable")
except ImportError:
    pass
import torch
exec(open(sys.argv[1]).read())
tensors = load_pgpk(open(sys.argv[2], "rb").read())
torch.save(tensors, sys.argv[3])
"""


@pytest.mark.parametrize("compact", [True, False])
def test_shipped_forms_run_in_a_fresh_interpreter(tmp_path, compact, capsys):
    loader_file = tmp_path / "loader.py"
    assert loader_cli.main(["-o", str(loader_file)] + (["--compact"] if compact else [])) == 0
    printed = capsys.readouterr().out
    size = loader_file.stat().st_size
    assert f"({size:,} bytes)" in printed
    if compact:
        assert loader_file.read_bytes() == compact_loader() and loader_file.read_text().count("\n") == 1
        assert size <= 5000
    else:
        assert loader_file.read_bytes() == STANDALONE.read_bytes()
    g = torch.Generator().manual_seed(9)
    parts = [encode("w", torch.randn(30, 50, generator=g), "step:0.2"), encode("grouped", grouped_tensor(), "step:0.3"),
             encode("b", torch.randn(50, generator=g).bfloat16(), "bf16")]
    art = tmp_path / "m.pgpk"
    art.write_bytes(encode_artifact(parts))
    script = tmp_path / "fresh.py"
    script.write_text(FRESH)
    out = tmp_path / "out.pt"
    r = subprocess.run([sys.executable, "-I", str(script), str(loader_file), str(art), str(out)],
                       capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    assert same(torch.load(out), decode_artifact(art.read_bytes()).tensors())


def test_pack_embed_loader_counts_exactly_the_compact_line(tmp_path, capsys):
    from pgolf_pack.synthetic import baseline_state_dict

    ckpt = tmp_path / "m.pt"
    torch.save(baseline_state_dict(layers=1, dim=32, heads=2, kv_heads=1, vocab=64), ckpt)
    code = tmp_path / "train_gpt.py"
    code.write_text("print('hi')\n")
    counted = []
    for extra in ([], ["--embed-loader"]):
        assert pack_cli.main([str(ckpt), "--budget", "400000", "--code", str(code), "-o", str(tmp_path / "m.pgpk"),
                              "--json", "--quiet"] + extra) == 0
        report = json.loads(capsys.readouterr().out)
        counted.append((report["code_bytes"], report["code_files"][1:]))
    assert counted == [(code.stat().st_size, []),
                       (code.stat().st_size + len(compact_loader()), ["pgolf-loader --compact"])]


def test_loader_cli_errors_are_one_line(tmp_path, capsys):
    assert loader_cli.main(["-o", str(tmp_path / "missing" / "x.py")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not exist" in err


def test_minify_keeps_behaviour_and_refuses_what_it_cannot_rename():
    from pgolf_pack.errors import InputError
    from pgolf_pack.loader.minify import minify

    source = '''
"""Docstring."""
import numpy as np


class Counter:
    """Counts."""

    def __init__(self, start):
        self.total = start  # a comment

    def add(self, amount):
        self.total += amount
        return self


def entry(values):
    c = Counter(len(values))
    for v in sorted(values, key=lambda item: -item):
        c.add(v)
    return [c.total, np.arange(3, dtype=np.int64).sum(), {k: k * 2 for k in range(2)}]
'''
    small = minify(source, {"entry"}, set(dir(np)) | set(dir(np.ndarray)))
    assert "Docstring" not in small and "comment" not in small and "Counter" not in small and "total" not in small
    for text in (source, small):
        namespace = {}
        exec(text, namespace)
        assert namespace["entry"]([3, 1, 2]) == [9, 3, {0: 0, 1: 2}]
    with pytest.raises(InputError, match="keyword argument 'amount'"):
        minify(source.replace("c.add(v)", "c.add(amount=v)"), {"entry"})
