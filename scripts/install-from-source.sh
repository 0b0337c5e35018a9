#!/usr/bin/env bash
# The README's "Install from source" recipe, run in a temporary folder as CI does: the committed
# tree, `npm ci`, `npm prune --omit=dev`, then the installed program answers. (The recipe's
# `useradd` and `systemctl` steps change the machine and are left out here.)
set -euo pipefail
cd "$(dirname "$0")/.."
dest="$(mktemp -d)"
trap 'rm -rf "$dest"' EXIT
git archive HEAD | tar -x -C "$dest"
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
