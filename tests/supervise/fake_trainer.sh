#!/usr/bin/env bash
# fake_trainer.sh RUN MODE [--resume X]: stands in for `kiln pretrain` in the
# supervisor tests. It follows the trainer's contract: RUN/heartbeat
# (`pid step unix_time`, rewritten atomically every step), a "checkpoint" every
# 5 steps (RUN/latest holds its step), exit 0 done / 1 crash / 2 bad config /
# 75 clean stop on SIGTERM. Every start is logged to RUN/invocations.log as
# `unix_time ARGS...`. MODE says how it misbehaves; "-once" modes misbehave on
# the first run only (marker RUN/done-MODE), "-n:K" on the first K runs.
#   finish | crash-once:STEP | kill-once:STEP | hang-once:STEP | crash-n:K
#   always-crash | no-heartbeat | exit2 | silent | slow
# (crash-n runs 0.5 s before it crashes, longer than the tests' budget window)
set -u
RUN=$1 MODE=$2
shift 2
STEPS=10
echo "$(date +%s.%N) $*" >> "$RUN/invocations.log"
step=0
if [ "${1:-}" = --resume ] && [ "${2:-}" = latest ]; then
  step=$(cat "$RUN/latest")
fi
beat() {
  echo "$$ $1 $(date +%s.%N)" > "$RUN/heartbeat.tmp" && mv "$RUN/heartbeat.tmp" "$RUN/heartbeat"
}
once() {  # true the first time MODE asks
  [ -e "$RUN/done-$MODE" ] && return 1
  touch "$RUN/done-$MODE"
}
runs() { wc -l < "$RUN/invocations.log"; }
case $MODE in
  exit2) echo "fake: bad config" >&2; exit 2 ;;
  no-heartbeat) exit 1 ;;
  silent) sleep 30; exit 0 ;;
  always-crash) beat 1; exit 1 ;;
  crash-n:*) [ "$(runs)" -le "${MODE#crash-n:}" ] && { beat 1; sleep 0.5; exit 1; } ;;
  slow) trap 'echo stopping > "$RUN/stopped"; exit 75' TERM; STEPS=100000 ;;
esac
while [ "$step" -lt "$STEPS" ]; do
  step=$((step + 1))
  beat "$step"
  case $MODE in
    "crash-once:$step") once && exit 1 ;;
    "kill-once:$step") once && kill -KILL $$ ;;
    "hang-once:$step") once && sleep 30 ;;
  esac
  [ $((step % 5)) -eq 0 ] && echo "$step" > "$RUN/latest"
  sleep 0.02
done
exit 0
