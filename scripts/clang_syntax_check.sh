#!/usr/bin/env bash
# Compiles every C++ translation unit of src/, tests/ and bench/ with clang++ -fsyntax-only -std=c++17, so code
# that only GCC accepts (GCC lets a lambda capture a structured binding, which C++17 forbids) is found before
# someone builds with Clang. Configures its own tree (no unity batches, no precompiled header: Clang cannot read
# GCC's .gch) and builds nothing; ~10 minutes on 2 cores. Not part of ./test.sh: the project builds with GCC.
# Usage: scripts/clang_syntax_check.sh [TREE]   (TREE defaults to build-clang-check; prints FAIL lines, exits 1 on any)
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tree=$(realpath -m "${1:-$repo/build-clang-check}")
command -v clang++ > /dev/null || { echo "clang++ not found (Debian: apt-get install clang)" >&2; exit 2; }
cmake -S "$repo" -B "$tree" -G Ninja -DCMAKE_EXPORT_COMPILE_COMMANDS=ON -DMCD_UNITY_BUILD=OFF \
  -DCMAKE_DISABLE_PRECOMPILE_HEADERS=ON > "$tree.configure.log" 2>&1 ||
  { echo "configure failed: $tree.configure.log" >&2; exit 1; }
python3 - "$tree/compile_commands.json" "$(nproc)" <<'PY'
import concurrent.futures, json, shlex, subprocess, sys
cmds = [c for c in json.load(open(sys.argv[1])) if c["file"].endswith((".cpp", ".cxx"))]
def check(c):
    args, out, skip = shlex.split(c["command"])[1:], [], False
    for a in args:
        if skip: skip = False; continue
        if a == "-o": skip = True; continue
        if a in ("-c", c["file"]): continue
        out.append(a)
    r = subprocess.run(["clang++", "-fsyntax-only", "-Wno-unknown-warning-option", *out, c["file"]],
                       cwd=c["directory"], capture_output=True, text=True)
    return c["file"], r.returncode, "\n".join(l for l in r.stderr.splitlines() if "error:" in l)
bad = 0
with concurrent.futures.ThreadPoolExecutor(int(sys.argv[2])) as pool:
    for f, rc, errors in pool.map(check, cmds):
        if rc:
            bad += 1
            print("FAIL " + f + "\n" + errors)
print(f"clang++ -fsyntax-only: {len(cmds) - bad} of {len(cmds)} translation units pass")
sys.exit(1 if bad else 0)
PY
