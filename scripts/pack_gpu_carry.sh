#!/usr/bin/env bash
# Packs what a device call carries into .gpu/ (git-ignored; the GPU machine has neither ../shared nor
# a network, and a call carries at most 64 MiB):
#   .gpu/gpt2/              the GPT-2 vocabulary (scripts/fetch_assets.sh; MCD_ASSETS_DIR=$PWD/.gpu/gpt2 there)
#   .gpu/hf_fixture.tar.xz  fixtures/hf_mamba_tiny (the GPU parity tests: unpack into $MCD_SHARED_DIR/fixtures)
# and with --data, the corpora the GPU session scripts unpack (scripts/gpu_session_prelude.sh):
#   .gpu/enwiki_aa.tar.xz   data/enwiki2015/AA (~27 MB)
#   .gpu/glue5.tar.xz       data/glue (SST-2, CoLA, MRPC, RTE, STS-B)
#   .gpu/wikitext2.tar.xz   data/wikitext2 (the validation split)
# Idempotent: an existing file is kept. Prints the sizes at the end.
# Usage: scripts/pack_gpu_carry.sh [--data]      (MCD_SHARED_DIR overrides ../shared)
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
shared="${MCD_SHARED_DIR:-$repo/../shared}"
out="$repo/.gpu"
with_data=0
case "${1:-}" in
  "") ;;
  --data) with_data=1 ;;
  *) echo "usage: scripts/pack_gpu_carry.sh [--data]" >&2; exit 2 ;;
esac
die() { echo "pack_gpu_carry: $*" >&2; exit 1; }
mkdir -p "$out"

MCD_ASSETS_DIR="$out" "$repo/scripts/fetch_assets.sh" --gpt2-only >/dev/null
rm -rf "$out/npm"  # the downloaded tarball: not needed on the device

# pack NAME SRC_PARENT SRC_DIR: SRC_PARENT/SRC_DIR as .gpu/NAME, SRC_DIR the path inside the archive.
pack() {
  local name=$1 parent=$2 dir=$3
  [[ -f $out/$name ]] && return 0
  [[ -d $parent/$dir ]] || die "$parent/$dir is missing (MCD_SHARED_DIR points at the shared folder)"
  tar -cJf "$out/$name.tmp" -C "$parent" "$dir" && mv "$out/$name.tmp" "$out/$name"
}
pack hf_fixture.tar.xz "$shared/fixtures" hf_mamba_tiny
if [[ $with_data == 1 ]]; then
  pack enwiki_aa.tar.xz "$shared/data" enwiki2015/AA
  pack glue5.tar.xz "$shared/data" glue
  pack wikitext2.tar.xz "$shared/data" wikitext2
fi
du -sh "$out"/* | sed 's|'"$repo"'/||'
total=$(du -sbL "$out" --exclude=ext | cut -f1)
(( total <= 64 * 1024 * 1024 )) || echo "pack_gpu_carry: .gpu holds $((total >> 20)) MiB, over a call's 64 MiB carry" >&2
