"""Shrink a self-contained Python module into one counted `exec` line, as the records ship code.

`minify` works on the syntax tree (never on text): it drops docstrings (comments vanish with the
tree), renames the module's own variables, functions and parameters to the shortest free names,
unparses, and indents by one space per level. Attribute and keyword names are left alone, so a
renamed name can only change meaning if the module passes one of its own parameters by keyword
or uses `global`, `nonlocal` or string lookups of names; `minify` refuses the first two.
`compact` compresses the result (the smallest of zlib and a few lzma settings) into a base85 literal.
"""

from __future__ import annotations

import ast
import base64
import io
import builtins
import keyword
import lzma
import string
import tokenize
import zlib
from collections import Counter
from itertools import product

from pgolf_pack.errors import InputError


def minify(source: str, keep: set[str] = frozenset(), foreign: set[str] = frozenset()) -> str:
    """Equivalent source without docstrings or comments, with short names (except `keep`).

    Attributes the module sets on `self` are renamed too, unless their name is in `foreign`
    (the attribute names of every outside object the module touches: its modules, arrays...)."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Global, ast.Nonlocal)):
            raise InputError("minify: global/nonlocal statements are not supported")
        body = getattr(node, "body", None)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body \
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
    methods = {f.name for c in ast.walk(tree) if isinstance(c, ast.ClassDef) for f in c.body
               if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))}
    imported = {a.asname or a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))
                for a in n.names}
    fixed = set(keep) | imported | set(dir(builtins))
    uses: Counter[str] = Counter()
    defined: set[str] = set()
    params: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            uses[node.id] += 1
            if isinstance(node.ctx, ast.Store):
                defined.add(node.id)
        elif isinstance(node, ast.arg):
            uses[node.arg] += 1
            defined.add(node.arg)
            params.add(node.arg)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name not in methods:
            uses[node.name] += 1
            defined.add(node.name)
    renamed = [n for n, _ in uses.most_common() if n in defined and n not in fixed]
    own = {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and (isinstance(node.func, ast.Name) and node.func.id in own
                                           or isinstance(node.func, ast.Attribute) and node.func.attr in methods):
            for k in node.keywords:
                if k.arg in params and k.arg in renamed:
                    raise InputError(f"minify: keyword argument '{k.arg}' names a renamed parameter")
    taken = fixed | set(uses) | set(keyword.kwlist) | set(keyword.softkwlist)
    short = dict(zip(renamed, (n for n in _names() if n not in taken or n in renamed)))
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in short:
            node.id = short[node.id]
        elif isinstance(node, ast.arg) and node.arg in short:
            node.arg = short[node.arg]
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in short and node.name not in methods:
            node.name = short[node.name]
    _rename_attributes(tree, taken | set(short.values()), foreign)
    text = ast.unparse(tree)
    if "'''" in text or '"""' in text:
        raise InputError("minify: multi-line strings would break the re-indentation")
    lines = []
    for line in text.splitlines():
        body = line.lstrip(" ")
        if body:
            lines.append(" " * ((len(line) - len(body)) // 4) + _tight(body))
    out = "\n".join(lines) + "\n"
    if ast.dump(ast.parse(out)) != ast.dump(ast.parse(text)):
        raise InputError("minify: dropping whitespace changed the program")
    return out


def _tight(line: str) -> str:
    """One unindented line with a space only between two word characters."""
    out = ""
    for tok in tokenize.generate_tokens(io.StringIO(line).readline):
        if tok.type in (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER):
            continue
        if out and tok.string and (out[-1].isalnum() or out[-1] == "_") and (tok.string[0].isalnum() or tok.string[0] == "_"):
            out += " "
        out += tok.string
    return out


def _rename_attributes(tree: ast.AST, taken: set[str], foreign: set[str]) -> None:
    """Shorten the attributes assigned as `self.x = ...` whose names no outside object has."""
    own = Counter()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            own[node.attr] += 1
    stored = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Store)}
    names = [a for a, _ in own.most_common() if a in stored and a not in foreign and not a.startswith("__")]
    short = dict(zip(names, (n for n in _names() if n not in taken and n not in own)))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in short:
            node.attr = short[node.attr]


def _names():
    first = string.ascii_letters + "_"
    for size in range(1, 4):
        for head in first:
            for tail in product(first + string.digits, repeat=size - 1):
                yield head + "".join(tail)


def compact(source: str, entry: str, foreign: set[str]) -> bytes:
    """One line that, executed, binds `entry` from `source` (run in its own namespace), newline included."""
    code = minify(source, {entry}, foreign).encode()
    # .lzma streams carry their literal-context settings in the header, so any of these decode
    # with a plain lzma.decompress; text prefers fewer literal-context bits than the default
    candidates = [("zlib", zlib.compress(code, 9))] + [
        ("lzma", lzma.compress(code, format=lzma.FORMAT_ALONE, filters=[
            {"id": lzma.FILTER_LZMA1, "preset": 9 | lzma.PRESET_EXTREME, "lc": lc, "lp": 0, "pb": pb, "nice_len": nice}]))
        for lc in range(5) for pb in range(3) for nice in (64, 273)]
    lines = [f"import {m},base64;{entry}=(lambda d:exec({m}.decompress(base64.b85decode(b'"
             f"{base64.b85encode(data).decode()}')),d)or d['{entry}'])({{}})\n" for m, data in candidates]
    return min(lines, key=len).encode()
