#!/usr/bin/env bash
# Leak check of the native layer: runs scripts/leak-workload.js under valgrind and fails if any
# block lost "definitely" or "indirectly", or any memory error, has a frame in the addon. (node itself keeps memory at exit
# on purpose; those reports are not ours.)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
log=$(mktemp)
valgrind --leak-check=full --show-leak-kinds=definite,indirect --num-callers=40 \
  --log-file="$log" node --expose-gc scripts/leak-workload.js
ours=$(awk '/are (definitely|indirectly) lost|Invalid (read|write|free)|uninitialised|Conditional jump|Mismatched free/{block=1; buf=""} block{buf=buf $0 "\n"} /^==[0-9]+== $/{if(block && buf ~ /openssl_session_cache/) print buf; block=0}' "$log")
grep -E "definitely lost:|indirectly lost:|ERROR SUMMARY" "$log" | sed 's/^==[0-9]*== //'
if [ -n "$ours" ]; then
  echo "leaks or memory errors with frames in the addon:"; echo "$ours"; exit 1
fi
echo "valgrind: no leak in the addon"
