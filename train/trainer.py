"""The training loop: one process, or one per GPU under torchrun, with the baseline's recipe.

Per step, the global batch (TRAIN_BATCH_TOKENS) is cut into MICRO_BATCHES micro-batches shared
out over the ranks, so the data and the gradient of a step do not depend on the world size.
Gradients are averaged by DDP (NCCL on CUDA, gloo on CPU). Block matrices are trained with Muon,
the embedding, an untied head, the control tensors and skip weights with Adam, at the
baseline's learning rates. The learning rate decays linearly to zero over the last
WARMDOWN_ITERS steps, counted in steps or, under MAX_WALLCLOCK_SECONDS, in estimated time,
whichever comes first; Muon's momentum warms up from 0.85 to 0.95.

WARMUP_STEPS, as in the challenge, are not a learning-rate warmup: they run real steps to
compile and warm the kernels, then restore the initial weights, optimizer state and data
position, so measured training starts from the true init (LR_WARMUP_STEPS is the ramp).

Timing excludes validation, as the challenge's does. Rank 0 writes logs/RUN_ID.txt and
final_model.pt (`torch.save(model.state_dict())`, float32) under OUT_DIR.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import gc
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from pgolf_pack.bpb import load_val_tokens
from pgolf_pack.errors import InputError
from pgolf_train.config import TrainConfig
from pgolf_train.data import VAL_PATTERN, TrainBatches, train_shards
from pgolf_train.model import CONTROL_NAMES, GPT, GPTConfig
from pgolf_train.muon import Muon
from pgolf_train.tokenizer import load_tokenizer
from pgolf_train.validate import Validator

MODEL_FILE = "final_model.pt"


@dataclass(frozen=True)
class TrainResult:
    """What a run did (the same on every rank)."""

    steps: int
    train_time_ms: float
    val_loss: float
    val_bpb: float
    model_path: str
    log_path: str
    num_params: int
    stopped_early: bool


@dataclass(frozen=True)
class Runtime:
    """Where this process runs: device, rank, world size, compute dtype, compile switch."""

    device: torch.device
    rank: int
    local_rank: int
    world_size: int
    bf16: bool
    compile: bool

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def master(self) -> bool:
        return self.rank == 0

    def autocast(self) -> contextlib.AbstractContextManager:
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.bf16)

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


def setup_runtime(cfg: TrainConfig) -> Runtime:
    """Pick the device and join the process group torchrun describes (RANK, WORLD_SIZE, LOCAL_RANK)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    kind = cfg.device
    if kind == "auto":
        kind = "cuda" if torch.cuda.is_available() else "cpu"
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise InputError("--device cuda, but torch sees no CUDA device; use --device cpu")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    else:
        device = torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if kind == "cuda" else "gloo")
    bf16 = cfg.dtype == "bf16" or (cfg.dtype == "auto" and kind == "cuda")
    compile_on = cfg.compile == "on" or (cfg.compile == "auto" and kind == "cuda")
    return Runtime(device, rank, local_rank, world, bf16, compile_on)


class RunLog:
    """Rank 0's log: lines to stdout and to OUT_DIR/logs/RUN_ID.txt; other ranks stay quiet."""

    def __init__(self, path: Path | None):
        self.path = path
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("")

    def __call__(self, line: str, console: bool = True) -> None:
        if self.path is None:
            return
        if console:
            print(line, flush=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line + "\n")


def model_config(cfg: TrainConfig) -> GPTConfig:
    return GPTConfig(
        vocab_size=cfg.vocab_size, num_layers=cfg.num_layers, model_dim=cfg.model_dim, num_heads=cfg.num_heads,
        num_kv_heads=cfg.num_kv_heads, mlp_mult=cfg.mlp_mult, tie_embeddings=cfg.tie_embeddings,
        rope_base=cfg.rope_base, logit_softcap=cfg.logit_softcap, qk_gain_init=cfg.qk_gain_init,
        tied_embed_init_std=cfg.tied_embed_init_std,
    )


