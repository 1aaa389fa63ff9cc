"""What a tensor's name says: its layer, its role, and its counterpart in the layer before.

Layered models name tensors like `blocks.3.mlp.fc.weight`: the first all-digit component is
the layer index. The role is the name with that index replaced by `*`
(`blocks.*.mlp.fc.weight`), which groups the same matrix across layers; names without a
layer index are their own role (`tok_emb.weight`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

_LAYER = re.compile(r"(^|\.)(\d+)(\.|$)")


def layer_of(name: str) -> int | None:
    """The layer index in `name`, or None."""
    m = _LAYER.search(name)
    return int(m.group(2)) if m else None


def role_of(name: str) -> str:
    """`name` with its layer index replaced by `*`."""
    return _LAYER.sub(lambda m: f"{m.group(1)}*{m.group(3)}", name, count=1)


def short_role(role: str) -> str:
    """A compact label for plots: `blocks.*.mlp.fc.weight` -> `mlp.fc`, `tok_emb.weight` -> `tok_emb`."""
    label = role.split("*.", 1)[1] if "*." in role else role
    return label[: -len(".weight")] if label.endswith(".weight") else label


def short_name(name: str) -> str:
    """A compact tensor label: `blocks.3.mlp.fc.weight` -> `3.mlp.fc`."""
    layer = layer_of(name)
    label = short_role(role_of(name))
    return f"{layer}.{label}" if layer is not None else label


def previous_layer(name: str, names: Iterable[str]) -> str | None:
    """The same tensor one layer earlier (`blocks.2.X` for `blocks.3.X`), if `names` has it."""
    m = _LAYER.search(name)
    if not m or int(m.group(2)) == 0:
        return None
    prev = name[: m.start(2)] + str(int(m.group(2)) - 1) + name[m.end(2):]
    return prev if prev in set(names) else None


def role_groups(names: Iterable[str]) -> list[list[str]]:
    """Names grouped by role, each group in layer order (so a tensor's layer before comes
    first), the biggest groups first."""
    groups: dict[str, list[str]] = {}
    for n in names:
        groups.setdefault(role_of(n), []).append(n)
    out = [sorted(g, key=lambda n: (layer_of(n) is None, layer_of(n) or 0)) for g in groups.values()]
    return sorted(out, key=len, reverse=True)


def representatives(names: Iterable[str], numel: Callable[[str], int], limit: int) -> list[str]:
    """One tensor per role (its middle layer), the roles holding the most weights first,
    leaving out roles with under 1% of all the weights (control vectors and the like)."""
    groups = role_groups(names)
    weights = [sum(numel(n) for n in g) for g in groups]
    total = sum(weights)
    ranked = sorted((w, i) for i, w in enumerate(weights) if w >= 0.01 * total)
    return [groups[i][len(groups[i]) // 2] for w, i in sorted(ranked, key=lambda p: (-p[0], p[1]))[:limit]]
