# Sourced by the device-call scripts (glue_gpu_session.sh, ablation_gpu_session.sh): the carried
# data unpacked once per machine into $D (.gpu/glue5.tar.xz, enwiki_aa.tar.xz, wikitext2.tar.xz), the card and tree recorded, an incremental build; $OUT
# set by the device. Defines D (data), R (files that go back), BIN, T0 and t (a progress line).
export MCD_ASSETS_DIR=$PWD/.gpu/gpt2
D=/tmp/mcdd; R=$OUT/r; BIN=build-gpu/mamba-codesign; mkdir -p $D $R
T0=$(date +%s); t() { echo "[$(( $(date +%s) - T0 ))s] $*" | tee -a $R/progress.txt; }
[[ -d $D/glue ]] || tar -xJf .gpu/glue5.tar.xz -C $D
[[ -d $D/enwiki2015/AA ]] || tar -xJf .gpu/enwiki_aa.tar.xz -C $D
[[ -d $D/wikitext2 || ! -f .gpu/wikitext2.tar.xz ]] || tar -xJf .gpu/wikitext2.tar.xz -C $D
nvidia-smi --query-gpu=name,driver_version --format=csv > $R/gpu.txt
git rev-parse HEAD > $R/commit.txt 2>/dev/null; git status --short >> $R/commit.txt 2>/dev/null
# BUILD_TARGETS (e.g. mamba-codesign): only those, for calls that run no tests.
MCD_BUILD_TARGETS=${BUILD_TARGETS:-} scripts/build_gpu.sh > $R/build.log 2>&1 || { grep -E "error" $R/build.log | head -30; exit 1; }; t built