def build_optimizers(model: GPT, cfg: TrainConfig, rt: Runtime) -> tuple[list[torch.optim.Optimizer], Muon]:
    """Muon for block matrices; Adam for the embedding, an untied head, control tensors, skip weights.

    Every param group carries `base_lr`, which the schedule scales each step.
    """
    matrices, scalars = [], [model.skip_weights]
    for name, p in model.blocks.named_parameters():
        is_control = p.ndim < 2 or any(c in name for c in CONTROL_NAMES)
        (scalars if is_control else matrices).append(p)
    adam = dict(betas=(cfg.beta1, cfg.beta2), eps=cfg.adam_eps, fused=rt.device.type == "cuda")
    embed_lr = cfg.tied_embed_lr if cfg.tie_embeddings else cfg.embed_lr
    groups = [([model.tok_emb.weight], embed_lr), (scalars, cfg.scalar_lr)]
    if model.lm_head is not None:
        groups.append(([model.lm_head.weight], cfg.head_lr))
    optimizers: list[torch.optim.Optimizer] = [
        torch.optim.Adam([{"params": ps, "lr": lr, "base_lr": lr}], **adam) for ps, lr in groups
    ]
    muon = Muon([{"params": matrices, "lr": cfg.matrix_lr, "base_lr": cfg.matrix_lr}], lr=cfg.matrix_lr,
                momentum=cfg.muon_momentum, backend_steps=cfg.muon_backend_steps, weight_decay=cfg.muon_wd,
                ns_dtype=torch.bfloat16 if rt.device.type == "cuda" else torch.float32, compile=rt.compile)
    optimizers.append(muon)
    return optimizers, muon


def lr_scale(cfg: TrainConfig, step: int, elapsed_ms: float) -> float:
    """Learning-rate multiplier: linear warmup, then 1, then linear warmdown to 0.

    The warmdown starts WARMDOWN_ITERS steps before ITERATIONS or, under a wallclock cap, when the
    time left (at the average step time so far) is that many steps, whichever is earlier.
    """
    scale = 1.0
    if cfg.lr_warmup_steps > 0:
        scale = min(scale, (step + 1) / cfg.lr_warmup_steps)
    if cfg.warmdown_iters > 0:
        scale = min(scale, max(cfg.iterations - step, 0) / cfg.warmdown_iters)
        if cfg.max_wallclock_seconds > 0 and step > 0:
            remaining_ms = max(1000.0 * cfg.max_wallclock_seconds - elapsed_ms, 0.0)
            scale = min(scale, remaining_ms / (cfg.warmdown_iters * elapsed_ms / step))
    return scale


def _environment_lines(rt: Runtime) -> Iterator[str]:
    yield f"python:{platform.python_version()} torch:{torch.__version__} device:{rt.device} " \
          f"world_size:{rt.world_size} bf16:{rt.bf16} compile:{rt.compile}"
    if rt.device.type == "cuda" and shutil.which("nvidia-smi"):
        out = subprocess.run(["nvidia-smi"], capture_output=True, text=True, check=False).stdout
        yield from out.rstrip().splitlines()


def train(cfg: TrainConfig) -> TrainResult:
    """Run training as `cfg` says; return what happened. See the module docstring."""
    rt = setup_runtime(cfg)
    try:
        result = _train(cfg, rt)
    except BaseException:
        # No collective teardown after a failure: the other ranks may be stuck in a collective.
        if rt.distributed and dist.is_initialized():
            dist.destroy_process_group()
        raise
    if rt.distributed and dist.is_initialized():
        # All ranks reach this point before any tears down, with DDP's buckets freed first:
        # gloo aborts the process when its worker threads outlive a peer's teardown.
        dist.barrier()
        gc.collect()
        dist.destroy_process_group()
    return result


