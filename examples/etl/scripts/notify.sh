#!/usr/bin/env bash
# Notify: announce the published report. Skipped whenever publish.py skips itself.
#
# /// script
# [tool.orchestrate]
# depends = ["publish"]
# stage = "publish"
# ///
set -euo pipefail
echo "report published to ${ETL_PUBLISH_DIR:?}"
