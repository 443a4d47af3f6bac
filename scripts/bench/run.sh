#!/usr/bin/env bash
# Every benchmark, one after the other, from a fresh clone: installs what is missing
# (scripts/install-deps.sh), then runs each script in scripts/bench/ with its defaults; each
# replaces its own section of BENCHMARKS.md. Arguments: benchmark names to run (default: all).
#   bash scripts/bench/run.sh                    # all, ~45 minutes on 2 cores
#   bash scripts/bench/run.sh registry_cost scale
set -uo pipefail
cd "$(dirname "$0")/../.."
bash scripts/install-deps.sh || { echo "bench: installing the dependencies failed" >&2; exit 1; }
export PATH="$PWD/.tools/node_modules/.bin:$PWD/.tools/consul/usr/bin:$PATH"
export AUTO_CONSUL_TOOLS="$PWD/.tools" DENO_NO_UPDATE_CHECK=1 NO_COLOR=1

all=(time_to_cluster registry_cost heartbeat_cost scale footprint recovery startup)
failed=()
for name in "${@:-${all[@]}}"; do
  if [ ! -f "scripts/bench/$name.ts" ]; then
    echo "bench: no benchmark \"$name\" (expected one of: ${all[*]})" >&2
    exit 2
  fi
  echo "bench: $name (load average $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  start=$SECONDS
  if deno run -A "scripts/bench/$name.ts" >/dev/null; then
    echo "bench: $name done in $((SECONDS - start)) s" >&2
  else
    echo "bench: $name FAILED after $((SECONDS - start)) s" >&2
    failed+=("$name")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "bench: failed: ${failed[*]}" >&2
  exit 1
fi
echo "bench: BENCHMARKS.md updated" >&2
