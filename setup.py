"""Builds the native rANS codec, pgolf_pack._rans, with pybind11.

Set PGOLF_DEBUG_BUILD=1 for an unoptimised build with AddressSanitizer and UBSan
(run it with LD_PRELOAD of libasan, as `make sanitize` does).
"""

import os
import re
from pathlib import Path

from pybind11.setup_helpers import Pybind11Extension, build_ext
from setuptools import setup

ROOT = Path(__file__).parent
VERSION = re.search(r'^__version__ = "([^"]+)"', (ROOT / "pgolf_pack" / "_version.py").read_text(), re.M).group(1)
SOURCES = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "csrc").glob("*.cpp"))

if os.environ.get("PGOLF_DEBUG_BUILD") == "1":
    compile_args = ["-O1", "-g", "-UNDEBUG", "-fno-omit-frame-pointer", "-fsanitize=address,undefined",
                    "-Wno-maybe-uninitialized",  # false positives inside GCC's own AVX-512 headers at -O1
                    "-fno-sanitize-recover=undefined"]
    link_args = ["-fsanitize=address,undefined"]
else:
    compile_args = ["-O3", "-DNDEBUG"]
    link_args = []

setup(
    version=VERSION,
    ext_modules=[
        Pybind11Extension(
            "pgolf_pack._rans",
            SOURCES,
            cxx_std=17,
            define_macros=[("PGOLF_VERSION", f'"{VERSION}"')],
            extra_compile_args=compile_args + ["-Wall", "-Wextra"],
            extra_link_args=link_args,
        )
    ],
    cmdclass={"build_ext": build_ext},
)
