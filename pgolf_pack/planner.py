"""The byte-budget planner: choose each tensor's storage to minimise estimated damage subject to
artifact + code <= budget.

For every tensor it evaluates a set of candidate specs for real: quantize, encode with the
codec (so rates are the exact bytes the artifact will hold, side information and manifest
record included) and measure the damage, `weight * sum((w - w_hat)^2)`. Then it solves the
knapsack the Lagrangian way: start every tensor at its smallest candidate, walk the lower
convex hulls of (bytes, damage) taking the steepest damage-per-byte step that still fits, and
finally spend the leftover bytes on whichever single upgrade buys the most damage.

Damage weights default to 1 (a data-free reconstruction error). A sensitivity file can change
them: a JSON object mapping tensor names or glob patterns to weights, e.g.
`{"tok_emb.weight": 4.0, "blocks.*.mlp.fc.weight": 0.5}`; the first matching pattern in file
order wins. Calibration-based sensitivities (from training data only) plug in the same way.
"""

from __future__ import annotations

import fnmatch
import heapq
import json
import math
import os
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TypeVar

import torch

from pgolf_pack.artifact.format import container_bound, container_bytes
from pgolf_pack.artifact.writer import EncodedTensor, encode_tensor
from pgolf_pack.errors import BudgetError, InputError
from pgolf_pack.quant import QuantSpec, RowStats, dequantize, quantize
from pgolf_pack.quant.spec import PASSTHROUGH
from pgolf_pack.text import dumps_json, printable

PLAN_FORMAT = "pgolf-plan/1"
T = TypeVar("T")
# Step sizes in row standard deviations: from ~8 bits/weight down to ~1.
STEP_GRID = tuple(round(0.01 * 1.35**i, 5) for i in range(20))
ANCHORS = ("int8:max", "int6:std12.85")  # the challenge baseline's and the records' styles


@dataclass(frozen=True)
class Candidate:
    spec: str
    bytes: int  # record + blobs, exactly
    damage: float
    record_bytes: int | None = None  # the record alone (it sizes the manifest's length varint); None: unknown


@dataclass
class TensorPlan:
    """One tensor's candidates and the current choice."""

    name: str
    shape: tuple[int, ...]
    numel: int
    weight: float
    candidates: list[Candidate]
    choice: int = 0

    @property
    def chosen(self) -> Candidate:
        return self.candidates[self.choice]


@dataclass
class Plan:
    """A solved plan: the spec of every tensor, with the estimate it was chosen on."""

    budget: int
    code_bytes: int
    specs: dict[str, str]
    estimated_bytes: int
    estimated_damage: float
    tensors: list[dict] = field(default_factory=list)

    def to_json(self) -> str:
        return dumps_json({"format": PLAN_FORMAT} | asdict(self), indent=1)  # strict JSON: no NaN

    @classmethod
    def from_json(cls, text: str, where: str = "plan") -> Plan:
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise InputError(f"{where} is not JSON ({e.msg} at line {e.lineno})") from None
        if not isinstance(d, dict) or d.get("format") != PLAN_FORMAT or not isinstance(d.get("specs"), dict):
            raise InputError(f"{where} is not a pgolf-pack plan (expected \"format\": \"{PLAN_FORMAT}\" and \"specs\")")
        for name, spec in d["specs"].items():
            if not isinstance(spec, str):
                raise InputError(f"{where}: the spec of {printable(name)!r} is {printable(json.dumps(spec))}, not a string "
                                 "such as \"int6:std12.85\"")
            QuantSpec.parse(spec)
        for key, kind in (("budget", int), ("code_bytes", int), ("estimated_bytes", int),
                          ("estimated_damage", (int, float)), ("tensors", list)):
            if key in d and d[key] is not None and (not isinstance(d[key], kind) or isinstance(d[key], bool)):
                raise InputError(f"{where}: \"{key}\" is {printable(json.dumps(d[key]))[:40]}, not a "
                                 f"{'list' if kind is list else 'number'}")
        return cls(int(d.get("budget") or 0), int(d.get("code_bytes") or 0), dict(d["specs"]),
                   int(d.get("estimated_bytes") or 0), float(d.get("estimated_damage") or 0.0),
                   list(d.get("tensors") or []))


