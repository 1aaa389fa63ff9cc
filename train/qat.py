"""Quantization-aware training through pgolf_pack's own quantizers.

From a chosen fraction of training on, every targeted matrix W is replaced, for the forward and
backward passes of each step, by Ŵ = dequantize(quantize(W, spec)): exactly the values the
packed artifact will hold for W under that spec. The gradient computed at Ŵ is then applied to
the float32 master W (a straight-through estimator: dŴ/dW taken as the identity), and the
optimizer steps W. So the model that is trained is the model that is packed.

The swap is done on the parameters in place, outside the model's forward: the compiled graph
(torch.compile) and DDP's hooks never see a quantizer, cannot constant-fold a QAT switch, and
CPU and GPU runs feed identical Ŵ to the same code. The quantizer call itself is marked
`torch.compiler.disable` so that it stays eager even if someone calls it from compiled code.

Targets: every 2-D parameter with more than `min_numel` (65,536) entries, the token embedding
included unless `skip_embed`; with the baseline's shapes that is the 54 block matrices and the
embedding. Validation while QAT is on is also run on Ŵ.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.distributed as dist
from torch import Tensor, nn

from pgolf_pack.errors import InputError
from pgolf_pack.quant import QuantSpec, dequantize, quantize

MIN_NUMEL = 65536
EMBEDDING = "tok_emb.weight"


@torch.compiler.disable
def quantized_weight(w: Tensor, spec: QuantSpec) -> Tensor:
    """dequantize(quantize(w, spec)) in w's dtype and device: what the artifact holds for w."""
    return dequantize(quantize(w.detach(), spec)).to(w.dtype)


def parse_spec(text: str) -> QuantSpec:
    """The QAT spec; InputError for a bad one (before a run writes anything)."""
    return QuantSpec.parse(text)


class QAT:
    """Fake-quantizes a model's large matrices from a fraction of training on.

    Args:
        model: the model whose parameters are swapped (the bare module, not a DDP or compiled wrapper).
        spec: a pgolf_pack quantization spec, e.g. "int6:std12.85".
        start: fraction of training (of ITERATIONS, or of the wallclock cap, whichever is further
            along) from which QAT is on; 0 starts with the first step.
        skip_embed: leave the token embedding in float.
        min_numel: only 2-D parameters with more entries than this are quantized.

    Raises:
        InputError: a bad spec, a start outside [0, 1], or no parameter to quantize.
    """

    def __init__(self, model: nn.Module, spec: str | QuantSpec, start: float, skip_embed: bool = False,
                 min_numel: int = MIN_NUMEL):
        self.spec = spec if isinstance(spec, QuantSpec) else parse_spec(spec)
        if not 0.0 <= start <= 1.0:
            raise InputError(f"QAT start must be a fraction in [0, 1], got {start}")
        self.start = start
        self.targets: list[tuple[str, nn.Parameter]] = [
            (name, p) for name, p in model.named_parameters()
            if p.ndim == 2 and p.numel() > min_numel and not (skip_embed and name == EMBEDDING)
        ]
        if not self.targets:
            raise InputError(f"QAT has nothing to quantize: no 2-D parameter has more than {min_numel} entries "
                             "(lower --qat-min-numel)")
        self._masters: list[Tensor] | None = None
        self.active = False

    @property
    def spec_text(self) -> str:
        return str(self.spec)

    def describe(self) -> str:
        n = sum(p.numel() for _, p in self.targets)
        embed = "with" if any(name == EMBEDDING for name, _ in self.targets) else "without"
        return (f"spec:{self.spec} start:{self.start:g} matrices:{len(self.targets)} ({embed} the embedding) "
                f"params:{n}")

    def should_start(self, step: int, iterations: int, elapsed_ms: float, cap_ms: float | None,
                     world_size: int = 1, device: torch.device | str = "cpu") -> bool:
        """True once training is `start` of the way through, by steps or by the wallclock cap.

        Under torch.distributed every rank must call it on the same steps: the ranks' clocks
        differ, so the decision is all-reduced (any rank past the mark turns QAT on everywhere).
        """
        progress = step / iterations if iterations > 0 else 1.0
        if cap_ms:
            progress = max(progress, elapsed_ms / cap_ms)
        decision = progress >= self.start
        if world_size > 1:
            flag = torch.tensor(float(decision), device=device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            decision = bool(flag.item() > 0)
        return decision

    @contextlib.contextmanager
    def applied(self) -> Iterator[None]:
        """Within the block the targets hold Ŵ; on exit their float masters are back, bit for bit.

        Gradients accumulated inside are gradients at Ŵ, to be applied to the masters.
        """
        if self._masters is None:
            self._masters = [torch.empty_like(p) for _, p in self.targets]
        with torch.no_grad():
            for master, (_, p) in zip(self._masters, self.targets):
                master.copy_(p)
                p.copy_(quantized_weight(p, self.spec))
        try:
            yield
        finally:
            with torch.no_grad():
                for master, (_, p) in zip(self._masters, self.targets):
                    p.copy_(master)
