"""Calibration statistics from training tokens: what each tensor's quantization error costs in loss.

One pass of the model over N training tokens (validation shards are refused) with a backward
pass of the summed cross-entropy against targets drawn from the model's own prediction (a
Monte-Carlo Fisher; `collect_stats(labels="data")` uses the text's next tokens instead). Roles
are found by intercepting torch's functional calls on the model's own parameters (a
`TorchFunctionMode`), never by names, so `nn.Linear`, custom linear layers and functional uses
such as a tied embedding's output head all count:

* a weight W used as a linear map y = x Wᵀ (`F.linear`) accumulates its input second moment
  H = Σ_t x_t x_tᵀ and its output-gradient energy G_i = Σ_t (∂L/∂y_{t,i})², L the summed loss;
* a weight used as a lookup table (`F.embedding`) accumulates, per row and column, the squared
  gradient of its output over the tokens that used the row (a diagonal Fisher of the table) and
  the row's usage count. A tied embedding gets both roles;
* every other float tensor (gains, scales, biases, tensors used any other way) accumulates a
  diagonal Fisher from one gradient per sequence, Σ_b ĝ_b², which estimates Σ_t g_t²
  when the tokens' gradients are independent (it overestimates when they are correlated).

`LossModel` turns these into a damage in predicted loss, nats per token (the Gauss-Newton /
Fisher approximation of the loss curvature, with a layer's output gradients taken independent of
its inputs); for an error ΔW of a linear map

    damage = ½ Σ_i (G_i / N) · ΔW_i (H / N) ΔW_iᵀ

plus ½ Σ (F / N) ΔW² for its table role or the diagonal fallback. Damages of different tensors
are so comparable, and the planner can add them.

Accumulation: each sequence's sums are formed in float32 (at most seq_len terms per entry, a
relative error of at most seq_len · 2⁻²⁴ and typically √seq_len · 2⁻²⁴) and added into float64
totals in a fixed order, and the pass runs with torch's deterministic algorithms (on CUDA the
default attention backward adds with atomics), so the same tokens on the same device give the
same statistics. Table statistics are accumulated on the CPU (a GPU's atomic index_add would
change the order).
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from pgolf_pack.errors import CorruptDataError, InputError
from pgolf_pack.models import build_model, load_factory, raw_logits_call, resolve_device
from pgolf_pack.shards import check_vocab, read_shard, training_files

STATS_FORMAT = "pgolf-calibration/1"
DEFAULT_TOKENS = 65536  # a 17M baseline model calibrates in about a minute on two idle CPU cores (BENCHMARKS.md)
DEFAULT_SEQ_LEN = 1024
# Each table row gets this many extra uses at the table's mean energy per use (LossModel.table_weights).
TABLE_PRIOR = 1.0
LABELS = ("sampled", "data")  # targets of the backward pass: drawn from the model, or the text's own
_CASTS = {"to", "float", "half", "bfloat16", "type", "contiguous", "detach", "type_as"}


def calibration_tokens(pattern: str, count: int, offset: int = 0) -> np.ndarray:
    """`count` + 1 tokens of the training shards matching `pattern` (sorted), from token `offset`
    (benchmarks draw several calibration sets this way).

    Validation data is refused by any component of its path (`shards.is_validation_path`): it
    may never be used for calibration.
    """
    if count < 1:
        raise InputError(f"the calibration token count must be positive, got {count}")
    files = training_files(pattern)
    parts, have, skip = [], 0, offset
    for f in files:
        if have > count:
            break
        shard = read_shard(f, mmap=True)
        if skip >= len(shard):
            skip -= len(shard)
            continue
        parts.append(np.asarray(shard[skip : skip + count + 1 - have]))
        skip = 0
        have += len(parts[-1])
    tokens = np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint16)
    if len(tokens) < 2:
        raise InputError("the calibration shards hold fewer than 2 tokens")
    return tokens


@dataclass
class CalibrationStats:
    """Sums over `tokens` scored tokens (see the module docstring); all tensors float64 on the CPU."""

    tokens: int = 0
    labels: str = "data"  # the backward pass's targets (collect_stats); files older than the field hold "data"
    hessian: dict[str, torch.Tensor] = field(default_factory=dict)  # [in, in] Σ x xᵀ
    out_energy: dict[str, torch.Tensor] = field(default_factory=dict)  # [out] Σ (∂L/∂y)²
    table_energy: dict[str, torch.Tensor] = field(default_factory=dict)  # [rows, cols] Σ (∂L/∂e)² per use
    table_count: dict[str, torch.Tensor] = field(default_factory=dict)  # [rows] uses of each row
    diag_fisher: dict[str, torch.Tensor] = field(default_factory=dict)  # like the tensor, Σ_b ĝ_b²

    _KINDS = ("hessian", "out_energy", "table_energy", "table_count", "diag_fisher")

    def save(self, path: str | Path) -> None:
        """Write the statistics as safetensors (no pickle), atomically."""
        from pgolf_pack.files import write_atomic

        write_atomic(path, self.to_bytes())

    def to_bytes(self) -> bytes:
        """The safetensors bytes `save` writes (no pickle)."""
        from safetensors.torch import save

        tensors = {f"{kind}/{name}": t.contiguous() for kind in self._KINDS for name, t in getattr(self, kind).items()}
        return save(tensors, metadata={"format": STATS_FORMAT, "tokens": str(self.tokens), "labels": self.labels})

    @classmethod
    def load(cls, path: str | Path) -> CalibrationStats:
        from safetensors import SafetensorError, safe_open

        path = Path(path)
        if not path.is_file():
            raise InputError(f"statistics file '{path}' does not exist")
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                if meta.get("format") != STATS_FORMAT:
                    raise CorruptDataError(f"'{path}' is not a pgolf-pack statistics file (format {meta.get('format')!r}, "
                                           f"expected {STATS_FORMAT!r})")
                stats = cls(tokens=int(meta.get("tokens", "0")), labels=meta.get("labels", "data"))
                if stats.labels not in LABELS:
                    raise CorruptDataError(f"'{path}' names unknown calibration labels {stats.labels!r}")
                for key in f.keys():
                    kind, _, name = key.partition("/")
                    if kind not in cls._KINDS or not name:
                        raise CorruptDataError(f"'{path}' holds an unknown entry {key!r}")
                    getattr(stats, kind)[name] = f.get_tensor(key).double()
        except (SafetensorError, OSError, ValueError) as e:
            raise CorruptDataError(f"'{path}' is not a readable safetensors file ({str(e).splitlines()[0][:160]})") from None
        if stats.tokens < 1:
            raise CorruptDataError(f"'{path}' records no calibration tokens")
        return stats


class _Recorder(TorchFunctionMode):
    """Sees every torch call of a forward pass; records the linear and table uses of tracked weights."""

    def __init__(self, names: dict[int, str], stats: CalibrationStats):
        super().__init__()
        self.names = names  # id(tensor) -> state-dict name, for parameters and their casts
        self.stats = stats
        self.keep: list[torch.Tensor] = []  # casts stay alive for the pass, so their ids stay unique
        self.grams: dict[int, torch.Tensor] = {}  # id(input) -> its float32 Gram, shared by the layers it feeds
        self.linear: set[str] = set()
        self.table: set[str] = set()

    def reset(self) -> None:
        self.keep.clear()
        self.grams.clear()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if func is F.linear:
            self._linear(args[0], args[1] if len(args) > 1 else kwargs.get("weight"), out)
        elif func is F.embedding:
            self._table(args[0], args[1] if len(args) > 1 else kwargs.get("weight"), out)
        elif (getattr(func, "__name__", "") in _CASTS and args and isinstance(args[0], torch.Tensor)
              and id(args[0]) in self.names and isinstance(out, torch.Tensor) and out.shape == args[0].shape):
            self.names[id(out)] = self.names[id(args[0])]
            self.keep.append(out)
        return out

    def _linear(self, x: torch.Tensor, w: torch.Tensor, out: torch.Tensor) -> None:
        name = self.names.get(id(w))
        if name is None or w.dim() != 2:
            return
        self.linear.add(name)
        gram = self.grams.get(id(x))
        if gram is None:
            flat = x.detach().reshape(-1, x.shape[-1]).float()
            gram = flat.T @ flat
            self.grams[id(x)] = gram
            self.keep.append(x)
        _add(self.stats.hessian, name, gram)
        if out.requires_grad:
            out.register_hook(lambda g, name=name: _add(self.stats.out_energy, name,
                                                        g.detach().reshape(-1, g.shape[-1]).float().square().sum(0)))

    def _table(self, ids: torch.Tensor, w: torch.Tensor, out: torch.Tensor) -> None:
        name = self.names.get(id(w))
        if name is None or w.dim() != 2:
            return
        self.table.add(name)
        flat_ids = ids.detach().reshape(-1).cpu()
        _add(self.stats.table_count, name, torch.bincount(flat_ids, minlength=w.shape[0]).double())
        if out.requires_grad:
            def hook(g: torch.Tensor, name: str = name, rows: int = w.shape[0]) -> None:
                sq = g.detach().reshape(-1, g.shape[-1]).float().square().cpu()
                acc = torch.zeros(rows, sq.shape[1], dtype=torch.float32).index_add_(0, flat_ids, sq)
                _add(self.stats.table_energy, name, acc)

            out.register_hook(hook)


def _add(store: dict[str, torch.Tensor], name: str, value: torch.Tensor) -> None:
    value = value.detach().double().cpu()
    if name in store:
        store[name] += value
    else:
        store[name] = value.clone()


def collect_stats(
    state_dict: Mapping[str, torch.Tensor],
    tokens: np.ndarray,
    *,
    model: str | None = None,
    seq_len: int = DEFAULT_SEQ_LEN,
    device: str = "auto",
    labels: str = "sampled",
    seed: int = 0,
    progress: Callable[[Iterable], Iterable] | None = None,
    warn: Callable[[str], None] | None = None,
) -> CalibrationStats:
    """One forward and backward pass per sequence of `tokens` (training tokens; see calibration_tokens).

    `labels`: the backward pass scores targets drawn from the model's own prediction ("sampled",
    with `seed`), which makes the output-gradient energies a Monte-Carlo estimate of the Fisher
    (= Gauss-Newton) curvature, or the text's next tokens ("data", the empirical Fisher). The
    empirical one all but ignores outputs the calibration text rarely asks for (an output row's
    energy is then Σ p², not Σ p(1-p)), so it under-weights rare tokens' rows; sampled labels
    packed better (BENCHMARKS.md, "Second round: sampled-label Fisher ...").

    The pass runs under `torch.use_deterministic_algorithms(True)` (restored afterwards): on CUDA
    the default attention backward adds with atomics, so two runs would give different
    statistics and possibly different artifacts. A model using an operation that has no
    deterministic implementation is calibrated again without it, and `warn` says so."""
    if labels not in LABELS:
        raise InputError(f"calibration labels must be one of {', '.join(LABELS)}, got {labels!r}")
    dev = resolve_device(device)
    if dev.type == "cuda":  # cuBLAS's deterministic workspace; read when it is first used
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    net = build_model(load_factory(model), state_dict, dev, "checkpoint").float()
    net.eval()
    call = raw_logits_call(net)
    with torch.no_grad():
        check_vocab(tokens, call(torch.zeros(1, 1, dtype=torch.long, device=dev)).shape[-1], "the calibration data")
    seq = min(seq_len, len(tokens) - 1)
    rows = (len(tokens) - 1) // seq
    t = torch.from_numpy(tokens[: rows * seq + 1].astype(np.int64)).to(dev)
    xs, ys = t[:-1].view(rows, seq), t[1:].view(rows, seq)
    params: dict[str, torch.Tensor] = {}
    for name, p in list(net.named_parameters(remove_duplicate=False)) + list(net.named_buffers(remove_duplicate=False)):
        if name in state_dict and p.is_floating_point():
            params[name] = p
    was = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    try:
        torch.use_deterministic_algorithms(True)
        try:
            return _calibration_pass(call, params, xs, ys, labels, seed, progress)
        except RuntimeError as e:
            if "deterministic" not in str(e):
                raise
            reason = str(e).splitlines()[0][:200]
        if warn:
            warn(f"calibration: the model uses an operation with no deterministic implementation on {dev} "
                 f"({reason}); calibrating without that guarantee, so two runs may give different artifacts")
        torch.use_deterministic_algorithms(False)
        return _calibration_pass(call, params, xs, ys, labels, seed, progress)
    finally:
        torch.use_deterministic_algorithms(was[0], warn_only=was[1])


def _calibration_pass(call: Callable[[torch.Tensor], torch.Tensor], params: dict[str, torch.Tensor],
                      xs: torch.Tensor, ys: torch.Tensor, labels: str, seed: int,
                      progress: Callable[[Iterable], Iterable] | None) -> CalibrationStats:
    """collect_stats' pass over the sequences `xs` (targets `ys`), from fresh statistics."""
    rows, seq = xs.shape
    for p in params.values():
        p.grad = None
    names = {id(p): name for name, p in params.items()}
    stats = CalibrationStats(labels=labels)
    recorder = _Recorder(names, stats)
    # Find the roles with one short pass, then let gradients flow everywhere except into the linear
    # weights (their output gradients are recorded by hooks; their own gradients are not needed).
    with torch.no_grad(), recorder:
        call(xs[:1, : min(seq, 8)])
    linear_only = recorder.linear - recorder.table
    fallback = [n for n, p in params.items() if n not in recorder.linear and n not in recorder.table]
    for n, p in params.items():
        p.requires_grad_(n not in linear_only and isinstance(p, torch.nn.Parameter))
    if not any(p.requires_grad for p in params.values()):
        for p in params.values():
            if isinstance(p, torch.nn.Parameter):
                p.requires_grad_(True)
    stats.hessian.clear()
    stats.table_count.clear()
    gen = torch.Generator().manual_seed(seed)
    iterator = range(rows)
    for i in progress(iterator) if progress else iterator:
        recorder.reset()
        with recorder:
            logits = call(xs[i : i + 1])
            flat = logits.float().reshape(-1, logits.shape[-1])
            target = ys[i : i + 1].reshape(-1)
            if labels == "sampled":  # drawn on the CPU from a seeded generator: the same on every run
                probs = torch.softmax(flat.detach().double(), -1).cpu()
                target = torch.multinomial(probs, 1, generator=gen).reshape(-1).to(flat.device)
            loss = F.cross_entropy(flat, target, reduction="sum")
        if loss.requires_grad:
            loss.backward()
        stats.tokens += seq
        for n in fallback:
            p = params[n]
            if p.grad is not None:
                _add(stats.diag_fisher, n, p.grad.float().square())
                p.grad = None
        for p in params.values():
            p.grad = None
    recorder.reset()
    if not math.isfinite(sum(float(h.trace()) for h in stats.hessian.values())):
        raise InputError("the calibration pass produced non-finite activations; check the checkpoint")
    return stats


