#!/usr/bin/env bash
# The one test command (README, .ci/run): installs what is missing, then runs the format
# check, lint, type check, the import-cycle check (scripts/check_imports.ts) and every test.
# Ends with the line "N passed, N failed[, N skipped]".
# Extra arguments are passed to `deno test` (e.g. a file or --filter NAME).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
if ! bash scripts/install-deps.sh; then
  echo "install of test dependencies failed" >&2
  echo "0 passed, 1 failed"
  exit 1
fi
export PATH="$ROOT/.tools/node_modules/.bin:$ROOT/.tools/consul/usr/bin:$PATH"
export AUTO_CONSUL_TOOLS="$ROOT/.tools"
export DENO_NO_UPDATE_CHECK=1 NO_COLOR=1
# Test files at a time: most of a real-component test waits for consul, so 3 on 2 cores.
export DENO_JOBS="${DENO_JOBS:-3}"

passed=0 failed=0 skipped=0
step() { # name, command...
  local name=$1
  shift
  if "$@"; then
    passed=$((passed + 1))
  else
    echo "FAILED: $name" >&2
    failed=$((failed + 1))
  fi
}
step "deno fmt --check" deno fmt --check
step "deno lint" deno lint
step "deno check" deno check main.ts src/ tests/ scripts/
step "import cycles" deno run --allow-read scripts/check_imports.ts

out="$ROOT/.tools/test-output.txt"
deno test -A --parallel "${@:-tests/}" 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
summary=$(grep -E '^(ok|FAILED) \| [0-9]+ passed' "$out" | tail -n 1)
if [ -n "$summary" ]; then
  p=$(sed -E 's/.*\| ([0-9]+) passed.*/\1/' <<<"$summary")
  f=$(sed -E 's/.*\| ([0-9]+) failed.*/\1/' <<<"$summary")
  i=$(grep -oE '[0-9]+ ignored' <<<"$summary" | grep -oE '[0-9]+' || echo 0)
  passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + i))
fi
if [ "$rc" -ne 0 ] && { [ -z "$summary" ] || [ "${f:-0}" -eq 0 ]; }; then
  echo "FAILED: deno test exited $rc" >&2
  failed=$((failed + 1))
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
