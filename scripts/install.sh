#!/usr/bin/env bash
# Installs promptlathe from this checkout (editable) with the extras given (default: local,
# the embedded llama.cpp backend). llama-cpp-python compiles from source (~5 min on 2 cores the
# first time; pip caches the wheel). It is built for this CPU, except that on a CPU that
# advertises AMX the build leaves AMX out and names the other features one by one: AMX tile
# instructions need the kernel's permission, and on virtual machines that do not grant it the
# native build dies with "Illegal instruction" on the first matrix product. CMAKE_ARGS, when
# set, is used as given.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-local}"
if [ -z "${CMAKE_ARGS:-}" ]; then
    CMAKE_ARGS="-DLLAVA_BUILD=OFF"
    flags="$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true)"
    if [[ " $flags " == *" amx_tile "* ]]; then
        CMAKE_ARGS+=" -DGGML_NATIVE=OFF"
        for pair in sse4_2:SSE42 f16c:F16C fma:FMA bmi2:BMI2 avx:AVX avx2:AVX2 \
                    avx_vnni:AVX_VNNI avx512f:AVX512 avx512vbmi:AVX512_VBMI \
                    avx512_vnni:AVX512_VNNI avx512_bf16:AVX512_BF16; do
            if [[ " $flags " == *" ${pair%%:*} "* ]]; then
                CMAKE_ARGS+=" -DGGML_${pair##*:}=ON"
            fi
        done
    fi
fi
export CMAKE_ARGS
python -m pip install --disable-pip-version-check -q -e ".[${extras}]"
