#!/usr/bin/env bash
# Geo lookup: map every country code found in the raw users to a sales region (a shell script step).
#
# /// script
# [tool.orchestrate]
# depends = ["extract"]
# stage = "transform"
# timeout = 10
# ///
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
work="${ETL_WORKDIR:-$here/../.etl-work}"

region_of() {
    case "$1" in
        GB|AT|DE|FR) echo "EMEA" ;;
        US|CA|MX) echo "AMER" ;;
        CN|JP|IN) echo "APAC" ;;
        *) echo "OTHER" ;;
    esac
}

codes=$(grep -o '"country": *"[A-Za-z]*"' "$work/users_raw.json" | sed 's/.*"\([A-Za-z]*\)"$/\1/' | tr '[:lower:]' '[:upper:]' | sort -u)

{
    echo "{"
    first=1
    for code in $codes; do
        [ "$first" -eq 1 ] || echo ","
        first=0
        printf '  "%s": "%s"' "$code" "$(region_of "$code")"
    done
    echo
    echo "}"
} > "$work/geo.json.tmp"
mv "$work/geo.json.tmp" "$work/geo.json"
echo "mapped $(echo "$codes" | wc -w | tr -d ' ') countries to regions"
