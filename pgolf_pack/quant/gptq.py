"""Error-compensating quantization on pgolf-pack's own grids (GPTQ), with rate-aware rounding.

The grid is the tensor's: per-row scales chosen exactly as `quantize` chooses them, integer
symbols clamped to ±qmax. Only the symbols change, so the artifact format and every decoder
stay as they are. Columns are quantized one at a time in order of decreasing Hessian diagonal
("act order"); the rounding error of each column, divided by the pivot of the Cholesky factor
U of the damped inverse Hessian, is fed into the columns not yet quantized (row times U's row),
inside blocks of 128 columns and then as one matrix product for the rest, as in GPTQ
(Frantar et al. 2022). That minimises each row's ΔW H ΔWᵀ greedily.

Rate-aware rounding: each decision picks, among the nearest symbol and its two neighbours, the
one with the least  (w - q·s)² / U_jj² + λ_row · bits(q),  bits from the tensor's own symbol
table (estimated from a plain pass). With λ = 0 the nearest symbol always wins (ties keep it),
so that is plain error feedback exactly.

Many candidates of one matrix (several specs, several λ) run as one pass over the columns with
their rows stacked: the Hessian is shared, so every step is one wide vector operation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

BLOCK = 128
DAMP = 0.01  # fraction of the mean Hessian diagonal added to it, as GPTQ


@dataclass(frozen=True)
class HessianFactor:
    """The upper Cholesky factor of the damped inverse Hessian, in act order."""

    upper: torch.Tensor  # float32 [cols, cols], columns permuted by `order`
    order: torch.Tensor  # int64 [cols]: position -> original column


def factor(hessian: torch.Tensor, damp: float = DAMP) -> HessianFactor:
    """Factor a (positive semi-definite) Hessian; dead columns (zero diagonal) get a unit diagonal."""
    h = hessian.detach().double().clone()
    diag = torch.diagonal(h)
    dead = diag <= 0
    if bool(dead.any()):
        h[dead, :] = 0
        h[:, dead] = 0
        diag[dead] = 1.0
    order = torch.argsort(torch.diagonal(h), descending=True, stable=True)
    h = h[order][:, order]
    mean = float(torch.diagonal(h).mean())
    eye = torch.eye(h.shape[0], dtype=h.dtype)
    for attempt in range(8):  # a rank-deficient H may need more damping than GPTQ's 1%
        low, info = torch.linalg.cholesky_ex(h + (damp * 10**attempt) * mean * eye)
        if int(info) == 0:
            inv = torch.cholesky_inverse(low)
            upper, info = torch.linalg.cholesky_ex(inv, upper=True)
            if int(info) == 0:
                return HessianFactor(upper.float(), order)
    raise ValueError("the Hessian could not be factored even with 10^7 times the usual damping")


@dataclass(frozen=True)
class RateTerm:
    """Code lengths for rate-aware rounding: bits[table[row], q + offset] (clamped at the ends)."""

    lam: torch.Tensor  # float32 [rows]: λ for each row, in the units of its squared error
    bits: torch.Tensor  # float32 [tables, alphabet]
    table: torch.Tensor  # int64 [rows]
    offset: int

    def cost(self, q: torch.Tensor) -> torch.Tensor:
        idx = (q.long() + self.offset).clamp_(0, self.bits.shape[1] - 1)
        return self.lam * self.bits[self.table, idx]


def code_lengths(symbols: list[torch.Tensor], escape_bits: float = 4.0) -> tuple[torch.Tensor, int]:
    """(bits [len(symbols), alphabet], offset): -log2 of each symbol's frequency in each tensor;
    an unseen symbol costs `escape_bits` more than the rarest seen one."""
    lo = min(int(s.min()) for s in symbols) - 1
    hi = max(int(s.max()) for s in symbols) + 1
    out = torch.empty(len(symbols), hi - lo + 1, dtype=torch.float32)
    for i, s in enumerate(symbols):
        counts = torch.bincount((s.reshape(-1).long() - lo), minlength=hi - lo + 1).double()
        bits = -torch.log2(counts / counts.sum())
        worst = float(bits[counts > 0].max())
        out[i] = torch.where(counts > 0, bits, torch.full_like(bits, worst + escape_bits)).float()
    return out, -lo


def error_feedback(w: torch.Tensor, scales: torch.Tensor, qmax: torch.Tensor, f: HessianFactor,
                   rate: RateTerm | None = None, block: int = BLOCK) -> torch.Tensor:
    """Symbols (int32 [rows, cols], original column order) of `w` (float32 [rows, cols]) on the
    grid symbol * scales[row], |symbol| <= qmax[row], by error feedback through `f`.

    Works on the transpose (one column of W is one contiguous row), with rank-1 updates inside
    blocks of `block` columns and one matrix product per block for the columns after it."""
    u = f.upper
    work = w.detach().float().t()[f.order].contiguous()  # [cols, rows]
    cols, rows = work.shape
    s = scales.float()
    hi = qmax.float()
    lo = -hi
    out = torch.empty(cols, rows, dtype=torch.int32)
    for b0 in range(0, cols, block):
        b1 = min(b0 + block, cols)
        wb = work[b0:b1]  # a view: updates land in `work`
        err = torch.empty(b1 - b0, rows, dtype=torch.float32)
        ub = u[b0:b1, b0:b1]
        for j in range(b1 - b0):
            col = wb[j]
            d = ub[j, j]
            q = torch.clamp(torch.round(col / s), lo, hi)
            if rate is not None:
                best_cost = (torch.addcmul(col, q, s, value=-1.0) / d).square_().add_(rate.cost(q))
                for step in (-1.0, 1.0):
                    other = torch.clamp(q + step, lo, hi)
                    c = (torch.addcmul(col, other, s, value=-1.0) / d).square_().add_(rate.cost(other))
                    better = c < best_cost
                    q = torch.where(better, other, q)
                    best_cost = torch.where(better, c, best_cost)
            e = err[j]
            torch.div(torch.addcmul(col, q, s, value=-1.0), d, out=e)
            out[b0 + j] = q
            if j + 1 < b1 - b0:
                wb[j + 1 :].addr_(ub[j, j + 1 :], e, alpha=-1.0)
        if b1 < cols:
            work[b1:].addmm_(u[b0:b1, b1:].t(), err, alpha=-1.0)
    result = torch.empty(rows, cols, dtype=torch.int32)
    result[:, f.order] = out.t()
    return result


def row_errors(delta: torch.Tensor, hessian: torch.Tensor) -> torch.Tensor:
    """Each row's ΔW_i H ΔW_iᵀ (float64 [rows]) for float32 `delta` and `hessian`."""
    return ((delta @ hessian) * delta).sum(1, dtype=torch.float64)


