"""Shared test configuration: hypothesis profiles chosen by HYPOTHESIS_PROFILE, and data fixtures."""

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("default", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    "expensive", max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


# --- pgolf_train fixtures -------------------------------------------------------------------

_DOC_MODULES = ("argparse", "collections", "json", "pathlib", "textwrap", "unittest", "dataclasses",
                "functools", "itertools", "logging", "inspect", "subprocess", "threading", "tarfile", "zipfile",
                "decimal", "fractions", "statistics", "string", "re", "shutil", "tempfile", "csv", "datetime",
                "random", "heapq", "bisect", "contextlib")


def stdlib_texts() -> list[tuple[str, str]]:
    """Real English text that needs no network: the docstrings of some standard-library modules."""
    import importlib
    import inspect
    import warnings

    texts = []
    with warnings.catch_warnings():  # some attributes warn when touched (deprecated aliases)
        warnings.simplefilter("ignore")
        for name in _DOC_MODULES:
            mod = importlib.import_module(name)
            parts = [inspect.getdoc(mod) or ""]
            for attr in sorted(vars(mod)):
                obj = getattr(mod, attr)
                if attr.startswith("_") or inspect.ismodule(obj) or getattr(obj, "__module__", None) != name:
                    continue
                parts.append(inspect.getdoc(obj) or "")
            texts.append((name, "\n\n".join(p for p in parts if p)))
    return texts


@pytest.fixture(scope="session")
def train_data(tmp_path_factory):
    """A small prepared dataset (vocab 384): shards and tokenizer from stdlib docstrings."""
    from pgolf_train.prepare import prepare_data

    out = tmp_path_factory.mktemp("train_data")
    prepare_data(out, vocab_size=384, texts=stdlib_texts(), doc_chars=1500, log=lambda _: None)
    return out
