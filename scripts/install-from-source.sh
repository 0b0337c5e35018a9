#!/usr/bin/env bash
# The README's "Install from source" recipe, run in a temporary folder as CI does: the committed
# tree, `npm ci`, `npm prune --omit=dev`, then the installed program answers. (The recipe's
# `useradd` and `systemctl` steps change the machine and are left out here.)
set -euo pipefail
cd "$(dirname "$0")/.."
dest="$(mktemp -d)"
trap 'rm -rf "$dest"' EXIT
git archive HEAD | tar -x -C "$dest"
# better-sqlite3's native module: the checkout's own `npm ci` compiled it already for this Node
# (no prebuilt binary is downloadable here). Compiling it a second time proves nothing new and
# costs CI a minute or more, so the folder's `npm ci` gets that build as a local prebuild: the
# package's install script (prebuild-install) unpacks it exactly as it would a downloaded one, and
# still compiles from source if the name does not match (another Node ABI, platform or version).
native="node_modules/better-sqlite3/build/Release/better_sqlite3.node"
if [ -f "$native" ]; then
  prebuilds="$dest.prebuilds"
  trap 'rm -rf "$dest" "$prebuilds"' EXIT
  mkdir -p "$prebuilds/pack/build/Release"
  cp "$native" "$prebuilds/pack/build/Release/"
  name="$(node -p "'better-sqlite3-v' + require('./node_modules/better-sqlite3/package.json').version + '-node-v' + process.versions.modules + '-' + process.platform + '-' + process.arch + '.tar.gz'")"
  tar -czf "$prebuilds/$name" -C "$prebuilds/pack" build
  # prebuild-install reads .prebuild-installrc from the package's folder upwards (rc); the folder
  # is a temporary one, so this changes nothing for anyone else.
  echo "local-prebuilds=$prebuilds" > "$dest/.prebuild-installrc"
fi
cd "$dest"
npm ci --no-audit --no-fund --prefer-offline >/dev/null
npm prune --omit=dev --no-audit --no-fund >/dev/null
test ! -e node_modules/typescript
version="$(node dist/src/cli/main.js --version)"
test "$version" = "$(node -p "require('./package.json').version")"
set +e
node dist/src/cli/main.js status --db "$dest/none.db" 2>/dev/null
code=$?
set -e
test "$code" = 1
test ! -e "$dest/none.db"
echo "install from source: ok (avito-sync $version in a clean folder, dev dependencies pruned)"
