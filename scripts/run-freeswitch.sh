#!/usr/bin/env bash
# Run FreeSWITCH with this repository's freeswitch/ tree, without Docker, in the
# foreground (Ctrl-C stops it). Its log, database and recordings go under var/freeswitch/.
#
#   scripts/run-freeswitch.sh                     # freeswitch from HOTLINE_FREESWITCH_BIN or PATH
#   scripts/run-freeswitch.sh /opt/freeswitch     # an unpacked build (bin/, lib/, mod/)
#
# Every site value comes from the HOTLINE_* variables freeswitch/README.md lists; set at
# least HOTLINE_ESL_PASSWORD (the bot's control connection uses the same variable) and
# HOTLINE_FS_OPERATOR_PASSWORD_<extension> for the phones you register.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"

if [ $# -ge 1 ]; then
  root="$1"
  bin="$root/bin/freeswitch"
elif [ -n "${HOTLINE_FREESWITCH_BIN:-}" ]; then
  bin="$HOTLINE_FREESWITCH_BIN"
  root="$(cd "$(dirname "$bin")/.." && pwd)"
else
  bin="$(command -v freeswitch || true)"
  root=""
fi
if [ -z "$bin" ] || [ ! -x "$bin" ]; then
  echo "error: no freeswitch binary: pass an unpacked build's folder, set HOTLINE_FREESWITCH_BIN, or put freeswitch on PATH" >&2
  exit 1
fi
if [ -z "${HOTLINE_ESL_PASSWORD:-}" ]; then
  echo "note: HOTLINE_ESL_PASSWORD is not set: the event socket gets a random password nobody knows" >&2
fi

args=(-nc -nonat -nf -conf "$here/freeswitch")
if [ -n "$root" ] && [ -d "$root/mod" ]; then
  args+=(-mod "$root/mod")
fi
if [ -n "$root" ] && compgen -G "$root/lib/libfreeswitch.so*" >/dev/null; then
  export LD_LIBRARY_PATH="$root/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"  # a relocated build
fi
state="$here/var/freeswitch"
for d in log db run temp storage cache sounds recordings; do mkdir -p "$state/$d"; done
# Operators' calls are recorded where the bot says (record_session takes a full path,
# HOTLINE_FS_RECORDINGS_DIR): it must exist for FreeSWITCH to write there.
mkdir -p "${HOTLINE_FS_RECORDINGS_DIR:-$here/var/call-recordings}"
exec "$bin" "${args[@]}" -log "$state/log" -db "$state/db" -run "$state/run" -temp "$state/temp" \
  -storage "$state/storage" -cache "$state/cache" -sounds "$state/sounds" -recordings "$state/recordings"
