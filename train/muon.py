"""Muon: momentum SGD whose update for each weight matrix is orthogonalised.

For a matrix gradient G the update is (approximately) U Vᵀ, where G = U S Vᵀ: every singular
value is replaced by about 1, so no direction of the matrix dominates the step. U Vᵀ is
approximated by five iterations of a quintic Newton–Schulz polynomial run in bfloat16 (on
CUDA) or float32, with the coefficients of K. Jordan's Muon (kellerjordan.github.io/posts/muon),
which trade exactness for speed: singular values land in roughly [0.7, 1.2], which is enough.

Muon is for the 2-D weight matrices of the transformer blocks only; embeddings, the output head
and the small control tensors are trained with Adam (see trainer.py).

Under torch.distributed the matrices are shared out round-robin: rank r orthogonalises matrices
r, r + W, r + 2W, ..., and one all-reduce of a flat buffer gives every rank every update. The
gradients must already be identical on all ranks (DDP averages them), so each matrix's momentum
lives on the one rank that owns it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
import torch.distributed as dist
from torch import Tensor

NEWTON_SCHULZ_COEFFS = (3.4445, -4.7750, 2.0315)


def orthogonalize(g: Tensor, steps: int = 5, dtype: torch.dtype = torch.bfloat16) -> Tensor:
    """Approximate U Vᵀ of a 2-D matrix g = U S Vᵀ by `steps` quintic Newton–Schulz iterations.

    The matrix is scaled to unit Frobenius norm first (so all singular values are <= 1), and
    worked on in its wide orientation so the Gram matrix is the smaller one.
    """
    a, b, c = NEWTON_SCHULZ_COEFFS
    x = g.to(dtype)
    x = x / (x.norm() + 1e-7)
    tall = x.size(0) > x.size(1)
    if tall:
        x = x.mT
    for _ in range(steps):
        gram = x @ x.mT
        x = a * x + (b * gram + c * (gram @ gram)) @ x
    return x.mT if tall else x


class Muon(torch.optim.Optimizer):
    """Orthogonalised Nesterov momentum for 2-D parameters.

    Per matrix: m ← μ m + g; u = orthogonalize(g + μ m) (or of m without Nesterov), scaled by
    sqrt(max(1, rows / cols)); then p ← p (1 − lr·wd) − lr·u. `weight_decay` is decoupled and
    0 by default (the baseline has none).

    Args:
        params: 2-D parameters (or param groups).
        lr: step size. Groups may carry their own, and a `base_lr` for schedules.
        momentum: μ.
        backend_steps: Newton–Schulz iterations.
        nesterov: use the Nesterov form g + μ m.
        weight_decay: decoupled weight decay coefficient.
        ns_dtype: dtype of the Newton–Schulz iteration (bfloat16 on GPUs, float32 on CPUs).
        compile: run the iteration through torch.compile.
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict],
        lr: float,
        momentum: float = 0.95,
        backend_steps: int = 5,
        nesterov: bool = True,
        weight_decay: float = 0.0,
        ns_dtype: torch.dtype = torch.bfloat16,
        compile: bool = False,
    ):
        defaults = dict(lr=lr, momentum=momentum, backend_steps=backend_steps, nesterov=nesterov,
                        weight_decay=weight_decay)
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                if p.ndim != 2:
                    raise ValueError(f"Muon takes 2-D matrices only, got a parameter of shape {tuple(p.shape)}")
        self.ns_dtype = ns_dtype
        self._orthogonalize: Callable[..., Tensor] = torch.compile(orthogonalize) if compile else orthogonalize

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        distributed = dist.is_available() and dist.is_initialized()
        rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            lr, mu = group["lr"], group["momentum"]
            updates = torch.zeros(sum(p.numel() for p in params), device=params[0].device, dtype=self.ns_dtype)
            offset = 0
            for i, p in enumerate(params):
                n = p.numel()
                if i % world == rank:
                    state = self.state[p]
                    if "momentum_buffer" not in state:
                        state["momentum_buffer"] = torch.zeros_like(p.grad)
                    buf = state["momentum_buffer"]
                    buf.mul_(mu).add_(p.grad)
                    u = p.grad.add(buf, alpha=mu) if group["nesterov"] else buf
                    u = self._orthogonalize(u, group["backend_steps"], self.ns_dtype)
                    u = u * max(1.0, p.size(0) / p.size(1)) ** 0.5
                    updates[offset : offset + n] = u.reshape(-1)
                offset += n
            if world > 1:
                dist.all_reduce(updates)
            offset = 0
            for p in params:
                n = p.numel()
                if group["weight_decay"]:
                    p.mul_(1.0 - lr * group["weight_decay"])
                p.add_(updates[offset : offset + n].view_as(p).to(p.dtype), alpha=-lr)
                offset += n
        return loss
