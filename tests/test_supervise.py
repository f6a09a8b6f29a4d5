#!/usr/bin/python3
"""test_supervise.py KILN SRCDIR: `kiln supervise` end to end with a fake trainer
(tests/supervise/fake_trainer.sh) that writes heartbeats and follows the exit-code
contract: crash -> restart with --resume latest, hang -> kill and restart, give up
after the budget, no restart on exit 2 or after SIGTERM, back-off growth, the
before-restart hook, and scripts/mpi-prune-hosts.sh with a fake probe."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

KILN, SRC = sys.argv[1], sys.argv[2]
FAKE = os.path.join(SRC, "tests/supervise/fake_trainer.sh")
PRUNE = os.path.join(SRC, "scripts/mpi-prune-hosts.sh")
W = tempfile.mkdtemp(prefix="kiln_supervise_")
failures = []


def check(cond, name, info=""):
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else f": {info}"))
    if not cond:
        failures.append(name)


def fresh(name):
    d = os.path.join(W, name)
    os.makedirs(d)
    return d


def supervise(run, mode, *opts, extra=(), timeout=20):
    """Runs kiln supervise over the fake trainer; returns (exit code, stderr, seconds)."""
    cmd = [KILN, "supervise", "--run", run, "--backoff", "0.05", *opts, "--", "bash", FAKE, run, mode, *extra]
    t = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stderr, time.monotonic() - t


def incidents(run):
    path = os.path.join(run, "incidents.jsonl")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f]  # every line must be JSON


def kinds(run):
    return [i["kind"] for i in incidents(run)]


def invocations(run):
    with open(os.path.join(run, "invocations.log")) as f:
        return [line.split() for line in f]


def last_step(run):
    with open(os.path.join(run, "heartbeat")) as f:
        return int(f.read().split()[1])


# (a) a crash at step 7 (checkpoint at 5): restarted with --resume latest, then finishes
run = fresh("crash")
code, err, _ = supervise(run, "crash-once:7")
inv = invocations(run)
check(code == 0, "crash: exit 0 after the restart", err)
check(kinds(run) == ["crash", "restart"], "crash: incidents crash, restart", kinds(run))
crash = incidents(run)[0]["detail"]
check(crash["exit_code"] == 1 and crash["signal"] is None and crash["step"] == 7, "crash: exit 1 at step 7", crash)
restart = incidents(run)[1]["detail"]
check(restart["restart"] == 1 and restart["resume"] == "latest", "restart: number 1, resume latest", restart)
check(len(inv) == 2 and inv[0][1:] == [] and inv[1][1:] == ["--resume", "latest"],
      "crash: second start gets --resume latest", inv)
check(last_step(run) == 10, "crash: the resumed run reached the end", last_step(run))
check("crash, exit 1" in err and "restart 1" in err, "crash: incidents on stderr", err)

# killed by a signal counts as a crash; --resume X is replaced by --resume latest
run = fresh("kill")
code, err, _ = supervise(run, "kill-once:6", extra=("--resume", "old-ckpt"))
inv = invocations(run)
check(code == 0 and kinds(run) == ["crash", "restart"], "signal: restarted", f"{code} {kinds(run)} {err}")
check(incidents(run)[0]["detail"]["signal"] == 9 and incidents(run)[0]["detail"]["exit_code"] is None,
      "signal: recorded as signal 9", incidents(run)[0])
check(inv[0][1:] == ["--resume", "old-ckpt"] and inv[1][1:] == ["--resume", "latest"],
      "signal: --resume old-ckpt replaced by --resume latest", inv)

# a crash before the first checkpoint: restarted without --resume (RUN/latest is absent)
run = fresh("early")
code, err, _ = supervise(run, "crash-once:2")
inv = invocations(run)
check(code == 0 and len(inv) == 2 and inv[1][1:] == [], "early crash: restarted without --resume", inv)
check(incidents(run)[1]["detail"]["resume"] is None if len(incidents(run)) > 1 else False,
      "early crash: restart says resume null", incidents(run))

# (b) a hang (heartbeat stops at step 3): killed after the timeout and restarted
run = fresh("hang")
code, err, secs = supervise(run, "hang-once:3", "--heartbeat-timeout", "1", "--kill-grace", "1")
check(code == 0 and kinds(run) == ["hang", "restart"], "hang: killed and restarted", f"{code} {kinds(run)} {err}")
hang = incidents(run)[0]["detail"] if incidents(run) else {}
check(hang.get("step") == 3 and 1.0 <= hang.get("silent_s", 0) < 3, "hang: step 3, silent about 1 s", hang)
check(hang.get("signal") == 15, "hang: ended by SIGTERM within the grace period", hang)
check(1.0 < secs < 8, "hang: detected in about the timeout", secs)

# a heartbeat left by an earlier trainer does not count for a new one that never beats
run = fresh("leftover")
with open(os.path.join(run, "heartbeat"), "w") as f:
    f.write(f"{os.getpid()} 99 {time.time():.3f}\n")
code, err, secs = supervise(run, "silent", "--heartbeat-timeout", "1", "--kill-grace", "0.2", "--max-restarts", "0")
inc = incidents(run)
check(code == 1 and [i["kind"] for i in inc] == ["hang", "giveup"], "leftover heartbeat: still a hang", f"{code} {inc}")
check(inc and inc[0]["detail"]["step"] is None, "leftover heartbeat: its step 99 is not this child's", inc)

# (c) always crashing: gives up after --max-restarts with exit 1
run = fresh("giveup")
code, err, _ = supervise(run, "always-crash", "--max-restarts", "2")
check(code == 1, "giveup: exit 1", code)
check(kinds(run) == ["crash", "restart", "crash", "restart", "crash", "giveup"], "giveup: incidents", kinds(run))
check(len(invocations(run)) == 3, "giveup: three starts", invocations(run))
check("gave up" in err and "--max-restarts 2" in err, "giveup: clear message", err)
check(incidents(run)[-1]["detail"]["exit_code"] == 1, "giveup: names the last exit", incidents(run)[-1])

# a child that dies before its first heartbeat counts like a crash
run = fresh("nobeat")
code, err, _ = supervise(run, "no-heartbeat", "--max-restarts", "1")
inc = incidents(run)
check(code == 1 and len(invocations(run)) == 2, "no heartbeat: restarted, then gave up", f"{code} {err}")
check(inc[0]["kind"] == "crash" and inc[0]["detail"]["step"] is None and "heartbeat" in inc[0]["detail"]["reason"],
      "no heartbeat: crash without a step", inc[0])

# the budget is a sliding window: restarts older than --window no longer count
run = fresh("window")
code, err, _ = supervise(run, "crash-n:3", "--max-restarts", "1", "--window", "0.3")
check(code == 0 and len(invocations(run)) == 4, "window: 3 restarts pass a budget of 1 per 0.3 s", f"{code} {err}")
run = fresh("total")
code, err, _ = supervise(run, "crash-n:3", "--max-restarts", "1", "--window", "0", "--backoff", "0.01")
check(code == 1 and len(invocations(run)) == 2, "window 0: the budget counts the whole run", f"{code} {err}")

# (d) exit 2: not restarted, the code is passed on
run = fresh("exit2")
code, err, _ = supervise(run, "exit2")
check(code == 2 and len(invocations(run)) == 1, "exit 2: passed on, no restart", f"{code} {err}")
check(kinds(run) == ["stop"] and incidents(run)[0]["detail"]["exit_code"] == 2, "exit 2: stop incident", incidents(run))

# (e) SIGTERM to the supervisor: forwarded, the child stops with 75, no restart
run = fresh("sigterm")
p = subprocess.Popen([KILN, "supervise", "--run", run, "--backoff", "0.05", "--", "bash", FAKE, run, "slow"],
                     stderr=subprocess.PIPE, text=True)
deadline = time.monotonic() + 10
while not os.path.exists(os.path.join(run, "heartbeat")) and time.monotonic() < deadline:
    time.sleep(0.05)
time.sleep(0.2)
p.send_signal(signal.SIGTERM)
try:
    _, err = p.communicate(timeout=10)
except subprocess.TimeoutExpired:
    p.kill()
    _, err = p.communicate()
check(p.returncode == 75, "sigterm: supervisor exits 75", f"{p.returncode} {err}")
check(os.path.exists(os.path.join(run, "stopped")), "sigterm: the child got SIGTERM")
check(len(invocations(run)) == 1, "sigterm: no restart", invocations(run))
inc = incidents(run)
check([i["kind"] for i in inc] == ["stop"] and inc[0]["detail"]["signal"] == 15 and inc[0]["detail"]["exit_code"] == 75,
      "sigterm: stop incident with signal 15, exit 75", inc)

# (f) back-off doubles: 0.2, 0.4, 0.8 s between the starts of an always-crashing child
run = fresh("backoff")
code, err, _ = supervise(run, "always-crash", "--max-restarts", "3", "--backoff", "0.2", "--backoff-max", "10")
backoffs = [i["detail"]["backoff_s"] for i in incidents(run) if i["kind"] == "restart"]
check(backoffs == [0.2, 0.4, 0.8], "backoff: recorded 0.2, 0.4, 0.8", backoffs)
starts = [float(line[0]) for line in invocations(run)]
gaps = [b - a for a, b in zip(starts, starts[1:])]
check(len(gaps) == 3 and all(g >= b for g, b in zip(gaps, backoffs)) and gaps[0] < gaps[1] < gaps[2],
      "backoff: the waits between starts grow", gaps)
run = fresh("backoffmax")
code, err, _ = supervise(run, "always-crash", "--max-restarts", "3", "--backoff", "0.1", "--backoff-max", "0.15")
backoffs = [i["detail"]["backoff_s"] for i in incidents(run) if i["kind"] == "restart"]
check(backoffs == [0.1, 0.15, 0.15], "backoff: capped by --backoff-max", backoffs)

# before-restart: runs before each restart with KILN_RESTART / KILN_INCIDENT; failure gives up
run = fresh("hook")
hook = f'echo "$KILN_RESTART $KILN_INCIDENT $KILN_RUN_DIR" >> {run}/hook.log'
code, err, _ = supervise(run, "crash-once:7", "--before-restart", hook)
with open(os.path.join(run, "hook.log")) as f:
    hook_lines = f.read().split("\n")
check(code == 0 and hook_lines[0] == f"1 crash {run}", "hook: ran once with its environment", hook_lines)
run = fresh("hookfail")
code, err, _ = supervise(run, "crash-once:7", "--before-restart", "exit 3")
check(code == 1 and len(invocations(run)) == 1 and kinds(run)[-1] == "giveup" and "before-restart" in err,
      "hook: non-zero exit gives up", f"{code} {kinds(run)} {err}")

# bad usage
def cli(*args):
    p = subprocess.run([KILN, "supervise", *args], capture_output=True, text=True, timeout=10)
    return p.returncode, p.stdout, p.stderr

code, out, _ = cli("--help")
check(code == 0 and "--heartbeat-timeout" in out and "incidents.jsonl" in out, "usage: --help", out)
code, _, err = cli("--run", W, "--bogus", "1", "--", "true")
check(code == 2 and "unknown option '--bogus'" in err, "usage: unknown option", err)
code, _, err = cli("--run", W, "--max-restarts", "-1", "--", "true")
check(code == 2 and "--max-restarts" in err, "usage: bad number", err)
code, _, err = cli("--run", W)
check(code == 2 and "no command" in err, "usage: no command", err)
code, _, err = cli("--", "true")
check(code == 2 and "--run" in err, "usage: --run needed for a command that is not pretrain", err)
code, _, err = cli("--run", W + "/nocmd", "--", W + "/no-such-program")
check(code == 1 and "cannot run" in err, "usage: a command that does not exist", err)
# RUN derived from a pretrain command's config (out_dir, then --set out_dir=)
cfg = os.path.join(W, "cfg.yaml")
with open(cfg, "w") as f:
    f.write(f"out_dir: {W}/derived\n")
code, _, err = cli("-q", "--", "/bin/sh", "-c", "exit 2", "pretrain", cfg)
check(code == 2 and kinds(f"{W}/derived") == ["stop"], "derive: RUN = out_dir of the config", err)
code, _, err = cli("-q", "--", "/bin/sh", "-c", "exit 2", "pretrain", "-c", cfg, "--set", f"out_dir={W}/set")
check(code == 2 and kinds(f"{W}/set") == ["stop"], "derive: --set out_dir= wins", err)

# scripts/mpi-prune-hosts.sh with a fake probe: dead hosts dropped, slots kept, too few -> exit 1
hosts = os.path.join(W, "hosts.all")
with open(hosts, "w") as f:
    f.write("# cluster\nnode1 slots=8\nnode2 slots=8\n\nnode3 slots=8 max_slots=8\nnode2 slots=8\n")
env = dict(os.environ, KILN_PROBE=f"{W}/probe.sh")
with open(f"{W}/probe.sh", "w") as f:
    f.write('#!/bin/sh\necho "$1" >> "$(dirname "$0")/probed"\n[ "$1" != node2 ]\n')
os.chmod(f"{W}/probe.sh", 0o755)
out = os.path.join(W, "hosts")
p = subprocess.run([PRUNE, hosts, out], env=env, capture_output=True, text=True, timeout=10)
kept = open(out).read() if os.path.exists(out) else ""
check(p.returncode == 0 and kept == "node1 slots=8\nnode3 slots=8 max_slots=8\n", "prune: node2 dropped",
      f"{kept!r} {p.stderr}")
check("node2" in p.stderr, "prune: reports the dropped host", p.stderr)
check(sorted(open(f"{W}/probed").read().split()) == ["node1", "node2", "node3"], "prune: each host probed once")
p = subprocess.run([PRUNE, "--min-hosts", "3", hosts, out], env=env, capture_output=True, text=True, timeout=10)
check(p.returncode == 1 and open(out).read() == kept, "prune: too few hosts -> exit 1, hostfile untouched", p.stderr)
env["KILN_PROBE"] = "false"
p = subprocess.run([PRUNE, hosts, out], env=env, capture_output=True, text=True, timeout=10)
check(p.returncode == 1 and "no host" in p.stderr, "prune: no live host -> exit 1", p.stderr)
p = subprocess.run([PRUNE, os.path.join(W, "nope"), out], env=env, capture_output=True, text=True, timeout=10)
check(p.returncode == 2, "prune: missing hostfile -> exit 2", p.stderr)

subprocess.run(["rm", "-rf", W])
print(f"{len(failures)} failed" if failures else "all passed")
sys.exit(1 if failures else 0)
