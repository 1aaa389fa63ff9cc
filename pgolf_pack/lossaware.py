"""Loss-aware packing: candidates quantized with error feedback, damage in predicted loss.

With calibration statistics (`pgolf_pack.calibration`) every candidate of a matrix that has a
Hessian is quantized by error feedback on its own grid (`pgolf_pack.quant.gptq`); per row, the
plain rounding is kept where it has the smaller Hessian-weighted error, so no error-feedback
candidate is ever worse than rounding to nearest in that metric (the rate-aware ones trade error
for bytes on purpose). Row-weighted variants ("SPEC~w<γ>") scale each row's grid by its loss
weight (`row_gains`): rows that matter less get coarser steps. Rate-aware variants ("~r<μ>") add points
between the steps: λ = μ · 2 ln 2 · (damage per weight of the plain error-feedback candidate),
the slope of a uniform quantizer's damage against bits per weight at that step, so μ = 1 trades
bits for error at about the rate the planner would. Every candidate's damage is the predicted
loss increase in nats per token (`LossModel.damage`), so the planner (unchanged: exact coded
bytes, Lagrangian hull, never over budget) allocates bytes by loss.

Each candidate is encoded once; the chosen ones are assembled into the artifact as they were
measured, so its bytes are the planned bytes exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping

import torch

from pgolf_pack.artifact.writer import EncodedTensor, encode_artifact, encode_tensor
from pgolf_pack.calibration import CalibrationStats, LossModel
from pgolf_pack.checkpoint import check_state_dict
from pgolf_pack.errors import BudgetError, InputError
from pgolf_pack.pack import PackResult, TensorReport
from pgolf_pack.planner import Candidate, TensorPlan, default_specs, is_finite, map_tensors, plan_from
from pgolf_pack.quant import QuantSpec, Quantized, RowStats, dequantize, quantize
from pgolf_pack.quant.gptq import quantize_feedback, rate_aware, row_errors
from pgolf_pack.text import printable

# Rate-aware variants tried per quantized candidate of a matrix with a Hessian. They double the
# quantization time; without them the demo model packed at 1.5 bits/weight lost 0.25 bpb instead
# of 0.05 (BENCHMARKS.md, "Loss-aware packing").
RATE_MUS = (1.0,)
# ... and only for coarse grids (step >= 0.3 row std, pent, tern, int2-int4), where they matter:
# at the fine end they were slightly worse and would cost most of the time.
RATE_MIN_STEP = 0.3


def rate_aware_worthy(spec: QuantSpec) -> bool:
    """Whether a candidate gets rate-aware variants (coarse grids only, see RATE_MIN_STEP)."""
    if spec.scheme == "step":
        return spec.k >= RATE_MIN_STEP
    return spec.scheme in ("pent", "tern") or (spec.scheme == "int" and spec.bits <= 4)


RATE_MARK = "~r"
# Loss-aware row scales: the step candidates of a matrix with a Hessian have row scales that follow
# the rows' loss weights (row_gains) with these exponents (0: the plain grid). With the sampled
# Fisher and the table prior (calibration.py), γ = 0.5 cut the loss at the GPTQ int6 export's
# bytes by 12-20% on the demo model and 30% on a 6x256 one (BENCHMARKS.md, "Second round"),
# mostly in the tied embedding, whose rows matter as unequally as the tokens' frequencies; adding
# γ = 0 or 1 beside it gave the same plans and would cost its time again.
ROW_GAMMAS = (0.5,)
ROW_GAIN_LIMIT = 16.0  # no row's scale moves more than this factor either way
ROW_MARK = "~w"


def base_spec(label: str) -> str:
    """The QuantSpec text of a candidate label ("step:0.1~w1~r1" -> "step:0.1")."""
    return label.split("~", 1)[0]


def row_gains(weights: torch.Tensor, std: torch.Tensor, gamma: float, limit: float = ROW_GAIN_LIMIT) -> torch.Tensor:
    """Per-row scale multipliers m_i = (a_i σ_i² / their geometric mean)^(-γ/2), clamped to
    [1/limit, limit], for rows of loss weight a_i and standard deviation σ_i (scale k σ_i m_i).

    At high rate a row of scale s costs about -log2 s bits per weight and a_i s²/12 in loss, so
    the least loss for the bits of the plain grid (s_i = k σ_i) has s_i ∝ a_i^(-1/2): γ = 1.
    γ = 0 is the plain grid; rows of zero weight get the coarsest scale allowed."""
    x = weights.double() * std.double().square()
    pos = x > 0
    if not bool(pos.any()):
        return torch.ones_like(x).float()
    gm = torch.exp(torch.log(x[pos]).mean())
    m = torch.where(pos, (x.clamp_min(1e-300) / gm) ** (-gamma / 2), torch.full_like(x, limit))
    return m.clamp(1 / limit, limit).float()


class Evaluated:
    """Candidates of every tensor, with each candidate's encoding kept for assembly."""

    def __init__(self, tensors: list[TensorPlan], encoded: dict[str, dict[str, tuple[EncodedTensor, float]]]):
        self.tensors = tensors
        self.encoded = encoded  # name -> label -> (encoding, unweighted squared error)


