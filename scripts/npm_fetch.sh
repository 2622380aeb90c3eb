# Sourced by scripts/fetch_assets.sh and scripts/fetch_demo_data.sh: npm tarballs pinned by exact
# version and sha256 of the tarball. A mismatch is an error, never a retry.

sha_of() { sha256sum "$1" | cut -d' ' -f1; }

# npm_fetch NAME VERSION SHA DIR -> prints the path of the verified tarball in DIR, named as
# `npm pack` names it (NAME-VERSION.tgz; a scoped @scope/name as scope-name-VERSION.tgz). Fetches it
# with `npm pack` unless DIR already holds it with the right sha256.
npm_fetch() {
  local name=$1 version=$2 sha=$3 dir=$4
  local file="${name#@}"
  file="${file//\//-}-$version.tgz"
  local tgz="$dir/$file"
  mkdir -p "$dir"
  if [[ ! -f "$tgz" || "$(sha_of "$tgz")" != "$sha" ]]; then
    command -v npm >/dev/null || { echo "npm is needed to fetch $name@$version (or copy $tgz by hand)" >&2; return 1; }
    rm -f "$tgz"
    (cd "$dir" && npm pack --silent "$name@$version" >/dev/null) || { echo "npm pack $name@$version failed" >&2; return 1; }
    [[ -f "$tgz" ]] || { echo "npm pack did not produce $tgz" >&2; return 1; }
    local got
    got="$(sha_of "$tgz")"
    if [[ "$got" != "$sha" ]]; then
      rm -f "$tgz"
      echo "$name@$version tarball has sha256 $got, expected $sha" >&2
      return 1
    fi
  fi
  echo "$tgz"
}
