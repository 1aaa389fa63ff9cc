# One place for set-up: every target below creates .venv and installs pgolf-pack into it first
# (torch from this machine's CPU wheel, then the package with its test extras), so
# `make demo` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV := .venv
PY := $(abspath $(VENV))/bin/python
STAMP := $(VENV)/.installed
FUZZ_RUNS ?= 3000

.PHONY: demo test pytest sanitize fuzz bench clean

$(STAMP): pyproject.toml setup.py $(wildcard csrc/*.cpp csrc/*.hpp pgolf_pack/_version.py)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]' 'pybind11>=2.11' 'setuptools>=64'
	touch $(STAMP)

## demo: the main job end to end on the embedded default (corpus -> tokenizer -> train -> pack -> analyze -> verify)
demo: $(STAMP)
	$(VENV)/bin/pgolf-demo --out pgolf-demo

## test: unit and property tests, then the codec again under ASan/UBSan, then the fuzzers
test: pytest sanitize fuzz

pytest: $(STAMP)
	$(PY) -m pytest

## sanitize: build the extension with AddressSanitizer + UBSan and run the codec tests on it
sanitize: $(STAMP)
	rm -rf build/asan && PGOLF_DEBUG_BUILD=1 $(PY) setup.py -q build_ext --build-lib build/asan --build-temp build/asan-tmp
	mkdir -p build/asan/pgolf_pack && cp pgolf_pack/*.py pgolf_pack/py.typed build/asan/pgolf_pack/
	cd build && LD_PRELOAD="$$(gcc -print-file-name=libasan.so):$$(gcc -print-file-name=libubsan.so)" \
		ASAN_OPTIONS=detect_leaks=0 PYTHONPATH="$(abspath build/asan)" \
		$(PY) -m pytest -q -p no:cacheprovider -c ../pyproject.toml --rootdir .. \
		../tests/test_rans_roundtrip.py ../tests/test_rans_corrupt.py ../tests/test_freq_table.py ../tests/test_rans_limits.py

## fuzz: the native fuzz targets under ASan/UBSan (repeatable mutation driver; FUZZ_RUNS each)
fuzz: $(STAMP)
	PYTHON=$(PY) csrc/fuzz/build.sh build/fuzz $(FUZZ_RUNS)

## bench: the full codec benchmark (about 10 minutes)
bench: $(STAMP)
	$(PY) benchmarks/codec.py

clean:
	rm -rf build $(VENV) pgolf_pack/*.so *.egg-info
