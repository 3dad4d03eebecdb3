#!/usr/bin/env bash
# The action's setup step: its own copy of rootprobe (npm ci in the action's folder, which
# builds dist/ by `prepare`), then the host tools by `rootprobe doctor --install` (as root:
# through sudo on GitHub's runners, directly in a root container).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
(cd "$root" && npm ci --no-audit --no-fund)
if [ "$(id -u)" = 0 ]; then
  node "$root/bin/rootprobe.js" doctor --install
else
  sudo -E env "PATH=$PATH" node "$root/bin/rootprobe.js" doctor --install
fi
