#!/usr/bin/env bash
# The test suite drives Debian's Chromium (browser end-to-end tests) and checks the NTP service with
# chronyd. Install them when missing and we can (root with apt-get); otherwise say how, and fail:
# a missing browser is a failure, never a silent skip.
set -euo pipefail
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/sbin/chronyd ] || missing+=(chrony)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "system-deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
  # chrony's package starts a system chronyd; the tests only use `chronyd -Q`, which needs none.
  exit 0
fi
echo "system-deps: missing ${missing[*]}; install them with: sudo apt-get install -y ${missing[*]}" >&2
exit 1
