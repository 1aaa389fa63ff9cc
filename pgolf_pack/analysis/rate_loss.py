"""The planner's rate-loss curve: total bytes against estimated damage over a range of budgets.

`evaluate_tensors` prices every candidate of every tensor once; `plan_from` then solves one
budget in milliseconds, so the curve costs a few dozen solves. Damage is the planner's
(sensitivity-weighted sum of squared weight errors), not a loss measured on data.
"""

from __future__ import annotations

import numpy as np

from pgolf_pack.artifact.format import container_bound
from pgolf_pack.errors import BudgetError
from pgolf_pack.planner import ANCHORS, TensorPlan, plan_from


def rate_loss_curve(tensors: list[TensorPlan], budget: int, code_bytes: int, points: int = 48) -> dict:
    """Solved plans from the smallest feasible budget up to well past `budget`, plus the
    uniform anchors (every tensor at int8:max, or at int6:std12.85, small tensors lossless).

    Leaves every TensorPlan's choice at the plan for `budget` (or the smallest, if infeasible).
    """
    overhead = container_bound(len(tensors)) + code_bytes
    smallest = sum(min(c.bytes for c in t.candidates) for t in tensors) + overhead
    largest = sum(max(c.bytes for c in t.candidates) for t in tensors) + overhead
    uniform = [_uniform(tensors, spec, overhead) for spec in ANCHORS]
    upper = min(largest, max([2 * budget] + [int(1.25 * u["total_bytes"]) for u in uniform]))
    budgets = sorted({int(b) for b in np.geomspace(smallest, max(upper, smallest + 1), points)} | {budget})
    curve = []
    for b in budgets:
        if b < smallest:
            continue
        p = plan_from(tensors, b, code_bytes)
        curve.append({"budget": b, "total_bytes": p.estimated_bytes + code_bytes, "damage": p.estimated_damage})
    chosen = None
    try:
        p = plan_from(tensors, budget, code_bytes)
        chosen = {"budget": budget, "total_bytes": p.estimated_bytes + code_bytes, "damage": p.estimated_damage}
    except BudgetError:
        plan_from(tensors, smallest, code_bytes)
    return {"points": curve, "uniform": uniform, "chosen": chosen, "smallest_total_bytes": smallest}


def _uniform(tensors: list[TensorPlan], spec: str, overhead: int) -> dict:
    total, damage = overhead, 0.0
    for t in tensors:
        match = [c for c in t.candidates if c.spec == spec]
        c = match[0] if match else min(t.candidates, key=lambda c: (c.damage, c.bytes))
        total += c.bytes
        damage += c.damage
    return {"spec": spec, "total_bytes": int(total), "damage": damage}