def evaluate_calibrated(
    state_dict: Mapping[str, torch.Tensor],
    loss: LossModel,
    *,
    specs_for: Callable[[str, torch.Tensor], list[str]] | None = None,
    rate_mus: Iterable[float] = RATE_MUS,
    row_gammas: Iterable[float] = ROW_GAMMAS,  # empty: (0,), the plain grid only
    threads: int | None = None,
    progress: Callable[[Iterable], Iterable] | None = None,
) -> Evaluated:
    """Every tensor's candidates with exact bytes and predicted-loss damage (the expensive part)."""
    specs_for = specs_for or (lambda name, t: default_specs(t))
    mus, gammas = tuple(rate_mus), tuple(dict.fromkeys(row_gammas)) or (0.0,)
    items = list(state_dict.items())
    previous = [""] + [name for name, _ in items[:-1]]

    def one(i: int) -> tuple[TensorPlan, dict]:
        name, tensor = items[i]
        found = _candidates(name, tensor, list(dict.fromkeys(specs_for(name, tensor))), loss, mus, gammas)
        cands = [Candidate(label, e.cost(previous[i]), dmg, len(e.record(previous[i])))
                 for label, (e, dmg, _) in found.items()]
        return (TensorPlan(name, tuple(tensor.shape), tensor.numel(), 1.0, cands),
                {label: (e, sq) for label, (e, _, sq) in found.items()})

    done = map_tensors(one, len(items), threads, progress)
    return Evaluated([t for t, _ in done], {t.name: enc for t, enc in done})


