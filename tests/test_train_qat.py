"""Quantization-aware training: the forward pass sees exactly dequantize(quantize(W)), the
gradient is the straight-through one, masters come back bit for bit, and the checkpoint a QAT run
writes, quantized with the same spec, scores what the run logged."""

from pathlib import Path

import pytest
import torch
from test_train_loop import one_thread, tiny_args  # noqa: F401  (fixture)

from pgolf_pack.bpb import build_byte_tables, evaluate, load_val_tokens
from pgolf_pack.errors import InputError
from pgolf_pack.quant import QuantSpec, dequantize, quantize
from pgolf_train.config import parse_config
from pgolf_train.model import GPT, GPTConfig, build_model_from_state_dict
from pgolf_train.qat import QAT
from pgolf_train.trainer import train

CFG = GPTConfig(vocab_size=64, num_layers=2, model_dim=32, num_heads=2, num_kv_heads=1, mlp_mult=2)
SPECS = ["int6:std12.85", "int4:mse", "pent:mse", "step:0.5", "int8:max:fp16", "fp16"]


def _random_model(seed=0):
    torch.manual_seed(seed)
    model = GPT(CFG)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * (0.2 if p.ndim == 2 else 0.05) + (1.0 if p.ndim == 1 else 0.0))
    return model


@pytest.mark.parametrize("spec", SPECS)
def test_forward_and_gradient_are_those_of_the_quantized_model(spec):
    model = _random_model()
    qat = QAT(model, spec, start=0.0, min_numel=1000)
    assert {n for n, _ in qat.targets} == {n for n, p in model.named_parameters() if p.ndim == 2 and p.numel() > 1000}
    masters = {k: v.clone() for k, v in model.state_dict().items()}

    # The model the packer ships: every target replaced by dequantize(quantize(W)).
    packed = _random_model()
    with torch.no_grad():
        for name, p in packed.named_parameters():
            if name in dict(qat.targets):
                p.copy_(dequantize(quantize(p, QuantSpec.parse(spec))))

    ids = torch.randint(0, 64, (3, 11))
    with qat.applied():
        for name, p in qat.targets:
            assert torch.equal(p, dequantize(quantize(masters[name], QuantSpec.parse(spec)))), name
        logits = model.logits(ids)
        model(ids, ids).backward()
    assert torch.equal(logits, packed.logits(ids))
    packed(ids, ids).backward()
    for (name, p), (_, q) in zip(model.named_parameters(), packed.named_parameters()):
        assert torch.equal(p.grad, q.grad), name  # straight through: the gradient at W-hat, for W
    assert all(torch.equal(v, masters[k]) for k, v in model.state_dict().items())  # masters restored exactly


def test_masters_come_back_after_an_exception():
    model = _random_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    qat = QAT(model, "int3:max", start=0.0, min_numel=0)
    with pytest.raises(RuntimeError, match="boom"), qat.applied():
        raise RuntimeError("boom")
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_targets_of_the_baseline():
    model = GPT(GPTConfig())
    assert len(QAT(model, "int6:std12.85", 0.7).targets) == 9 * 6 + 1  # block matrices and the embedding
    names = [n for n, _ in QAT(model, "int6:std12.85", 0.7, skip_embed=True).targets]
    assert len(names) == 54 and "tok_emb.weight" not in names


def test_start_is_a_fraction_of_steps_or_of_the_wallclock():
    qat = QAT(_random_model(), "int6:std12.85", start=0.7, min_numel=1000)
    assert not qat.should_start(69, 100, 0.0, None) and qat.should_start(70, 100, 0.0, None)
    assert qat.should_start(10, 100, 700.0, 1000.0) and not qat.should_start(10, 100, 690.0, 1000.0)


def test_bad_qat_settings_are_refused():
    with pytest.raises(InputError, match="int-k needs k in 2..8, got 9"):
        QAT(_random_model(), "int9", 0.5)
    with pytest.raises(InputError, match="no 2-D parameter has more than 65536 entries"):
        QAT(_random_model(), "int6:std12.85", 0.5)
    with pytest.raises(InputError, match=r"fraction in \[0, 1\]"):
        QAT(_random_model(), "int6:std12.85", 1.5, min_numel=0)


def test_qat_run_trains_the_model_that_gets_packed(train_data, tmp_path):
    spec = "int5:std10"
    args = tiny_args(train_data, tmp_path, iterations=20, qat_start=0.5, qat_spec=spec, qat_min_numel=1000)
    res = train(parse_config(args, environ={}))
    log = Path(res.log_path).read_text()
    assert "qat: spec:int5:std10:s5 start:0.5 matrices:" in log and "qat: on from step 10" in log
    assert "val_bpb:" in log.splitlines()[-1] and "qat:int5:std10:s5" in log.splitlines()[-1]

    sd = torch.load(res.model_path, weights_only=True)  # float masters, as the packer receives them
    model = build_model_from_state_dict(sd).eval()
    targets = dict(QAT(model, spec, 0.5, min_numel=1000).targets)
    assert any(not torch.equal(p, dequantize(quantize(p, QuantSpec.parse(spec)))) for p in targets.values())
    with torch.no_grad():
        for p in targets.values():
            p.copy_(dequantize(quantize(p, QuantSpec.parse(spec))))
    tokens = load_val_tokens(str(train_data / "fineweb_val_*.bin"), 64, max_tokens=4096)
    score = evaluate(model.logits, tokens, build_byte_tables(train_data / "tokenizer.model", 384), seq_len=64)
    assert score.val_bpb == pytest.approx(res.val_bpb, abs=1e-6)


def test_cli_refuses_a_bad_spec_before_writing_anything(train_data, tmp_path, capsys):
    from pgolf_train.cli import main

    assert main(tiny_args(train_data, tmp_path / "out", qat_start=0.5, qat_spec="int6:sdt3")) == 2
    assert "unknown clip 'sdt3'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
