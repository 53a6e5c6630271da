#!/bin/sh
# Builds deny_retained_cmd.so (the broker refuses retained commands) into OUT_DIR (default: this folder).
#   deploy/mosquitto/plugin/build.sh [OUT_DIR]
# Needs a C compiler and the mosquitto plugin headers: apt-get install gcc mosquitto-dev libmosquitto-dev
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here}
cc=${CC:-cc}
for h in mosquitto_broker.h mosquitto_plugin.h mosquitto.h; do
  if ! printf '#include <%s>\n' "$h" | "$cc" -E -x c - >/dev/null 2>&1; then
    echo "deny_retained_cmd: header $h not found: apt-get install mosquitto-dev libmosquitto-dev" >&2
    exit 1
  fi
done
mkdir -p "$out"
"$cc" -std=c99 -Wall -Wextra -Werror -O2 -fPIC -shared -o "$out/deny_retained_cmd.so" "$here/deny_retained_cmd.c"
echo "$out/deny_retained_cmd.so"
