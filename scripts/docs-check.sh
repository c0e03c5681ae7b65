#!/usr/bin/env bash
# Generates the DocC documentation of every public module and fails on any warning, on a module
# without a catalog, and on any public symbol without a `///` doc comment.
#
#   scripts/docs-check.sh            every public module (the list below, plus any of the optional
#                                    ones whose Sources/<module> exists)
#   scripts/docs-check.sh Spindle    only the modules named
#
# Prints one line per module when it passes. On failure it prints each DocC warning with its
# source context, and each undocumented symbol as `file:line: Module.Type.member (kind)`.
# Bounded: DOCS_TIMEOUT seconds per module (default 600). Measured on the 2-core machine with
# other builds running (load 13–17): 101 s after `swift build --build-tests` in a fresh clone
# (81 s for Spindle, which builds the plugin; 10 s each after it); 360 s in a fresh clone before
# any build (it then builds the modules, which the test build reuses: 655 s for docs then tests
# against 696 s for tests then docs).
#
# A new public module needs `Sources/<Module>/<Module>.docc/<Module>.md`, a landing page:
#
#   # ``<Module>``
#
#   One sentence: what the module is for.
#
#   ## Overview
#   …
#
#   ## Topics
#   ### Essentials
#   - ``MainType``
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"

modules=(Spindle SpindleProfiles SpindleTesting)
# Modules other branches add: checked as soon as their sources exist.
for m in SpindleServiceLifecycle SpindleMetrics; do
  if [ -d "Sources/$m" ]; then modules+=("$m"); fi
done
if [ $# -gt 0 ]; then modules=("$@"); fi

limit="${DOCS_TIMEOUT:-600}"
failed=0
for m in "${modules[@]}"; do
  start=$(date +%s)
  mfail=0
  if [ ! -f "Sources/$m/$m.docc/$m.md" ]; then
    echo "docs-check: $m has no catalog: add Sources/$m/$m.docc/$m.md (a landing page: see the top of this script)" >&2
    failed=1
    continue
  fi
  # The symbol graphs of this run only (a stale one would report symbols that no longer exist).
  rm -rf .build/*/extracted-symbols/*/"$m"
  log=$(mktemp)
  rc=0
  timeout "$limit" swift package generate-documentation --target "$m" --experimental-skip-synthesized-symbols \
    >"$log" 2>&1 || rc=$?
  if [ "$rc" -ne 0 ]; then
    cat "$log"
    if [ "$rc" -eq 124 ]; then
      echo "docs-check: $m: generate-documentation did not finish in $limit s (DOCS_TIMEOUT)" >&2
    else
      echo "docs-check: $m: generate-documentation failed (exit $rc, output above)" >&2
    fi
    failed=1
    rm -f "$log"
    continue
  fi
  warnings=$(grep -c -E "^(warning|error):|: (warning|error):" "$log" || true)
  if [ "$warnings" -ne 0 ]; then
    # Each diagnostic with the source lines DocC prints under it (up to the next blank line).
    awk '/^(warning|error):|: (warning|error):/ {show=1} show {print} /^$/ {show=0}' "$log"
    echo "docs-check: $m: $warnings DocC warning(s) (above)" >&2
    mfail=1
  fi
  graphs=()
  while IFS= read -r f; do graphs+=("$f"); done < <(find .build -path "*/extracted-symbols/*/$m/*.symbols.json" 2>/dev/null)
  if [ ${#graphs[@]} -eq 0 ]; then
    echo "docs-check: $m: no symbol graph found under .build/*/extracted-symbols" >&2
    mfail=1
  elif ! undocumented=$(timeout 120 swift scripts/undocumented-symbols.swift "$root" "${graphs[@]}" 2>&1); then
    echo "$undocumented"
    echo "docs-check: $m: $(echo "$undocumented" | grep -c "has no" || true) public symbol(s) without a /// doc comment (above)" >&2
    mfail=1
  fi
  rm -f "$log"
  if [ "$mfail" -eq 0 ]; then
    echo "docs-check: $m: documentation builds with no warning, every public symbol documented ($(( $(date +%s) - start )) s)"
  else
    failed=1
  fi
done
if [ "$failed" -eq 0 ]; then
  echo "docs-check: ${#modules[@]} modules (${modules[*]}): no DocC warning, every public symbol documented"
fi
exit "$failed"
