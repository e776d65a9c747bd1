#!/usr/bin/env bash
# OS packages the tests need beyond Python, Java and Maven. Idempotent; skipped where present.
set -euo pipefail
need=()
command -v mvn >/dev/null || need+=(maven)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq "${need[@]}"; else
    echo "missing OS packages: ${need[*]} (install them with apt-get)" >&2; exit 1; fi
fi
