#!/bin/sh
# End-to-end tests that `sandbox run` starts once the sandbox is up and its smoke checks passed.
# sandbox hands over the addresses: SANDBOX_GATEWAY_URL, SANDBOX_ZIPKIN_URL and <SERVICE>_URL.
set -eu
user="${USER_URL:?run me through sandbox run}"
answer=$(wget -q -O - "$user/users/42" 2>/dev/null || curl -fsS "$user/users/42")
echo "$answer"
case "$answer" in
  *'"name": "item 42"'*) echo "e2e: user → item chain answers" ;;
  *) echo "e2e: unexpected answer" >&2; exit 1 ;;
esac