@dataclass
class LossModel:
    """Predicted loss increase (nats per token) of a tensor's error, from CalibrationStats."""

    stats: CalibrationStats
    shapes: dict[str, tuple[int, ...]]
    unplaced_weight: float = 0.0
    notes: list[str] = field(default_factory=list)
    _h32: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, stats: CalibrationStats, state_dict: Mapping[str, torch.Tensor],
           warn: Callable[[str], None] | None = None) -> LossModel:
        """Check the statistics against the checkpoint and note each tensor that cannot be placed."""
        shapes = {n: tuple(t.shape) for n, t in state_dict.items()}
        for name, h in stats.hessian.items():
            if name not in shapes:
                raise InputError(f"the statistics are of another model: they hold '{name}', which the checkpoint has not")
            if len(shapes[name]) != 2 or h.shape != (shapes[name][1], shapes[name][1]) or \
                    stats.out_energy.get(name, torch.zeros(shapes[name][0])).shape != (shapes[name][0],):
                raise InputError(f"the statistics are of another model: '{name}' is {shapes[name]} in the checkpoint "
                                 f"but has a {tuple(h.shape)} Hessian")
        for kind in ("table_energy", "diag_fisher"):
            for name, v in getattr(stats, kind).items():
                if name not in shapes or tuple(v.shape) != shapes[name]:
                    raise InputError(f"the statistics are of another model: '{name}' does not match the checkpoint")
        model = cls(stats, shapes)
        placed = set(stats.hessian) | set(stats.table_energy) | set(stats.diag_fisher) | set(stats.table_count)
        weights = []
        for name in placed:
            d = model.diagonal(name)
            if d is not None and d.numel():
                weights.append(float(d.mean()))
        model.unplaced_weight = float(np.mean(weights)) if weights else 1.0
        for name, t in state_dict.items():
            if t.is_floating_point() and t.numel() and name not in placed:
                note = (f"calibration: cannot place '{name}' {tuple(t.shape)}: no gradient or linear use of it reached "
                        f"the calibration pass; its damage is squared error x {model.unplaced_weight:.3g} "
                        "(the mean per-weight loss weight)")
                model.notes.append(note)
                if warn:
                    warn(note)
        return model

    def has_hessian(self, name: str) -> bool:
        return name in self.stats.hessian and len(self.shapes.get(name, ())) == 2

    def hessian(self, name: str) -> torch.Tensor:
        """H / N, float64 [in, in]."""
        return self.stats.hessian[name] / self.stats.tokens

    def hessian32(self, name: str) -> torch.Tensor:
        """H / N in float32 (for the products that measure errors), computed once per tensor."""
        cached = self._h32.get(name)
        if cached is None:
            cached = self._h32[name] = self.hessian(name).float()
        return cached

    def row_weights(self, name: str) -> torch.Tensor:
        """½ G_i / N per output row, float64: converts a row's H-weighted error into nats per token."""
        g = self.stats.out_energy.get(name)
        if g is None:  # no backward signal reached it: weight rows equally by the mean (documented fallback)
            return torch.full((self.shapes[name][0],), 0.5 * self.unplaced_weight, dtype=torch.float64)
        return 0.5 * g / self.stats.tokens

    def diagonal(self, name: str) -> torch.Tensor | None:
        """Per-element loss weight of the non-Hessian roles (table or fallback), or for a linear map
        the diagonal of its Hessian metric; None for a tensor with no statistics."""
        extra = self.extra(name)
        parts = [] if extra is None else [extra]
        if name in self.stats.hessian:
            parts.append(self.row_weights(name)[:, None] * torch.diagonal(self.hessian(name))[None, :])
        if not parts:
            return None
        return sum(parts)

    def table_weights(self, name: str) -> torch.Tensor:
        """½ (per-element table energy) / N, with each row given TABLE_PRIOR extra uses at the
        table's mean energy per use: a row the calibration tokens never used still costs loss when
        other text uses it (additive smoothing of the row counts). Without it, loss-aware row
        scales gave unused rows the coarsest grid and the embedding lost 6x its predicted loss."""
        e = self.stats.table_energy[name]
        count = self.stats.table_count.get(name)
        if count is not None and float(count.sum()) > 0:
            e = e + TABLE_PRIOR * e.sum(0, keepdim=True) / float(count.sum())
        return 0.5 * e / self.stats.tokens

    def extra(self, name: str) -> torch.Tensor | None:
        """The per-element weights of the non-Hessian roles (table, diagonal Fisher), if any: what a
        linear map's damage adds to its Hessian term (a tied embedding's table role)."""
        parts = []
        if name in self.stats.table_energy:
            parts.append(self.table_weights(name))
        if name in self.stats.diag_fisher:
            parts.append(0.5 * self.stats.diag_fisher[name] / self.stats.tokens)
        return sum(parts) if parts else None

    def damage(self, name: str, delta: torch.Tensor, row_errors: torch.Tensor | None = None) -> float:
        """Predicted loss increase (nats per token) of the error `delta` (reconstruction - original).

        `row_errors`, each row's ΔW H ΔWᵀ when the caller has it already, saves the product."""
        d = delta.detach().double()
        if self.has_hessian(name):
            dm = d.reshape(self.shapes[name])
            if row_errors is None:
                d32 = dm.float()
                row_errors = ((d32 @ self.hessian32(name)) * d32).sum(1, dtype=torch.float64)
            total = float((self.row_weights(name) * row_errors).sum())
            extra = self.extra(name)
            if extra is not None:
                total += float((extra * dm.square()).sum())
            return total
        diag = self.diagonal(name)
        if diag is None:
            return self.unplaced_weight * float(d.square().sum())
        return float((diag.reshape(d.shape) * d.square()).sum())


def warn_stderr(line: str) -> None:
    print(line, file=sys.stderr)
