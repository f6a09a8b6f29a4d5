"""test_rundir.py KILN REPO: one run per run directory (issue 12, items 2 and 6).
A second trainer on a live run's out_dir, fresh or with --resume latest, exits 2
naming the holder's pid and changes nothing; a SIGKILLed trainer leaves no stale
lock, so --resume latest then works. A fresh start refuses a directory holding
any of a run's files (checkpoints without RUN/latest, a lone metrics.jsonl),
except when `kiln supervise` restarts its own run that died before a checkpoint."""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trainutil as tu

kiln, repo = sys.argv[1], sys.argv[2]
work = tempfile.mkdtemp(prefix="kiln-rundir-")
p = None  # the long-running first trainer: killed whatever happens


def files(run):
    out = {}
    for root, _, names in os.walk(run):
        for fn in names:
            p = os.path.join(root, fn)
            if fn not in ("heartbeat", "heartbeat.tmp"):
                out[p] = os.path.getsize(p)
    return out


try:
    data = tu.byte_shards(kiln, repo, work)
    slow = {"train.steps": 100000, "train.checkpoint_every": 5, "train.eval_every": 0, "train.log_every": 1000}

    # (item 2) a live trainer, then a second one on its directory
    live = os.path.join(work, "live")
    p = subprocess.Popen(tu.pretrain_args(kiln, data, live, slow, ["-q"]))
    deadline = time.time() + 60
    while p.poll() is None and not os.path.exists(os.path.join(live, "latest")) and time.time() < deadline:
        time.sleep(0.01)
    assert p.poll() is None, "the first trainer ended early: %s" % p.returncode
    assert os.path.exists(os.path.join(live, "latest")), "no checkpoint within 60 s"
    for extra, what in (([], "fresh start"), (["--resume", "latest"], "--resume latest")):
        ckpts = sorted(d for d in os.listdir(live) if d.startswith("ckpt-"))
        out = subprocess.run(tu.pretrain_args(kiln, data, live, slow, extra + ["-q"]), capture_output=True, text=True,
                             timeout=120)
        want = "%s is in use by pid %d (another kiln pretrain)" % (live, p.pid)
        assert out.returncode == 2 and want in out.stderr, (what, out.returncode, out.stderr)
        assert p.poll() is None, "%s: the first trainer died" % what
        print("%s refused: %s" % (what, out.stderr.strip()))
    # the first trainer's metrics are its own: one start event, nothing interleaved
    p.send_signal(signal.SIGKILL)
    p.wait()
    recs = tu.metrics(live)
    assert len(tu.events(recs, "start")) == 1 and not tu.events(recs, "resume"), [r for r in recs if "event" in r]

    # SIGKILL leaves no stale lock: --resume latest runs to the end
    out = subprocess.run(tu.pretrain_args(kiln, data, live, dict(slow, **{"train.steps": 40}), ["-q", "--resume", "latest"]),
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, (out.returncode, out.stderr)
    print("after SIGKILL: --resume latest ran")

    # (item 6) checkpoints but no RUN/latest: a fresh start is refused, nothing changes
    orphan = os.path.join(work, "orphan")
    shutil.copytree(live, orphan)
    os.remove(os.path.join(orphan, "latest"))
    before = files(orphan)
    out = subprocess.run(tu.pretrain_args(kiln, data, orphan, {"train.steps": 20}, ["-q"]), capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 2 and "already holds a run" in out.stderr and "ckpt-000000" in out.stderr \
        and "--resume latest" in out.stderr, (out.returncode, out.stderr)
    assert files(orphan) == before, "a refused start changed files"
    print("checkpoints without latest: %s" % out.stderr.strip())
    # ... and --resume latest (as the message says) continues it
    out = subprocess.run(tu.pretrain_args(kiln, data, orphan, dict(slow, **{"train.steps": 45}),
                                          ["-q", "--resume", "latest"]), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, (out.returncode, out.stderr)

    # a lone metrics.jsonl (a run killed before its first checkpoint): refused, kept
    early = os.path.join(work, "early")
    os.makedirs(early)
    with open(os.path.join(early, "metrics.jsonl"), "w") as f:
        f.write('{"step":0,"time":1,"event":"start"}\n')
    out = subprocess.run(tu.pretrain_args(kiln, data, early, {"train.steps": 20}, ["-q"]), capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 2 and "already holds a run (metrics.jsonl)" in out.stderr, (out.returncode, out.stderr)
    assert os.path.getsize(os.path.join(early, "metrics.jsonl")) > 0, "metrics truncated"
    print("lone metrics.jsonl: %s" % out.stderr.strip())
    # `kiln supervise` restarting a trainer SIGKILLed before its first checkpoint:
    # RUN/latest is absent, so it restarts without --resume into the dead run's
    # files (and its own incidents.jsonl), and that fresh start must go through
    sup = os.path.join(work, "sup")
    once = os.path.join(work, "once")
    args = tu.pretrain_args(kiln, data, sup, {"train.steps": 30, "train.checkpoint_every": 1000}, ["-q"])
    script = ('if [ ! -e "$1" ]; then touch "$1"; shift; "$@" & t=$!; '
              'while [ ! -s "%s" ]; do sleep 0.01; done; kill -9 $t; exit 1; fi; shift; exec "$@"'
              % os.path.join(sup, "heartbeat"))
    out = subprocess.run([kiln, "supervise", "--run", sup, "--backoff", "0.05", "--", "sh", "-c", script, "sh", once]
                         + args, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, (out.returncode, out.stderr)
    recs = tu.metrics(sup)
    assert sorted(tu.series(recs, "loss")) == list(range(1, 31)), "the restarted run did not log steps 1..30"
    print("supervise: fresh restart after an early crash ran")
    print("ok")
finally:
    if p is not None and p.poll() is None:
        p.kill()
        p.wait()
    shutil.rmtree(work, ignore_errors=True)
