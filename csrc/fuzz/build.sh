#!/usr/bin/env bash
# Builds the fuzz targets with AddressSanitizer and UBSan and runs each for RUNS iterations.
# With clang++ and libFuzzer available (FUZZER=libfuzzer) they are coverage-guided; otherwise
# g++ links the repeatable mutation driver in driver.cpp. The native core is compiled in
# directly: it has no Python in it. Both modes fail an input whose peak heap passes the codec's
# bound for its size (alloc_meter.hpp); libFuzzer also stops any single malloc over 512 MB.
#   usage: csrc/fuzz/build.sh OUT_DIR [RUNS]   (needs `python -c 'import pgolf_pack'` for the corpus)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:?usage: build.sh OUT_DIR [RUNS]}"
runs="${2:-20000}"
mkdir -p "$out"
core=("$here/../crc32c.cpp" "$here/../freq_table.cpp" "$here/../rans_stream.cpp" "$here/../rans_simd.cpp" "$here/../frame.cpp")
flags=(-std=c++17 -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all -pthread)
"${PYTHON:-python3}" "$here/make_corpus.py" "$out/corpus"
for target in fuzz_decode fuzz_table_io fuzz_roundtrip; do
    if [[ "${FUZZER:-driver}" == libfuzzer ]]; then
        clang++ "${flags[@]}" -fsanitize=fuzzer "$here/$target.cpp" "${core[@]}" -o "$out/$target"
        "$out/$target" -runs="$runs" -seed=1 -malloc_limit_mb=512 "$out/corpus"
    else
        "${CXX:-g++}" "${flags[@]}" "$here/$target.cpp" "$here/driver.cpp" "${core[@]}" -o "$out/$target"
        "$out/$target" -runs="$runs" -seed=1 "$out"/corpus/*.bin
    fi
done