def _candidates(name: str, tensor: torch.Tensor, specs: list[str], loss: LossModel, mus: tuple[float, ...],
                gammas: tuple[float, ...]) -> dict[str, tuple[EncodedTensor, float, float]]:
    """label -> (encoding, predicted-loss damage, squared error) of one tensor's candidates."""
    out: dict[str, tuple[EncodedTensor, float, float]] = {}
    if not is_finite(tensor):  # NaN/Inf: stored exactly or refused, as the plain planner does
        if not any(QuantSpec.parse(s).is_passthrough for s in specs):
            raise InputError(f"tensor '{printable(name)}' holds NaN or Inf values, which only 'raw' stores (exactly); "
                             "allow a passthrough for it instead of forcing a quantized scheme")
        specs = ["raw"]
    if not tensor.is_floating_point():  # only raw stores it; quantize says so for anything else
        return {text: (encode_tensor(name, quantize(tensor, QuantSpec.parse(text)), threads=1), 0.0, 0.0)
                for text in specs}
    w = tensor.detach().float()
    stats = RowStats.of(tensor) if tensor.numel() > 1 else None
    feedback: list[tuple[str, QuantSpec, torch.Tensor | None]] = []
    gains: dict[float, torch.Tensor] = {}  # γ -> row_gains, computed once per tensor
    for text in specs:
        spec = QuantSpec.parse(text)
        if (tensor.dim() == 0 or tensor.numel() == 0) and not spec.is_passthrough:
            raise InputError(f"tensor '{printable(name)}' is a scalar or empty; store it as fp32, fp16 or bf16")
        if not spec.is_passthrough and loss.has_hessian(name):
            if spec.scheme != "step":
                feedback.append((text, spec, None))
                continue
            for g in gammas:
                if g and g not in gains:
                    gains[g] = row_gains(loss.diagonal(name).reshape(w.shape[0], -1).sum(1), stats.std, g)
                feedback.append((text if g == 0 else f"{text}{ROW_MARK}{g:g}", spec, gains.get(g)))
            continue
        q = quantize(tensor, spec, stats)
        out[text] = _measured(name, tensor, w, q, loss)
    if feedback:
        for label, q, errors in _error_feedback(name, w, feedback, stats, loss, mus):
            out[label] = _measured(name, tensor, w, q, loss, errors if tensor.dtype == torch.float32 else None)
    order = {t: i for i, t in enumerate(specs)}
    return dict(sorted(out.items(), key=lambda kv: (order.get(base_spec(kv[0]), 0), kv[0])))


def _restored(tensor: torch.Tensor, q: Quantized) -> torch.Tensor:
    """What a loader returns, as float32: the reconstruction cast to the tensor's own dtype."""
    r = dequantize(q)
    return r if tensor.dtype == torch.float32 else r.to(tensor.dtype).float()


def _measured(name: str, tensor: torch.Tensor, w: torch.Tensor, q: Quantized, loss: LossModel,
              row_errors: torch.Tensor | None = None) -> tuple[EncodedTensor, float, float]:
    """(encoding, damage, squared error); `row_errors` (each row's ΔW H ΔWᵀ, when already known
    for exactly this reconstruction) saves the Hessian product."""
    exact = q.spec.kind.stores_values and (q.spec.kind.value_dtype or tensor.dtype) == tensor.dtype
    delta = _restored(tensor, q) - w
    damage = 0.0 if exact else loss.damage(name, delta, row_errors)
    squared = 0.0 if exact else float(delta.double().square().sum())
    return encode_tensor(name, q, threads=1), damage, squared


def _error_feedback(name: str, w: torch.Tensor, labelled: list[tuple[str, QuantSpec, torch.Tensor | None]],
                    stats: RowStats | None, loss: LossModel,
                    mus: tuple[float, ...]) -> list[tuple[str, Quantized, torch.Tensor]]:
    """(label, quantized, row errors) for each spec by error feedback, and its rate-aware variants."""
    labels, specs, gains = [t for t, _, _ in labelled], [s for _, s, _ in labelled], [g for _, _, g in labelled]
    fb = quantize_feedback(w, specs, loss.hessian(name), stats, hessian32=loss.hessian32(name), gains=gains)
    rows = w.shape[0]

    def part(errors: torch.Tensor, i: int) -> torch.Tensor:
        return errors[i * rows : (i + 1) * rows]

    out = [(label, fb.part(i), part(fb.errors, i)) for i, label in enumerate(labels)]
    coarse = [i for i, spec in enumerate(specs) if rate_aware_worthy(spec)]
    if not mus or not coarse:
        return out
    sub = fb.subset(coarse) if len(coarse) < len(specs) else fb
    weights = loss.row_weights(name).repeat(len(coarse))
    for mu in mus:
        # λ from each plain candidate's damage per weight, in nats per bit; per row it is divided by
        # the row's loss weight, since the rounding cost is in units of Hessian-weighted error
        lam = torch.cat([torch.full((rows,), mu * 2 * math.log(2) * float((part(weights, i) * part(sub.errors, i)).sum())
                                    / w.numel(), dtype=torch.float64) for i in range(len(coarse))])
        lam_rows = torch.where(weights > 0, lam / weights.clamp_min(1e-300), torch.full_like(lam, 1e30))
        ra = rate_aware(sub, lam_rows)
        errors = row_errors(ra.float() * sub.scales[:, None] - sub.stacked, loss.hessian32(name))
        out += [(f"{labels[c]}{RATE_MARK}{mu:g}", sub.part(i, ra), part(errors, i)) for i, c in enumerate(coarse)]
    return out


