"""Training options: one table that gives each option its flag, environment variable and help.

Every field of `TrainConfig` is an option. A value comes from, in order of precedence: the
command-line flag (`--num-layers 11`), the environment variable named in the table
(`NUM_LAYERS=11`, the challenge's name and meaning where the challenge has one), then the
default (the challenge baseline's). `parse_config(argv, environ)` does the resolution and
checks the values; `build_parser()` gives the argparse parser whose --help lists them all.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Union, get_args, get_origin, get_type_hints

from pgolf_pack.errors import InputError


class ConfigError(InputError):
    """An option with a bad value."""


def _opt(default: Any, help: str, env: str | None = None, choices: Sequence[str] | None = None,
         group: str = "run") -> Any:
    return field(default=default, metadata={"help": help, "env": env, "choices": choices, "group": group})


@dataclass(frozen=True)
class TrainConfig:
    # data
    data_path: str = _opt("./data/datasets/fineweb10B_sp1024", "directory holding fineweb_train_*.bin and fineweb_val_*.bin",
                          "DATA_PATH", group="data")
    tokenizer_path: str = _opt("./data/tokenizers/fineweb_1024_bpe.model",
                               "SentencePiece .model used to count bytes for val_bpb", "TOKENIZER_PATH", group="data")
    # model
    vocab_size: int = _opt(1024, "vocabulary size; must equal the tokenizer's", "VOCAB_SIZE", group="model")
    num_layers: int = _opt(9, "transformer blocks", "NUM_LAYERS", group="model")
    model_dim: int = _opt(512, "model width", "MODEL_DIM", group="model")
    num_heads: int = _opt(8, "attention heads", "NUM_HEADS", group="model")
    num_kv_heads: int = _opt(4, "key/value heads (grouped-query attention)", "NUM_KV_HEADS", group="model")
    mlp_mult: float = _opt(2.0, "MLP hidden width as a multiple of the model width", "MLP_MULT", group="model")
    tie_embeddings: bool = _opt(True, "share the token embedding with the output head", "TIE_EMBEDDINGS", group="model")
    rope_base: float = _opt(10000.0, "rotary embedding base", "ROPE_BASE", group="model")
    logit_softcap: float = _opt(30.0, "logits are cap * tanh(z / cap)", "LOGIT_SOFTCAP", group="model")
    qk_gain_init: float = _opt(1.5, "initial per-head query gain", "QK_GAIN_INIT", group="model")
    # schedule
    iterations: int = _opt(20000, "optimizer steps", "ITERATIONS", group="schedule")
    train_batch_tokens: int = _opt(524288, "tokens per optimizer step, over all ranks", "TRAIN_BATCH_TOKENS", group="schedule")
    train_seq_len: int = _opt(1024, "sequence length (training and validation)", "TRAIN_SEQ_LEN", group="schedule")
    micro_batches: int = _opt(8, "micro-batches per step over all ranks (gradient accumulation = this / world size)",
                              "PGOLF_MICRO_BATCHES", group="schedule")
    warmup_steps: int = _opt(20, "compile-priming steps whose weight and optimizer changes are undone before training",
                             "WARMUP_STEPS", group="schedule")
    lr_warmup_steps: int = _opt(0, "linear learning-rate warmup over this many steps", "PGOLF_LR_WARMUP_STEPS", group="schedule")
    warmdown_iters: int = _opt(1200, "learning rate decays linearly to 0 over this many final steps (estimated "
                               "from the step time under a wallclock cap)", "WARMDOWN_ITERS", group="schedule")
    max_wallclock_seconds: float = _opt(600.0, "stop training after this many seconds (0: no cap)",
                                        "MAX_WALLCLOCK_SECONDS", group="schedule")
    seed: int = _opt(1337, "random seed (init and nothing else: data order is fixed)", "SEED", group="schedule")
    # optimizer
    matrix_lr: float = _opt(0.04, "Muon learning rate for block matrices", "MATRIX_LR", group="optimizer")
    scalar_lr: float = _opt(0.04, "Adam learning rate for control tensors and skip weights", "SCALAR_LR", group="optimizer")
    tied_embed_lr: float = _opt(0.05, "Adam learning rate for a tied embedding", "TIED_EMBED_LR", group="optimizer")
    embed_lr: float = _opt(0.6, "Adam learning rate for an untied embedding", "EMBED_LR", group="optimizer")
    head_lr: float = _opt(0.008, "Adam learning rate for an untied output head", "HEAD_LR", group="optimizer")
    tied_embed_init_std: float = _opt(0.005, "init std of a tied embedding", "TIED_EMBED_INIT_STD", group="optimizer")
    muon_momentum: float = _opt(0.95, "Muon momentum after its warmup", "MUON_MOMENTUM", group="optimizer")
    muon_momentum_warmup_start: float = _opt(0.85, "Muon momentum at step 0", "MUON_MOMENTUM_WARMUP_START", group="optimizer")
    muon_momentum_warmup_steps: int = _opt(500, "steps over which Muon momentum rises to its final value",
                                           "MUON_MOMENTUM_WARMUP_STEPS", group="optimizer")
    muon_backend_steps: int = _opt(5, "Newton-Schulz iterations per Muon update", "MUON_BACKEND_STEPS", group="optimizer")
    muon_wd: float = _opt(0.0, "decoupled weight decay of Muon matrices", "MUON_WD", group="optimizer")
    beta1: float = _opt(0.9, "Adam beta1", "BETA1", group="optimizer")
    beta2: float = _opt(0.95, "Adam beta2", "BETA2", group="optimizer")
    adam_eps: float = _opt(1e-8, "Adam epsilon", "ADAM_EPS", group="optimizer")
    grad_clip_norm: float = _opt(0.0, "clip the global gradient norm to this (0: off)", "GRAD_CLIP_NORM", group="optimizer")
    # validation and logs
    val_loss_every: int = _opt(1000, "validate every this many steps (0: only at the end)", "VAL_LOSS_EVERY", group="logging")
    val_batch_size: int = _opt(524288, "validation tokens per batch, over all ranks", "VAL_BATCH_SIZE", group="logging")
    val_max_tokens: int = _opt(0, "validate on only the first this many tokens (0: the whole split, as the challenge)",
                               "PGOLF_VAL_MAX_TOKENS", group="logging")
    train_log_every: int = _opt(200, "log the training loss every this many steps", "TRAIN_LOG_EVERY", group="logging")
    run_id: str = _opt("", "name of the log file logs/RUN_ID.txt (default: a timestamp)", "RUN_ID", group="logging")
    out_dir: str = _opt(".", "where final_model.pt and logs/ are written", "PGOLF_OUT_DIR", group="logging")
    # quantization-aware training
    qat_start: float = _opt(-1.0, "fraction of training after which matrices are fake-quantized (-1: no QAT)",
                            "PGOLF_QAT_START", group="qat")
    qat_spec: str = _opt("int6:std12.85", "pgolf_pack quantization spec QAT trains against (pack with the same)",
                         "PGOLF_QAT_SPEC", group="qat")
    qat_skip_embed: bool = _opt(False, "leave the token embedding out of QAT", "PGOLF_QAT_SKIP_EMBED", group="qat")
    qat_min_numel: int = _opt(65536, "QAT quantizes the 2-D parameters with more entries than this",
                              "PGOLF_QAT_MIN_NUMEL", group="qat")
    # hardware
    device: str = _opt("auto", "auto picks cuda when available", "PGOLF_DEVICE", choices=("auto", "cpu", "cuda"), group="hardware")
    compile: str = _opt("auto", "torch.compile the model (auto: on for cuda)", "PGOLF_COMPILE", choices=("auto", "on", "off"),
                        group="hardware")
    dtype: str = _opt("auto", "compute dtype under autocast (auto: bf16 on cuda, fp32 on cpu)", "PGOLF_DTYPE",
                      choices=("auto", "bf16", "fp32"), group="hardware")

    def validate(self) -> None:
        """Raise ConfigError for values no run could use."""
        positive = ("vocab_size", "num_layers", "model_dim", "num_heads", "num_kv_heads", "train_batch_tokens",
                    "train_seq_len", "micro_batches", "val_batch_size", "muon_backend_steps")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"{_env(name)} must be at least 1, got {getattr(self, name)}")
        for name in ("iterations", "warmup_steps", "lr_warmup_steps", "warmdown_iters", "val_loss_every",
                     "train_log_every", "val_max_tokens", "muon_momentum_warmup_steps", "qat_min_numel"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{_env(name)} must be non-negative, got {getattr(self, name)}")
        if self.max_wallclock_seconds < 0:
            raise ConfigError(f"MAX_WALLCLOCK_SECONDS must be non-negative, got {self.max_wallclock_seconds}")
        if self.mlp_mult <= 0:
            raise ConfigError(f"MLP_MULT must be positive, got {self.mlp_mult}")
        if self.train_batch_tokens % (self.micro_batches * self.train_seq_len):
            raise ConfigError(f"TRAIN_BATCH_TOKENS {self.train_batch_tokens} must be a multiple of MICRO_BATCHES x "
                              f"TRAIN_SEQ_LEN = {self.micro_batches * self.train_seq_len}")
        if not (self.qat_start == -1.0 or 0.0 <= self.qat_start <= 1.0):
            raise ConfigError(f"--qat-start must be a fraction in [0, 1] (or -1 for no QAT), got {self.qat_start}")

    @property
    def qat_enabled(self) -> bool:
        return self.qat_start >= 0.0


def _env(name: str) -> str:
    return TrainConfig.__dataclass_fields__[name].metadata["env"] or f"--{name.replace('_', '-')}"


def _base_type(name: str) -> type:
    hint = get_type_hints(TrainConfig)[name]
    if get_origin(hint) is Union:
        hint = next(a for a in get_args(hint) if a is not type(None))
    return hint


def _convert(name: str, text: str, source: str) -> Any:
    kind = _base_type(name)
    f = TrainConfig.__dataclass_fields__[name]
    try:
        if kind is bool:
            low = text.strip().lower()
            if low not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ValueError
            value: Any = low in ("1", "true", "yes", "on")
        elif kind is int:
            value = int(text)
        elif kind is float:
            value = float(text)
        else:
            value = text
    except ValueError:
        raise ConfigError(f"{source}={text!r} is not a valid {kind.__name__}") from None
    choices = f.metadata["choices"]
    if choices and value not in choices:
        raise ConfigError(f"{source}={text!r}: choose one of {', '.join(choices)}")
    return value


def _flag_type(name: str) -> Any:
    def convert(text: str) -> Any:
        try:
            return _convert(name, text, "value")
        except ConfigError as e:  # argparse reports ArgumentTypeError as "argument --flag: message"
            raise argparse.ArgumentTypeError(str(e)) from None

    return convert


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors raised as ConfigError instead of a usage dump and exit."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise ConfigError(message)


_METAVARS = {int: "N", float: "X", str: "TEXT"}
GROUP_TITLES = {
    "data": "data", "model": "model shape", "schedule": "schedule", "optimizer": "optimizer",
    "logging": "validation and logs", "qat": "quantization-aware training", "hardware": "hardware",
}


def build_parser(prog: str = "pgolf-train") -> argparse.ArgumentParser:
    """The training parser. Defaults are None so unset flags fall through to env vars."""
    parser = _Parser(
        prog=prog,
        usage=f"{prog} [train] [options]   |   {prog} prepare --out DIR [options]",
        description="Train the Parameter Golf baseline GPT (one process, or several under torchrun) and write "
                    "final_model.pt. Every option can also be set by the environment variable shown beside "
                    "it; flags win over variables, variables over defaults.",
        epilog="Data: `pgolf-train prepare --help` makes shards and a tokenizer from text. "
               "Several GPUs: torchrun --standalone --nproc_per_node=8 -m pgolf_train [options].",
    )
    groups = {key: parser.add_argument_group(title) for key, title in GROUP_TITLES.items()}
    for f in dataclasses.fields(TrainConfig):
        meta = f.metadata
        flag = "--" + f.name.replace("_", "-")
        env = f" [env {meta['env']}]" if meta["env"] else ""
        help_text = f"{meta['help']}{env} (default: {f.default!r})".replace("%", "%%")
        group = groups[meta["group"]]
        if _base_type(f.name) is bool:
            group.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        else:
            metavar = "{" + ",".join(meta["choices"]) + "}" if meta["choices"] else _METAVARS[_base_type(f.name)]
            group.add_argument(flag, dest=f.name, default=None, metavar=metavar, help=help_text,
                               type=_flag_type(f.name))
    return parser


def parse_config(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> TrainConfig:
    """Resolve every option (flag, then environment variable, then default) and validate.

    Raises:
        ConfigError: an unknown flag, an unparsable value, or an invalid combination.
    """
    environ = os.environ if environ is None else environ
    args = build_parser().parse_args(list(argv) if argv is not None else None)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(TrainConfig):
        flag_value = getattr(args, f.name)
        env_name = f.metadata["env"]
        if flag_value is not None:
            values[f.name] = flag_value
        elif env_name and environ.get(env_name, "") != "":
            values[f.name] = _convert(f.name, environ[env_name], env_name)
    cfg = TrainConfig(**values)
    cfg.validate()
    return cfg


def env_names() -> list[str]:
    """Every environment variable the trainer reads."""
    return [f.metadata["env"] for f in dataclasses.fields(TrainConfig) if f.metadata["env"]]