@dataclass(frozen=True)
class Feedback:
    """Several specs of one matrix quantized by error feedback, rows stacked spec after spec."""

    plain: list  # list[Quantized]: the specs quantized by rounding to nearest (scales as stored)
    symbols: torch.Tensor  # int32 [specs * rows, cols]: per row, error feedback or nearest, whichever has less error
    errors: torch.Tensor  # float64 [specs * rows]: each row's ΔW H ΔWᵀ
    stacked: torch.Tensor  # float32 [specs * rows, cols]: the matrix repeated
    scales: torch.Tensor  # float32 [specs * rows]
    qmax: torch.Tensor  # float32 [specs * rows]
    factor: HessianFactor

    def subset(self, indices: list[int]) -> Feedback:
        """The same results for some of the specs only (rows re-stacked in that order)."""
        rows = self.symbols.shape[0] // len(self.plain)
        idx = torch.cat([torch.arange(i * rows, (i + 1) * rows) for i in indices])
        return Feedback([self.plain[i] for i in indices], self.symbols[idx], self.errors[idx], self.stacked[idx],
                        self.scales[idx], self.qmax[idx], self.factor)

    def part(self, i: int, symbols: torch.Tensor | None = None):
        """Spec i as a Quantized with these stacked symbols (default: the chosen ones)."""
        from pgolf_pack.quant.uniform import Quantized

        q = self.plain[i]
        rows = q.symbols.shape[0]
        s = (self.symbols if symbols is None else symbols)[i * rows : (i + 1) * rows].contiguous()
        return Quantized(q.spec, q.shape, q.dtype, symbols=s, scales=q.scales, scale_codes=q.scale_codes)


def quantize_feedback(w: torch.Tensor, specs: list, hessian: torch.Tensor, stats=None,
                      hessian32: torch.Tensor | None = None, gains: list | None = None) -> Feedback:
    """Quantize the 2-D float tensor `w` under each (non-passthrough) spec by error feedback.

    Scales are the ones `quantize` picks (with each spec's row `gains`, if given). Per row the
    result of plain rounding is kept where it has the smaller (or equal) Hessian-weighted error, so
    no row is ever worse than rounding to nearest in that metric, and an identity Hessian gives
    rounding to nearest exactly.
    """
    from pgolf_pack.quant.uniform import RowStats, quantize

    if w.dim() != 2 or hessian.shape != (w.shape[1], w.shape[1]):
        raise ValueError(f"a [{w.shape[1]}, {w.shape[1]}] Hessian is needed for a {tuple(w.shape)} matrix")
    x = w.detach().float()
    stats = stats or RowStats.of(x)
    gains = gains or [None] * len(specs)
    plain = [quantize(x, s, stats, g) for s, g in zip(specs, gains)]
    f = factor(hessian)
    h32 = hessian.float() if hessian32 is None else hessian32
    rows = x.shape[0]
    scales = torch.cat([q.scales for q in plain])
    qmax = torch.cat([torch.full((rows,), float(s.qmax)) for s in specs])
    stacked = x.repeat(len(specs), 1)
    ef = error_feedback(stacked, scales, qmax, f)
    rtn = torch.cat([q.symbols for q in plain])
    err_ef = row_errors(ef.float() * scales[:, None] - stacked, h32)
    err_rtn = row_errors(rtn.float() * scales[:, None] - stacked, h32)
    keep = err_ef <= err_rtn
    return Feedback(plain, torch.where(keep[:, None], ef, rtn), torch.where(keep, err_ef, err_rtn), stacked, scales,
                    qmax, f)


def rate_aware(fb: Feedback, lam_rows: torch.Tensor) -> torch.Tensor:
    """Stacked symbols of rate-aware error feedback: λ per stacked row (in units of its
    Hessian-weighted error per bit), code lengths from each spec's chosen plain symbols."""
    n = len(fb.plain)
    rows = fb.symbols.shape[0] // n
    bits, offset = code_lengths([fb.symbols[i * rows : (i + 1) * rows] for i in range(n)])
    table = torch.arange(n).repeat_interleave(rows)
    return error_feedback(fb.stacked, fb.scales, fb.qmax, fb.factor,
                          rate=RateTerm(lam_rows.float(), bits, table, offset))