def _train(cfg: TrainConfig, rt: Runtime) -> TrainResult:
    if cfg.micro_batches % rt.world_size:
        raise InputError(f"MICRO_BATCHES {cfg.micro_batches} must be a multiple of the world size {rt.world_size}")
    accum = cfg.micro_batches // rt.world_size
    torch.manual_seed(cfg.seed)
    sp = load_tokenizer(cfg.tokenizer_path)
    if int(sp.vocab_size()) != cfg.vocab_size:
        raise InputError(f"VOCAB_SIZE={cfg.vocab_size} but the tokenizer {cfg.tokenizer_path} has {int(sp.vocab_size())} "
                         f"pieces; set VOCAB_SIZE={int(sp.vocab_size())}")
    train_files = train_shards(cfg.data_path)
    val_tokens = load_val_tokens(os.path.join(cfg.data_path, VAL_PATTERN), cfg.train_seq_len,
                                 max_tokens=cfg.val_max_tokens or None)
    validator = Validator(val_tokens, sp, cfg.vocab_size, cfg.train_seq_len,
                          cfg.val_batch_size // cfg.micro_batches // cfg.train_seq_len, rt.device, rt.rank, rt.world_size)

    base = GPT(model_config(cfg)).to(rt.device)
    if rt.bf16:
        base.residual_dtype = torch.bfloat16
    compiled: nn.Module = torch.compile(base, dynamic=False, fullgraph=True) if rt.compile else base
    model: nn.Module = compiled
    if rt.distributed:
        ids = [rt.local_rank] if rt.device.type == "cuda" else None
        model = DistributedDataParallel(compiled, device_ids=ids, broadcast_buffers=False)
    optimizers, muon = build_optimizers(base, cfg, rt)
    logits = torch.compile(base.logits, dynamic=False) if rt.compile else base.logits

    def validate() -> tuple[float, float]:
        def logits_fn(x: torch.Tensor) -> torch.Tensor:
            with rt.autocast():
                return logits(x)

        base.eval()
        try:
            return validator.evaluate(logits_fn)
        finally:
            base.train()

    qat = None
    if cfg.qat_enabled:
        from pgolf_train.qat import QAT  # imports pgolf_pack.quant only when asked for

        qat = QAT(base, cfg.qat_spec, cfg.qat_start, skip_embed=cfg.qat_skip_embed, min_numel=cfg.qat_min_numel)

    # Inputs are good: only now does the run leave files behind.
    out_dir = Path(cfg.out_dir)
    run_id = cfg.run_id or time.strftime("%Y%m%d-%H%M%S")
    log_path = out_dir / "logs" / f"{run_id}.txt"
    log = RunLog(log_path if rt.master else None)
    log(" ".join(sys.argv), console=False)
    for line in _environment_lines(rt):
        log(line, console=False)
    for f in dataclasses.fields(cfg):
        log(f"config {f.name}={getattr(cfg, f.name)!r}", console=False)
    partial = " (VAL_MAX_TOKENS: a prefix, not the challenge's full split)" if cfg.val_max_tokens else ""
    log(f"data: {len(train_files)} train shards in {cfg.data_path}, val tokens:{validator.total_tokens}{partial}")
    if qat is not None:
        log(f"qat: {qat.describe()}")
    log(f"model_params:{base.num_params()} layers:{cfg.num_layers} dim:{cfg.model_dim} heads:{cfg.num_heads} "
        f"kv_heads:{cfg.num_kv_heads} mlp_mult:{cfg.mlp_mult} vocab:{cfg.vocab_size} tied:{cfg.tie_embeddings}")
    log(f"world_size:{rt.world_size} grad_accum_steps:{accum} device:{rt.device.type} bf16:{rt.bf16} "
        f"compile:{rt.compile}")
    log(f"train_batch_tokens:{cfg.train_batch_tokens} train_seq_len:{cfg.train_seq_len} iterations:{cfg.iterations} "
        f"warmup_steps:{cfg.warmup_steps} max_wallclock_seconds:{cfg.max_wallclock_seconds:.3f} seed:{cfg.seed}")

    def batches() -> TrainBatches:
        return TrainBatches(train_files, cfg.train_batch_tokens, cfg.train_seq_len, cfg.micro_batches,
                            rt.rank, rt.world_size, rt.device, cfg.vocab_size)

    def zero_grad() -> None:
        for opt in optimizers:
            opt.zero_grad(set_to_none=True)

    def train_step(loader: TrainBatches) -> torch.Tensor:
        """Forward and backward over this rank's micro-batches; returns the mean loss (a tensor)."""
        total = torch.zeros((), device=rt.device)
        for micro in range(accum):
            x, y = loader.next()
            sync = contextlib.nullcontext() if not rt.distributed or micro == accum - 1 else model.no_sync()
            with sync:
                with rt.autocast():
                    loss = model(x, y)
                (loss / accum).backward()
            total += loss.detach()
        return total / accum

    loader = batches()
    if cfg.warmup_steps > 0:
        weights = {k: v.detach().clone() for k, v in base.state_dict().items()}
        states = [copy.deepcopy(opt.state_dict()) for opt in optimizers]
        for i in range(cfg.warmup_steps):
            zero_grad()
            train_step(loader)
            for opt in optimizers:
                opt.step()
            if cfg.warmup_steps <= 20 or (i + 1) % 10 == 0 or i + 1 == cfg.warmup_steps:
                log(f"warmup_step:{i + 1}/{cfg.warmup_steps}")
        base.load_state_dict(weights)
        for opt, state in zip(optimizers, states):
            opt.load_state_dict(state)
        zero_grad()
        loader = batches()

    cap_ms = 1000.0 * cfg.max_wallclock_seconds if cfg.max_wallclock_seconds > 0 else None
    train_ms, step, stop_at = 0.0, 0, None
    val_loss = val_bpb = float("nan")
    rt.sync()
    t0 = time.perf_counter()
    while True:
        last = step == cfg.iterations or (stop_at is not None and step >= stop_at)
        if last or (cfg.val_loss_every > 0 and step % cfg.val_loss_every == 0):
            rt.sync()
            train_ms += 1000.0 * (time.perf_counter() - t0)
            with qat.applied() if qat is not None and qat.active else contextlib.nullcontext():
                val_loss, val_bpb = validate()
            tag = f" qat:{qat.spec_text}" if qat is not None and qat.active else ""
            log(f"step:{step}/{cfg.iterations} val_loss:{val_loss:.4f} val_bpb:{val_bpb:.4f} "
                f"train_time:{train_ms:.0f}ms step_avg:{train_ms / max(step, 1):.2f}ms{tag}")
            rt.sync()
            t0 = time.perf_counter()
        if last:
            break
        elapsed = train_ms + 1000.0 * (time.perf_counter() - t0)
        if qat is not None and not qat.active and qat.should_start(step, cfg.iterations, elapsed, cap_ms,
                                                                    rt.world_size, rt.device):
            qat.active = True
            log(f"qat: on from step {step} ({qat.spec_text})")
        scale = lr_scale(cfg, step, elapsed)
        frac = min(step / cfg.muon_momentum_warmup_steps, 1.0) if cfg.muon_momentum_warmup_steps else 1.0
        for group in muon.param_groups:
            group["momentum"] = (1 - frac) * cfg.muon_momentum_warmup_start + frac * cfg.muon_momentum
        for opt in optimizers:
            for group in opt.param_groups:
                group["lr"] = group["base_lr"] * scale
        zero_grad()
        with qat.applied() if qat is not None and qat.active else contextlib.nullcontext():
            train_loss = train_step(loader)
        if cfg.grad_clip_norm > 0:
            nn.utils.clip_grad_norm_(base.parameters(), cfg.grad_clip_norm)
        for opt in optimizers:
            opt.step()
        step += 1
        approx_ms = train_ms + 1000.0 * (time.perf_counter() - t0)
        if cfg.train_log_every > 0 and (step <= 10 or step % cfg.train_log_every == 0 or stop_at is not None):
            if rt.distributed:  # every rank logs on the same steps, so all take part
                dist.all_reduce(train_loss)
                train_loss /= rt.world_size
            log(f"step:{step}/{cfg.iterations} train_loss:{train_loss.item():.4f} "
                f"train_time:{approx_ms:.0f}ms step_avg:{approx_ms / step:.2f}ms")
        if cap_ms is not None and stop_at is None:
            reached = torch.tensor(float(approx_ms >= cap_ms), device=rt.device)
            if rt.distributed:
                dist.all_reduce(reached, op=dist.ReduceOp.MAX)
            if reached.item() > 0:
                stop_at = step
    stopped_early = step < cfg.iterations
    if stopped_early:
        log(f"stopping_early: wallclock_cap train_time:{train_ms:.0f}ms step:{step}/{cfg.iterations}")
    if rt.device.type == "cuda":
        log(f"peak memory allocated: {torch.cuda.max_memory_allocated() // 2**20} MiB "
            f"reserved: {torch.cuda.max_memory_reserved() // 2**20} MiB")

    model_path = out_dir / MODEL_FILE
    if rt.master:
        out_dir.mkdir(parents=True, exist_ok=True)
        torch.save({k: v.detach().cpu() for k, v in base.state_dict().items()}, model_path)  # loads anywhere
    if rt.distributed:
        dist.barrier()
    size = model_path.stat().st_size if rt.master else 0
    qat_note = f" qat:{qat.spec_text} (val measured with quantized matrices)" if qat is not None and qat.active else ""
    log(f"final steps:{step} train_time:{train_ms:.0f}ms step_avg:{train_ms / max(step, 1):.2f}ms "
        f"val_loss:{val_loss:.4f} val_bpb:{val_bpb:.4f} model:{model_path} ({size} bytes) log:{log_path}{qat_note}")
    return TrainResult(step, train_ms, val_loss, val_bpb, str(model_path), str(log_path), base.num_params(), stopped_early)
