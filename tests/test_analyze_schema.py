"""report.json against the schema table in docs/ANALYZE.md, in both directions: every field a
report holds is documented with the right type, and every documented field occurs in one of
the reports made here (checkpoints with and without a plan, with passthrough choices, with
--full, and an artifact)."""

import json
import re
from pathlib import Path

import pytest

from pgolf_pack.analysis import CheckpointOptions, analyze_artifact, analyze_checkpoint
from pgolf_pack.pack import pack_checkpoint
from pgolf_pack.synthetic import baseline_state_dict

DOC = Path(__file__).resolve().parents[1] / "docs" / "ANALYZE.md"
TYPES = {
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "str": lambda v: isinstance(v, str),
    "bool": lambda v: isinstance(v, bool),
    "list": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
    "null": lambda v: v is None,
}


def documented() -> dict[tuple[str, ...], set[str]]:
    text = DOC.read_text().split("## report.json", 1)[1].split("\n## ", 1)[0]
    out = {}
    for path, types in re.findall(r"^\| `([^`]+)` \| ([a-z ]+?) \|", text, re.M):
        kinds = set(types.split(" or "))
        assert kinds <= set(TYPES), (path, types)
        out[tuple(path.replace("[]", ".[]").split("."))] = kinds
    return out


def matches(pattern: tuple[str, ...], path: tuple[str, ...]) -> bool:
    return len(pattern) == len(path) and all(p in ("*", q) for p, q in zip(pattern, path))


def check(report: dict, schema: dict, seen: set) -> list[str]:
    problems = []

    def visit(value, path: tuple[str, ...]):
        found = [p for p in schema if matches(p, path)]
        if path:
            if not found and not isinstance(value, dict):
                problems.append(f"undocumented field {'.'.join(path)}")
            for p in found:
                seen.add(p)
                if not any(TYPES[k](value) for k in schema[p]):
                    problems.append(f"{'.'.join(path)}: {type(value).__name__}, documented as {schema[p]}")
        if isinstance(value, dict):
            for k, v in value.items():
                visit(v, path + (k,))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for v in value:
                visit(v, path + ("[]",))

    visit(report, ())
    return problems


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    sd = baseline_state_dict(layers=2, dim=64, heads=4, kv_heads=2, vocab=128, seed=5)
    kw = dict(small_numel=1000, schemes=(("int6", "int6:std12.85"), ("step", "step:0.3")))
    art = tmp_path_factory.mktemp("schema") / "m.pgpk"
    art.write_bytes(pack_checkpoint(sd, 40_000).data)
    made = {
        "planned": analyze_checkpoint(sd, CheckpointOptions(budget=40_000, sample=20_000, **kw)),
        "full": analyze_checkpoint(sd, CheckpointOptions(budget=40_000, sample=None, **kw)),
        "lossless": analyze_checkpoint(sd, CheckpointOptions(budget=10**8, **kw)),  # passthrough choices
        "infeasible": analyze_checkpoint(sd, CheckpointOptions(budget=1_000, **kw)),
        "artifact": analyze_artifact(art, code_bytes=10),
    }
    for r in made.values():
        r["plots"] = []
        json.loads(json.dumps(r, allow_nan=False))  # plain JSON, no NaN
    return made


def test_reports_hold_only_documented_fields_of_documented_types(reports):
    schema = documented()
    assert len(schema) > 150
    seen = set()
    for name, r in reports.items():
        assert check(r, schema, seen) == [], name
    first = next(t for t in reports["lossless"]["tensors"] if t["analysed"])
    assert first["schemes"]["planner"]["passthrough"]
    assert reports["full"]["schemes"][0]["totals"]["generic"]["method"] == "per_tensor"


def test_every_documented_field_occurs(reports):
    schema = documented()
    seen = set()
    for r in reports.values():
        check(r, schema, seen)
    missing = [".".join(p) for p in schema if p not in seen]
    assert missing == []


def test_required_top_level_fields(reports):
    for r in reports.values():
        assert {"format", "kind", "pgolf_pack_version", "input", "options", "summary", "schemes", "tensors",
                "histograms", "plots"} <= set(r)
        assert r["format"] == "pgolf-analyze/1"
    assert {"planner", "rate_loss"} <= set(reports["planned"]) and "sections" in reports["artifact"]


def typed_fields() -> dict[tuple[str, ...], set[str]]:
    """Every field path of the TypedDicts in pgolf_pack.analysis.schema, with its JSON types."""
    import types
    import typing

    from pgolf_pack.analysis import schema

    def kinds(tp, path, out):
        if isinstance(tp, types.UnionType):
            return set().union(*(kinds(a, path, out) for a in typing.get_args(tp)))
        if tp is type(None):
            return {"null"}
        if typing.is_typeddict(tp):
            walk(tp, path, out)
            return {"object"}
        origin = typing.get_origin(tp)
        if origin is list:
            (item,) = typing.get_args(tp)
            if typing.is_typeddict(item):
                walk(item, path + ("[]",), out)
            return {"list"}
        if origin is dict:
            _, value = typing.get_args(tp)
            if typing.is_typeddict(value):
                walk(value, path + ("*",), out)
            elif value is not typing.Any:  # dict[str, Any]: an object whose keys the doc leaves open
                out[path + ("*",)] = kinds(value, path + ("*",), out)
            return {"object"}
        return {{int: "int", float: "number", str: "str", bool: "bool"}[tp]}

    def walk(td, path, out):
        for key, tp in typing.get_type_hints(td).items():
            out[path + (key,)] = kinds(tp, path + (key,), out)

    out: dict[tuple[str, ...], set[str]] = {}
    walk(schema.Report, (), out)
    return out


def test_the_report_types_and_the_doc_list_the_same_fields():
    """Each typed field matches a documented one (a doc `*` stands for any key) with the same
    JSON types, and each documented field is matched by a typed one."""
    typed, doc = typed_fields(), documented()
    undocumented, wrong, used = [], [], set()
    for path, kinds in typed.items():
        found = [p for p in doc if matches(p, path)]
        if not found:
            undocumented.append(".".join(path))
        wrong += [(".".join(path), kinds, doc[p]) for p in found if doc[p] != kinds]
        used.update(found)
    assert undocumented == [] and wrong == []
    assert [".".join(p) for p in doc if p not in used] == []
