#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Renders every reST file under Documentation/ with docutils (installed by
# scripts/deps.sh) and fails on any warning, as a kernel docs build would.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
rc=0
for f in Documentation/*.rst; do
	if ! "$TOOLS/venv/bin/python" -m docutils --halt=warning --report=warning "$f" /dev/null; then
		echo "doc-check: $f: does not render cleanly"
		rc=1
	fi
done
[ "$rc" = 0 ] && echo "doc-check: $(ls Documentation/*.rst | wc -l) reST files render without warnings"
exit $rc
