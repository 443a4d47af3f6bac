#!/usr/bin/env bash
# The demo command (README): installs what is missing, then runs a 5-node local cluster on
# the folder registry and shows it forming. Ctrl-C stops it; --duration S stops it after S s.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
export PATH="$PWD/.tools/node_modules/.bin:$PWD/.tools/consul/usr/bin:$PATH"
exec deno run -A scripts/demo.ts "$@"
