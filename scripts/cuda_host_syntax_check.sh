#!/usr/bin/env bash
# Syntax-checks CUDA-only host code (files or blocks under MCD_WITH_CUDA: src/ops/cuda/*.cpp, tests/gpu,
# bench) on a machine whose LibTorch has no CUDA (Debian's libtorch-dev ships the c10/ATen CUDA headers),
# so a typo does not cost a GPU lease. Needs the CPU build's compile_commands.json and nvcc's headers.
# Usage: scripts/cuda_host_syntax_check.sh [BUILD_DIR] FILE...   (BUILD_DIR defaults to build)
set -euo pipefail
build=build
if [[ $# -gt 0 && -d $1 ]]; then build=$1; shift; fi
[[ $# -gt 0 ]] || { echo "usage: $0 [BUILD_DIR] FILE..." >&2; exit 2; }
cuda_inc=$(dirname "$(dirname "$(command -v nvcc)")")/include
stub=$(mktemp -d); trap 'rm -rf "$stub"' EXIT
mkdir -p "$stub/c10/cuda/impl" && echo '#pragma once' > "$stub/c10/cuda/impl/cuda_cmake_macros.h"  # CMake-generated upstream
python3 - "$build/compile_commands.json" "$stub" "$cuda_inc" "$@" <<'PY'
import json, os, shlex, subprocess, sys
db, stub, cuda_inc, files = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
cmds = json.load(open(db))
def template(f):  # a torch-using compile line: the test's for tests/, a library's otherwise
    want = "test_gpu.dir" if "/tests/" in os.path.abspath(f) else "mcd_ops.dir"
    return next(c for c in cmds if want in c["command"] or want in c["file"])
bad = 0
for f in files:
    t = template(f)
    args, out, skip = shlex.split(t["command"]), [], False
    for a in args:
        if skip: skip = False; continue
        if a in ("-o", "-c", "-include", "-Xclang"): skip = True; continue
        if "cmake_pch" in a or a.endswith((".cpp", ".cxx")): continue
        out.append(a)
    out += ["-DMCD_WITH_CUDA", "-I" + stub, "-I" + cuda_inc, "-fsyntax-only", os.path.abspath(f)]
    r = subprocess.run(out, cwd=t["directory"], capture_output=True, text=True)
    print(("ok    " if r.returncode == 0 else "ERROR ") + f)
    if r.returncode: bad += 1; print("\n".join(l for l in r.stderr.splitlines() if "error" in l)[:4000])
sys.exit(1 if bad else 0)
PY