def load_sensitivities(path: str | Path) -> list[tuple[str, float]]:
    """(pattern, weight) pairs from a sensitivity JSON file (see the module docstring)."""
    path = Path(path)
    try:
        d = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"sensitivity file '{path}' does not exist") from None
    except json.JSONDecodeError as e:
        raise InputError(f"sensitivity file '{path}' is not JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(d, dict) or not all(isinstance(v, (int, float)) and 0 <= v < math.inf for v in d.values()):
        raise InputError(f"sensitivity file '{path}' must map names or glob patterns to finite weights >= 0")
    return [(str(k), float(v)) for k, v in d.items()]


def weight_of(name: str, sensitivities: Iterable[tuple[str, float]]) -> float:
    for pattern, w in sensitivities:
        if name == pattern or fnmatch.fnmatchcase(name, pattern):
            return w
    return 1.0


def default_specs(tensor: torch.Tensor) -> list[str]:
    """The candidates tried for a tensor when the user names none."""
    if not tensor.is_floating_point():
        return ["raw"]
    if is_tiny(tensor):
        return list(PASSTHROUGH)
    return list(PASSTHROUGH) + list(ANCHORS) + [f"step:{k:g}" for k in STEP_GRID]


def is_tiny(tensor: torch.Tensor) -> bool:
    """Scalars and one-element tensors: stored as values, never quantized."""
    return tensor.dim() == 0 or tensor.numel() < 2


def evaluate_candidates(name: str, tensor: torch.Tensor, specs: Iterable[str], previous_name: str, weight: float,
             threads: int | None = None) -> list[Candidate]:
    """Exact bytes and damage of each spec for one tensor. A tensor holding NaN or Inf is only
    ever stored exactly (`raw`); a candidate whose damage overflows is dropped."""
    specs = list(dict.fromkeys(specs))  # keep order, drop repeats
    if not is_finite(tensor):
        if not any(QuantSpec.parse(s).is_passthrough for s in specs):
            raise InputError(f"tensor '{printable(name)}' holds NaN or Inf values, which only 'raw' stores (exactly); "
                             "allow a passthrough for it instead of forcing a quantized scheme")
        specs = ["raw"]
    out = []
    stats = RowStats.of(tensor) if tensor.is_floating_point() and tensor.numel() > 1 else None
    for text in specs:
        encoded, damage = encode_with(name, tensor, text, threads=threads, stats=stats)
        out.append(Candidate(text, encoded.cost(previous_name), weight * damage, len(encoded.record(previous_name))))
    finite = [c for c in out if math.isfinite(c.damage)]
    return finite or out[:1]


def is_finite(tensor: torch.Tensor) -> bool:
    """No NaN or Inf (always true for integer tensors)."""
    return not tensor.is_floating_point() or bool(torch.isfinite(tensor).all())


def encode_with(name: str, tensor: torch.Tensor, text: str, threads: int | None = None,
                stats: RowStats | None = None) -> tuple[EncodedTensor, float]:
    """(encoded tensor, unweighted squared error) of one spec."""
    spec = QuantSpec.parse(text)
    if spec.kind.float_only and not tensor.is_floating_point():
        raise InputError(f"tensor '{printable(name)}' has dtype {tensor.dtype}; only 'raw' can store it")
    if (tensor.dim() == 0 or tensor.numel() == 0) and not spec.is_passthrough:
        raise InputError(f"tensor '{printable(name)}' is a scalar or empty; store it as fp32, fp16 or bf16")
    exact = spec.scheme == "raw" or spec.kind.value_dtype == tensor.dtype
    # row maxima are NaN or Inf exactly when a row holds one: a pass over rows, not the tensor
    finite = is_finite(tensor) if stats is None else bool(torch.isfinite(stats.amax).all())
    if not exact and not finite:
        raise InputError(f"tensor '{printable(name)}' holds NaN or Inf values, which '{text}' cannot store; store it as raw")
    q = quantize(tensor, spec, stats)
    if not tensor.is_floating_point():
        return encode_tensor(name, q, threads=threads), 0.0
    # damage of what a loader returns: the reconstruction cast to the tensor's own dtype
    restored = dequantize(q) if tensor.dtype == torch.float32 else dequantize(q).to(tensor.dtype).float()
    damage = 0.0
    if not exact:
        damage = float((restored - tensor.detach().float()).square().sum())
        if not math.isfinite(damage):  # float32 overflows past |error| ~ 1.8e19: redo in float64
            damage = float((restored.double() - tensor.detach().double()).square().sum())
    return encode_tensor(name, q, threads=threads), damage


def solve(tensors: list[TensorPlan], available: int) -> None:
    """Set each TensorPlan.choice to minimise total damage with total bytes <= available."""
    for t in tensors:
        t.choice = min(range(len(t.candidates)), key=lambda i: (t.candidates[i].bytes, t.candidates[i].damage))
    used = sum(t.chosen.bytes for t in tensors)
    if used > available:
        raise BudgetError(f"needs {used - available} more bytes than available at the smallest candidates")
    hulls = [_lower_hull(t.candidates) for t in tensors]
    position = [0] * len(tensors)
    heap: list[tuple[float, int, int]] = []

    def push(ti: int) -> None:
        h, p = hulls[ti], position[ti]
        if p + 1 < len(h):
            a, b = tensors[ti].candidates[h[p]], tensors[ti].candidates[h[p + 1]]
            heapq.heappush(heap, ((b.damage - a.damage) / (b.bytes - a.bytes), ti, p))

    for ti in range(len(tensors)):
        hulls[ti] = _hull_from(tensors[ti], hulls[ti])
        push(ti)
    while heap:
        _, ti, p = heapq.heappop(heap)
        t = tensors[ti]
        nxt = t.candidates[hulls[ti][p + 1]]
        extra = nxt.bytes - t.chosen.bytes
        if used + extra <= available:
            used += extra
            t.choice = hulls[ti][p + 1]
            position[ti] = p + 1
            push(ti)
    while True:  # spend what is left on the single best upgrade that fits
        best = None
        for t in tensors:
            cur = t.chosen
            for i, c in enumerate(t.candidates):
                gain = cur.damage - c.damage
                if gain > 0 and used + c.bytes - cur.bytes <= available and (best is None or gain > best[0]):
                    best = (gain, t, i)
        if best is None:
            break
        _, t, i = best
        used += t.candidates[i].bytes - t.chosen.bytes
        t.choice = i


def _lower_hull(cands: list[Candidate]) -> list[int]:
    """Indices of the lower convex hull of (bytes, damage), bytes increasing, damage decreasing."""
    order = sorted(range(len(cands)), key=lambda i: (cands[i].bytes, cands[i].damage))
    pts: list[int] = []
    for i in order:
        if pts and cands[i].damage >= cands[pts[-1]].damage:
            continue  # more bytes, no less damage: never worth it
        while len(pts) >= 2:
            a, b = cands[pts[-2]], cands[pts[-1]]
            c = cands[i]
            # b lies on or above the segment a-c: drop it
            if (b.damage - a.damage) * (c.bytes - a.bytes) >= (c.damage - a.damage) * (b.bytes - a.bytes):
                pts.pop()
            else:
                break
        pts.append(i)
    return pts


def _hull_from(t: TensorPlan, hull: list[int]) -> list[int]:
    """The hull starting at the current choice (the smallest candidate is always on it)."""
    return hull[hull.index(t.choice):] if t.choice in hull else [t.choice] + hull


def evaluate_tensors(
    state_dict: Mapping[str, torch.Tensor],
    *,
    sensitivities: Iterable[tuple[str, float]] = (),
    specs_for: Callable[[str, torch.Tensor], list[str]] | None = None,
    threads: int | None = None,
    progress: Callable[[Iterable], Iterable] | None = None,
) -> list[TensorPlan]:
    """Every tensor's candidates with exact bytes and weighted damage (the expensive part)."""
    sens = list(sensitivities)
    bad = [(p, w) for p, w in sens if not 0 <= w < math.inf]
    if bad:
        raise InputError(f"sensitivity weights must be finite and >= 0, got {bad[0][1]} for '{bad[0][0]}'")
    specs_for = specs_for or (lambda name, t: default_specs(t))
    items = list(state_dict.items())
    previous = [""] + [name for name, _ in items[:-1]]

    def one(i: int) -> TensorPlan:
        name, tensor = items[i]
        w = weight_of(name, sens)
        cands = evaluate_candidates(name, tensor, specs_for(name, tensor), previous[i], w, threads=1)
        return TensorPlan(name, tuple(tensor.shape), tensor.numel(), w, cands)

    return map_tensors(one, len(items), threads, progress)


def map_tensors(one: Callable[[int], T], count: int, threads: int | None,
                progress: Callable[[Iterable], Iterable] | None = None) -> list[T]:
    """[one(0), ..., one(count - 1)] on a few threads (the codec and torch's kernels release the
    GIL), each running torch single-threaded: nested OpenMP threads spin against each other."""
    workers = max(1, threads or os.cpu_count() or 1)
    torch_threads = torch.get_num_threads()
    if workers > 1:
        torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(workers) as pool:
            results = pool.map(one, range(count))
            return list(progress(results) if progress else results)
    finally:
        torch.set_num_threads(torch_threads)


def plan_from(tensors: list[TensorPlan], budget: int, code_bytes: int = 0) -> Plan:
    """Solve for one budget over evaluated tensors (cheap: call it for many budgets)."""
    overhead = container_overhead(tensors)
    available = budget - code_bytes - overhead
    try:
        solve(tensors, available)
    except BudgetError:
        artifact = smallest_artifact(tensors)
        smallest = artifact + code_bytes
        needed = sum(min(c.bytes for c in t.candidates) for t in tensors) + overhead + code_bytes
        reserve = "" if smallest > budget else (  # the few bytes between the exact size and the planner's bound
            f"; the planner reserves {overhead:,} bytes for the container, so it needs a budget of {needed:,}")
        raise BudgetError(
            f"budget of {budget:,} bytes cannot be met: the smallest artifact these schemes allow is "
            f"{artifact:,} bytes + {code_bytes:,} bytes of code = {smallest:,} bytes{reserve}"
        ) from None
    return Plan(
        budget=budget,
        code_bytes=code_bytes,
        specs={t.name: t.chosen.spec for t in tensors},
        estimated_bytes=sum(t.chosen.bytes for t in tensors) + overhead,
        estimated_damage=sum(t.chosen.damage for t in tensors),
        tensors=[{"name": t.name, "spec": t.chosen.spec, "bytes": t.chosen.bytes, "damage": t.chosen.damage,
                  "candidates": [[c.spec, c.bytes, c.damage] for c in t.candidates]} for t in tensors],
    )


def container_overhead(tensors: list[TensorPlan]) -> int:
    """Bytes to reserve for the container around any choice of candidates: exact for the manifest
    of the largest records, so never too few, and exact for every choice unless the records'
    sizes straddle a varint length (128 B, 16 KiB, 2 MiB of manifest)."""
    if any(c.record_bytes is None for t in tensors for c in t.candidates):  # sizes from elsewhere: the bound
        return container_bound(len(tensors))
    return container_bytes([max(c.record_bytes for c in t.candidates) for t in tensors])["total_bytes"]


def smallest_artifact(tensors: list[TensorPlan]) -> int:
    """The exact size of the smallest artifact the candidates allow: each tensor's smallest
    candidate (ties: the shortest record) plus the container bytes around those records."""
    smallest = [min(t.candidates, key=lambda c: (c.bytes, c.record_bytes or 0)) for t in tensors]
    if any(c.record_bytes is None for c in smallest):  # sizes from elsewhere: the bound is all we know
        return sum(c.bytes for c in smallest) + container_bound(len(tensors))
    return sum(c.bytes for c in smallest) + container_bytes([c.record_bytes for c in smallest])["total_bytes"]


def plan_budget(
    state_dict: Mapping[str, torch.Tensor],
    budget: int,
    *,
    code_bytes: int = 0,
    sensitivities: Iterable[tuple[str, float]] = (),
    specs_for: Callable[[str, torch.Tensor], list[str]] | None = None,
    threads: int | None = None,
    progress: Callable[[Iterable], Iterable] | None = None,
) -> Plan:
    """Choose a spec per tensor so that artifact + code_bytes <= budget with the least damage.

    Raises BudgetError (with the smallest achievable total) when no choice fits.
    """
    tensors = evaluate_tensors(state_dict, sensitivities=sensitivities, specs_for=specs_for, threads=threads,
                               progress=progress)
    return plan_from(tensors, budget, code_bytes)
