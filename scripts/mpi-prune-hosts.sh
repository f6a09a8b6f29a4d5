#!/usr/bin/env bash
# mpi-prune-hosts.sh [--min-hosts N] ALL_HOSTS OUT_HOSTS
#
# Writes OUT_HOSTS: the lines of the Open MPI hostfile ALL_HOSTS ("host slots=N ...",
# # comments) whose host answers a probe, so that a relaunched `mpirun --hostfile
# OUT_HOSTS ...` leaves out a dead node. Made for `kiln supervise --before-restart`
# (see docs/supervise.md). Hosts are probed in parallel, each once:
#   default: ssh -o BatchMode=yes -o ConnectTimeout=5 HOST true
#   KILN_PROBE=CMD: CMD HOST (exit 0 = alive), e.g. a script running
#     `mpirun --host "$1" -np 1 true`, or a stub in tests
# Exit 0: OUT_HOSTS written (atomically) with at least N live hosts (default 1);
# 1: fewer live hosts, OUT_HOSTS left as it was; 2: bad usage or unreadable ALL_HOSTS.
set -u
min=1
if [ "${1:-}" = --min-hosts ]; then
  min=${2:-}
  shift 2 || true
fi
if [ $# -ne 2 ] || ! [[ $min =~ ^[0-9]+$ ]]; then
  echo "usage: mpi-prune-hosts.sh [--min-hosts N] ALL_HOSTS OUT_HOSTS" >&2
  exit 2
fi
all=$1 out=$2
if [ ! -r "$all" ]; then
  echo "mpi-prune-hosts: cannot read $all" >&2
  exit 2
fi
probe=${KILN_PROBE:-ssh -o BatchMode=yes -o ConnectTimeout=5}
[ -n "${KILN_PROBE:-}" ] || probe_args=(true)

host_of() {  # first word of a hostfile line, comments and blanks skipped
  local h rest
  read -r h rest <<< "${1%%#*}"
  echo "${h:-}"
}

work=$(mktemp -d) || exit 2
trap 'rm -rf "$work"' EXIT
declare -A seen=()
while IFS= read -r line || [ -n "$line" ]; do
  h=$(host_of "$line")
  if [ -z "$h" ] || [ -n "${seen[$h]:-}" ]; then continue; fi
  seen[$h]=1
  # $probe is split into words on purpose: it is a command with its options
  ( $probe "$h" "${probe_args[@]+"${probe_args[@]}"}" </dev/null >/dev/null 2>&1 && touch "$work/alive.$h" ) &
done < "$all"
wait

live=0
: > "$work/hosts"
while IFS= read -r line || [ -n "$line" ]; do
  h=$(host_of "$line")
  [ -n "$h" ] || continue
  if [ -e "$work/alive.$h" ]; then
    printf '%s\n' "$line" >> "$work/hosts"
  fi
done < "$all"
for h in "${!seen[@]}"; do
  if [ -e "$work/alive.$h" ]; then
    live=$((live + 1))
  else
    echo "mpi-prune-hosts: $h does not answer; left out of $out" >&2
  fi
done
if [ "$live" -eq 0 ]; then
  echo "mpi-prune-hosts: no host of $all answers" >&2
  exit 1
fi
if [ "$live" -lt "$min" ]; then
  echo "mpi-prune-hosts: only $live live hosts, fewer than --min-hosts $min; $out unchanged" >&2
  exit 1
fi
cp "$work/hosts" "$out.tmp" && mv "$out.tmp" "$out" || exit 2
echo "mpi-prune-hosts: $live live hosts written to $out" >&2
