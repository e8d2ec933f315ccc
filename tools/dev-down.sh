#!/usr/bin/env bash
# Stops the stack tools/dev-up.sh started: SIGTERM to each process it
# recorded (newest first), SIGKILL after 5 s, then removes the state dir.
#
#   tools/dev-down.sh [--state-dir DIR] [--keep-logs]
#
# --keep-logs keeps <state>/logs (and the rest of the state dir).
set -euo pipefail

state="${CONVEYOR_DEV_STATE:-/tmp/conveyor-dev}"
keep=0
while (($#)); do
  case "$1" in
    --state-dir) state="$2"; shift 2 ;;
    --keep-logs) keep=1; shift ;;
    -h|--help) sed -n '2,7p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "dev-down: unknown argument: $1" >&2; exit 2 ;;
  esac
done

if [[ ! -f "$state/pids" ]]; then
  echo "dev-down: nothing to stop (no $state/pids)"
  exit 0
fi

# Only signal a pid that is still the process dev-up started (pids get
# reused): it must still be alive with the same session id it was given.
mapfile -t lines < <(tac "$state/pids")
alive=()
for line in "${lines[@]}"; do
  read -r name pid _port <<<"$line"
  [[ -n "${pid:-}" ]] || continue
  if kill -0 "$pid" 2>/dev/null && [[ "$(ps -o sid= -p "$pid" | tr -d ' ')" == "$pid" ]]; then
    kill -TERM "$pid" 2>/dev/null || true
    alive+=("$name:$pid")
  fi
done
for _ in $(seq 1 50); do
  remaining=()
  for entry in "${alive[@]}"; do
    kill -0 "${entry#*:}" 2>/dev/null && remaining+=("$entry")
  done
  ((${#remaining[@]} == 0)) && break
  sleep 0.1
done
for entry in "${remaining[@]}"; do
  echo "dev-down: ${entry%%:*} (pid ${entry#*:}) ignored SIGTERM; killing it" >&2
  kill -KILL "${entry#*:}" 2>/dev/null || true
done
echo "dev-down: stopped ${#alive[@]} processes"

if ((keep)); then
  rm -f "$state/pids"
else
  rm -rf "$state"
fi