def pack_calibrated(evaluated: Evaluated, state_dict: Mapping[str, torch.Tensor], budget: int,
                    *, code_bytes: int = 0) -> PackResult:
    """Plan on the evaluated candidates and assemble the artifact from their encodings."""
    if isinstance(budget, bool) or not isinstance(budget, int) or budget <= 0:
        raise InputError(f"budget must be a positive whole number of bytes, got {budget!r}")
    plan = plan_from(evaluated.tensors, budget, code_bytes)
    encoded, reports = [], []
    for name, tensor in state_dict.items():
        e, squared = evaluated.encoded[name][plan.specs[name]]
        encoded.append(e)
        reports.append(TensorReport(name, tuple(tensor.shape), plan.specs[name],
                                    8.0 * e.blob_bytes / max(1, tensor.numel()), e.blob_bytes, e.floor_bits / 8.0,
                                    squared))
    data = encode_artifact(encoded)
    if len(data) + code_bytes > budget:
        raise BudgetError(f"the plan needs {len(data) + code_bytes:,} bytes, over the budget of {budget:,} "
                          f"(artifact {len(data):,} + code {code_bytes:,})")
    return PackResult(data, plan, reports, code_bytes, budget)


def calibrated_pack(
    state_dict: Mapping[str, torch.Tensor],
    budget: int,
    *,
    code_bytes: int = 0,
    calibrate: str | None = None,
    stats_in: str | None = None,
    tokens: int | None = None,
    seq_len: int | None = None,
    model: str | None = None,
    device: str = "auto",
    specs_for: Callable[[str, torch.Tensor], list[str]] | None = None,
    threads: int | None = None,
    show_progress: bool = False,
    warn: Callable[[str], None] | None = None,
) -> tuple[PackResult, CalibrationStats]:
    """`pgolf-pack --calibrate` / `--stats-in`: statistics (collected or loaded), loss-aware
    candidates, plan and artifact, and the statistics (for --stats-out: the caller writes them
    with the artifact, so a failed pack leaves neither)."""
    from pgolf_pack.calibration import DEFAULT_SEQ_LEN, DEFAULT_TOKENS, calibration_tokens, collect_stats

    state_dict = check_state_dict(state_dict)
    if stats_in:
        stats = CalibrationStats.load(stats_in)
    elif calibrate:
        toks = calibration_tokens(calibrate, tokens or DEFAULT_TOKENS)
        stats = collect_stats(state_dict, toks, model=model, seq_len=seq_len or DEFAULT_SEQ_LEN, device=device,
                              progress=_bar("calibrating", "seq", show_progress), warn=warn)
    else:
        raise InputError("loss-aware packing needs --calibrate GLOB or --stats-in FILE")
    loss = LossModel.of(stats, state_dict, warn=warn)
    evaluated = evaluate_calibrated(state_dict, loss, specs_for=specs_for, threads=threads,
                                    progress=_bar("quantizing", "tensor", show_progress))
    return pack_calibrated(evaluated, state_dict, budget, code_bytes=code_bytes), stats


def _bar(desc: str, unit: str, enabled: bool) -> Callable[[Iterable], Iterable] | None:
    if not enabled:
        return None

    def wrap(items: Iterable) -> Iterable:
        import sys

        from tqdm import tqdm

        return tqdm(items, desc=desc, unit=unit, file=sys.stderr, leave=False, dynamic_ncols=True)

    return wrap
