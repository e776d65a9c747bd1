#!/usr/bin/env bash
# OS packages the tests need beyond Python, Java and Maven. Idempotent; skipped where present.
#   maven       fetches Delta's and the JDBC drivers' jars (make jars)
#   postgresql  the JDBC extract tests start their own server from its initdb/pg_ctl
#   chromium    renders the risk report headless (its test, and the PDF of `riskctl report`)
#   chromium-driver  lets the workbench's browser tests drive Chromium (Selenium, WebDriver)
#   fonts-wqy-zenhei  a CJK font, so Chinese province and company names render in the report
set -euo pipefail
need=()
command -v mvn >/dev/null || need+=(maven)
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null; then
  need+=(postgresql)
fi
command -v psql >/dev/null || need+=(postgresql-client)
command -v chromium >/dev/null || command -v chromium-browser >/dev/null || need+=(chromium)
command -v chromedriver >/dev/null || need+=(chromium-driver)
fc-list :lang=zh 2>/dev/null | grep -q . || need+=(fonts-wqy-zenhei)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    as_root=()
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
  else
    echo "missing OS packages: ${need[*]}" >&2
    echo "install them as root: apt-get update && apt-get install -y ${need[*]}" >&2
    exit 1
  fi
  echo "installing OS packages: ${need[*]}"
  "${as_root[@]}" apt-get update -qq
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
