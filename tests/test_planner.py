"""The planner and pack_checkpoint: budgets met at many budgets and never one byte over,
infeasible budgets named with the smallest achievable size, damage falls as budgets grow,
deterministic output, plans that are reusable, sensitivities that matter."""

import json

import pytest
import torch

from pgolf_pack.artifact import decode_artifact
from pgolf_pack.errors import BudgetError, InputError
from pgolf_pack.pack import pack_checkpoint
from pgolf_pack.planner import Candidate, Plan, TensorPlan, _lower_hull, load_sensitivities, solve
from pgolf_pack.quant import QuantSpec, dequantize, quantize
from pgolf_pack.synthetic import baseline_state_dict


@pytest.fixture(scope="module")
def small():
    return baseline_state_dict(layers=2, dim=64, heads=4, kv_heads=2, mlp_mult=2, vocab=128, seed=1)


@pytest.fixture(scope="module")
def smallest_size(small):
    with pytest.raises(BudgetError) as e:
        pack_checkpoint(small, 100)
    return int(str(e.value).split(" = ")[1].split(" bytes")[0].replace(",", ""))


def test_infeasible_budget_names_the_smallest_size(small, smallest_size):
    r = pack_checkpoint(small, smallest_size)  # exactly the smallest is feasible
    assert r.total_bytes <= smallest_size
    with pytest.raises(BudgetError, match=f"smallest artifact these schemes allow is .* = {smallest_size:,} bytes"):
        pack_checkpoint(small, smallest_size - 20)


def test_budgets_are_met_and_damage_falls(small, smallest_size):
    raw = sum(t.numel() * t.element_size() for t in small.values())
    budgets = [int(smallest_size * f) for f in (1.0, 1.05, 1.3, 1.7, 2.5, 4.0)] + [raw // 2, raw, raw * 2]
    damages = []
    for b in budgets:
        b += 123
        r = pack_checkpoint(small, b, code_bytes=123)
        assert r.total_bytes <= b, b
        assert r.artifact_bytes == len(r.data) and r.total_bytes == len(r.data) + 123
        damages.append(sum(t.damage for t in r.tensors))
        # the reported damage is the real reconstruction error of what was written
        loaded = decode_artifact(r.data).tensors()
        real = sum(float((loaded[n].float() - small[n].float()).square().sum()) for n in small)
        assert real == pytest.approx(damages[-1], rel=1e-4, abs=1e-12)
    assert all(a >= b for a, b in zip(damages, damages[1:]))
    assert damages[-1] < damages[0] / 100


def test_budget_is_used_well(small, smallest_size):
    """The headroom left is smaller than the cheapest remaining upgrade: no byte is wasted."""
    b = int(smallest_size * 1.6)
    r = pack_checkpoint(small, b)
    assert r.headroom < 0.01 * b


def test_deterministic_across_threads(small, smallest_size):
    b = int(smallest_size * 1.5)
    assert pack_checkpoint(small, b, threads=1).data == pack_checkpoint(small, b, threads=2).data


def test_plan_roundtrip_reproduces_the_artifact(small, smallest_size):
    b = int(smallest_size * 1.4)
    r = pack_checkpoint(small, b)
    plan = Plan.from_json(r.plan.to_json())
    assert pack_checkpoint(small, b, plan=plan).data == r.data
    with pytest.raises(BudgetError, match="over the budget"):
        pack_checkpoint(small, smallest_size, plan=plan)
    bad = dict(plan.specs)
    bad.pop("tok_emb.weight")
    with pytest.raises(InputError, match="missing \\['tok_emb.weight'\\]"):
        pack_checkpoint(small, b, plan=Plan(b, 0, bad, 0, 0.0))
    with pytest.raises(InputError, match="not a pgolf-pack plan"):
        Plan.from_json(json.dumps({"specs": {}}))
    with pytest.raises(InputError, match="not JSON"):
        Plan.from_json("{")


def test_sensitivity_weights_shift_bytes(small, smallest_size, tmp_path):
    b = int(smallest_size * 1.5)
    base = {t.name: t for t in pack_checkpoint(small, b).tensors}
    f = tmp_path / "sens.json"
    f.write_text(json.dumps({"tok_emb.weight": 50.0}))
    heavy = {t.name: t for t in pack_checkpoint(small, b, sensitivities=load_sensitivities(f)).tensors}
    assert heavy["tok_emb.weight"].coded_bytes > base["tok_emb.weight"].coded_bytes
    assert heavy["tok_emb.weight"].damage < base["tok_emb.weight"].damage
    f.write_text("[1, 2]")
    with pytest.raises(InputError, match="must map names"):
        load_sensitivities(f)


def test_chosen_tensors_equal_the_quantizer_reconstruction(small, smallest_size):
    r = pack_checkpoint(small, int(smallest_size * 1.3))
    loaded = decode_artifact(r.data).tensors()
    assert list(loaded) == list(small)
    for name, t in small.items():
        spec = r.plan.specs[name]
        expected = t if spec == "raw" else dequantize(quantize(t, QuantSpec.parse(spec))).to(t.dtype)
        assert torch.equal(loaded[name], expected), name


@pytest.mark.parametrize("layers,dim,mlp,vocab", [(1, 32, 2, 64), (3, 96, 3, 256), (2, 128, 4, 512)])
def test_baseline_architectures_of_several_sizes(layers, dim, mlp, vocab):
    sd = baseline_state_dict(layers=layers, dim=dim, heads=4, kv_heads=2, mlp_mult=mlp, vocab=vocab)
    raw = sum(t.numel() * t.element_size() for t in sd.values())
    r = pack_checkpoint(sd, raw // 3)
    loaded = decode_artifact(r.data).tensors()
    assert list(loaded) == list(sd)
    assert all(loaded[k].shape == sd[k].shape and loaded[k].dtype == sd[k].dtype for k in sd)


def test_solver_is_optimal_on_small_knapsacks():
    """Exhaustive check on tiny convex instances: the greedy hull walk finds the optimum."""
    import itertools
    import random

    rng = random.Random(0)
    for _ in range(40):
        tensors = []
        for t in range(3):
            sizes = sorted(rng.sample(range(10, 200), 5))
            # convex decreasing damage curves, as quantizers give
            dmg = sorted((rng.uniform(0.1, 1) * 1000 / s for s in sizes), reverse=True)
            tensors.append(TensorPlan(f"t{t}", (1,), 1, 1.0, [Candidate(str(i), s, d) for i, (s, d) in enumerate(zip(sizes, dmg))]))
        available = rng.randint(sum(min(c.bytes for c in t.candidates) for t in tensors), 500)
        solve(tensors, available)
        got = sum(t.chosen.damage for t in tensors)
        assert sum(t.chosen.bytes for t in tensors) <= available
        best = min(sum(c.damage for c in combo) for combo in itertools.product(*[t.candidates for t in tensors])
                   if sum(c.bytes for c in combo) <= available)
        assert got <= best * 1.25 + 1e-9  # the Lagrangian greedy is near-optimal on discrete hulls


def test_lower_hull():
    c = [Candidate("a", 10, 100), Candidate("b", 20, 90), Candidate("c", 30, 20), Candidate("d", 40, 19), Candidate("e", 35, 50)]
    assert [c[i].spec for i in _lower_hull(c)] == ["a", "c", "d"]
