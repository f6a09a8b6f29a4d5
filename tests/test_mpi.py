#!/usr/bin/python3
"""test_mpi.py KILN SRCDIR: data parallelism over MPI (mpirun --oversubscribe).

A tiny model on Tiny Shakespeare bytes, 50 steps, one thread per rank. The
ranks sum the gradients in another order than one process does, so the runs
agree to float rounding, not bit for bit; the learning rate (1e-3) keeps 50
steps from amplifying that (at 3e-3 this model is chaotic enough that rounding
grows to 1e-5 of the loss; the K bias, whose true gradient is zero, moves on
rounding noise alone under Adam).
- 2 ranks follow the one-process run with the same global batch and seed:
  loss at every step within 1e-5 relative, final weights within 1e-5;
- gradient accumulation on (4 micro-batches of 8) and off (one batch of 32)
  agree the same way, in one process and on 2 ranks;
- a 2-rank run resumed from its step-25 checkpoint on 2 ranks ends bit for bit
  where the uninterrupted run ended; on 1 rank (another layout) it continues
  and ends within 1e-5;
- a control file (lr_mult, weight_decay) read by rank 0 changes every rank's
  training as it changes one process's;
- ZeRO-1 (parallel.zero=1) on 2 ranks ends with plain data parallelism's
  weights and moments bit for bit (its sharded checkpoint read back whole); its checkpoint resumes bit for bit on 2
  ranks with ZeRO-1 and within 1e-5 on 1 rank;
- ZeRO-2 (parallel.zero=2): bit for bit plain data parallelism's with one
  micro-batch per rank, within 1e-5 with two; resumes bit for bit, and with
  ZeRO-1;
- SIGTERM to the ranks: every rank stops at the same step, one checkpoint,
  exit status 75 through mpirun;
- a rank that hangs (SIGSTOP) ends the job within parallel.timeout_s with the
  reason on stderr, a rank that dies ends it at once, no rank is left waiting,
  and --resume latest finishes from the last checkpoint;
- metrics.jsonl is written once (rank 0), with comm_bytes equal to the ring
  all-reduce volume of the gradients, 2(N-1)/N x 4 bytes x parameters;
- asynchronous SGD (parallel.mode: async, 1 server + 2 workers): 100 updates
  logged once, staleness within the bound, validation loss at equal tokens
  within 20% of synchronous training's; with staleness 0 stale gradients are
  dropped and counted; SIGTERM checkpoints and exits 75, --resume goes on;
- layouts that cannot work are refused before any step: parallel.dp that is
  not the world size, grad_accum that does not divide among the ranks,
  parallel.dp=2 without mpirun.
Skips (exit 77) when mpirun is missing or kiln was built without MPI."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np

KILN, SRC = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.join(SRC, "tests", "parity"))
sys.path.insert(0, os.path.join(SRC, "tests", "train"))
import mpiutil as mu  # noqa: E402

mu.skip_without_mpi(KILN, SRC)
W = tempfile.mkdtemp(prefix="kiln_mpi_")
ENV, MPI_ENV = mu.environments()
MPIRUN = mu.MPIRUN


cfg = mu.tiny_config(KILN, SRC, W)
R = mu.Runs(KILN, W, cfg)
check, pretrain, losses, weights, close, identical = R.check, R.pretrain, R.losses, R.weights, R.close, R.identical


t0 = time.monotonic()
one, _ = pretrain("one")
two, p2 = pretrain("two", 2)
close(two, one, "2 ranks vs 1")
_, rows = losses(two)
steps = [r["step"] for r in rows if "loss" in r]
check(steps == list(range(1, 51)), "2 ranks: metrics.jsonl written once, steps 1..50", str(steps[:8]))
nparams = sum(a.size for a in weights(two).values())
vol = [r["comm_bytes"] for r in rows if "comm_bytes" in r]
# the gradient buffer holds each tensor padded to 64 bytes: a little more than the parameters
check(vol and all(abs(v - 2 * 0.5 * 4 * nparams) / (4 * nparams) < 0.01 for v in vol),
      "2 ranks: comm_bytes logged each step, the ring volume of the gradient buffer (its padding within 1%)",
      f"{vol[:3]} vs {4 * nparams}")

# dropout masks follow the micro-batch: other batch shapes compare without dropout
plain, _ = pretrain("plain", 1, "model.dropout=0")
acc_off, _ = pretrain("acc_off", 1, "model.dropout=0", "train.batch_size=32", "train.grad_accum=1")
close(acc_off, plain, "gradient accumulation off vs on")
two_acc2, _ = pretrain("two_acc2", 2, "model.dropout=0", "train.batch_size=16", "train.grad_accum=2")
close(two_acc2, plain, "2 ranks, 2 micro-batches of 16 vs 1 rank, 4 of 8")

# resume: the same layout bit for bit, another layout continues
ck = os.path.join(two, "ckpt-00000025")
res2, _ = pretrain("resume2", 2, resume=ck)
identical(res2, two, "2 ranks resumed at 25 on 2 ranks vs uninterrupted")
res1, _ = pretrain("resume1", 1, resume=ck)
close(res1, two, "2 ranks resumed at 25 on 1 rank vs uninterrupted")

# the control file: read by rank 0, what it changes reaches every rank (a run
# that halves its learning rate from the first step, on 1 and on 2 ranks)
for name in ("ctl1", "ctl2"):
    os.makedirs(os.path.join(W, name))
    open(os.path.join(W, name, "control"), "w").write("lr_mult: 0.5\nweight_decay: 0.0\n")
ctl1, _ = pretrain("ctl1", 1)
ctl2, _ = pretrain("ctl2", 2)
close(ctl2, ctl1, "control file (lr_mult 0.5, weight_decay 0) on 2 ranks vs 1")
ev = [r for r in map(json.loads, open(os.path.join(ctl2, "metrics.jsonl"))) if r.get("event") == "control"]
check(len(ev) == 1 and os.path.exists(os.path.join(ctl2, "control.applied")),
      "control file: applied once, logged once", str(ev))
d = max(float(np.max(np.abs(weights(ctl2)[k] - weights(two)[k]))) for k in weights(two))
check(d > 1e-3, "control file: the change took effect (weights away from the run without it)", f"{d:.3g}")

# ZeRO-1: the optimizer state sharded; the same sums on 2 ranks, so plain DP's
# weights bit for bit; its checkpoints are the one model (rank 0 gathers)
zero, _ = pretrain("zero", 2, "parallel.zero=1")
# its checkpoint is sharded (each rank's moments in its part): resumed at its
# last step by plain data parallelism, it is written whole again, to compare
whole = lambda run: pretrain(run + "_whole", 2, resume=os.path.join(W, run, "ckpt-00000050"))[0]  # noqa: E731
identical(whole("zero"), two, "ZeRO-1 vs plain data parallelism on 2 ranks")
ck = os.path.join(zero, "ckpt-00000025")
zres, _ = pretrain("zero_resume", 2, "parallel.zero=1", resume=ck)
identical(zres, zero, "ZeRO-1 resumed at 25 on 2 ranks vs uninterrupted")
zres1, _ = pretrain("zero_resume1", 1, resume=ck)
close(zres1, zero, "ZeRO-1 resumed at 25 on 1 rank vs uninterrupted")

# ZeRO-2: the gradients sharded too, each block's reduce-scattered as its
# backward pass ends on every micro-batch. With one micro-batch per rank the
# sums are plain data parallelism's bit for bit; with two each, the ranks'
# micro-batches are summed pairwise first (another order: within 1e-5)
zero2_1, _ = pretrain("zero2_acc2", 2, "parallel.zero=2", "model.dropout=0", "train.batch_size=16",
                      "train.grad_accum=2")
identical(pretrain("zero2_acc2_whole", 2, "model.dropout=0", "train.batch_size=16", "train.grad_accum=2",
                   resume=os.path.join(zero2_1, "ckpt-00000050"))[0], two_acc2,
          "ZeRO-2 vs plain data parallelism, one micro-batch per rank")
zero2, _ = pretrain("zero2", 2, "parallel.zero=2")
close(zero2, two, "ZeRO-2 with 2 micro-batches per rank vs plain data parallelism")
ck = os.path.join(zero2, "ckpt-00000025")
z2res, _ = pretrain("zero2_resume", 2, "parallel.zero=2", resume=ck)
identical(z2res, zero2, "ZeRO-2 resumed at 25 on 2 ranks vs uninterrupted")
z2res1, _ = pretrain("zero2_on_zero1", 2, "parallel.zero=1", resume=ck)
close(z2res1, zero2, "ZeRO-2 resumed at 25 with ZeRO-1 vs uninterrupted")

# SIGTERM to the ranks (as a scheduler's preemption): one checkpoint, exit 75
stop, rc, ranks = R.sigterm("stop", 2)
check(len(ranks) == 2, "SIGTERM: found both ranks", str(ranks))
check(rc == 75, "SIGTERM to the ranks: mpirun exits 75 (stopped with a checkpoint)", f"exit {rc}")
stops, ckpts = R.events(stop, "stop"), R.events(stop, "checkpoint")
check(len(stops) == 1 and len(ckpts) == 1 and ckpts[0]["detail"]["why"] == "stop",
      "SIGTERM: one stop event and one checkpoint", f"{stops} {ckpts}")

# a rank that hangs (SIGSTOP) or dies (SIGKILL): the job ends within the
# timeout with the reason on stderr, and resumes from its last checkpoint
def wreck(name, sig):
    out = os.path.join(W, name)
    p = subprocess.Popen([*MPIRUN, "-np", "2", KILN, "pretrain", cfg, "-q", "--set", f"out_dir={out}", "--set",
                          "train.steps=300", "--set", "train.checkpoint_every=20", "--set", "parallel.timeout_s=3"],
                         env=MPI_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not os.path.isdir(os.path.join(out, "ckpt-00000040")):
        time.sleep(0.05)
    victims = [int(x) for x in subprocess.run(["pgrep", "-f", f"^{KILN} pretrain .*out_dir={out}"],
                                              capture_output=True, text=True).stdout.split()]
    t = time.monotonic()
    os.kill(max(victims), sig)  # the later-started rank: rank 1, as a rule
    try:
        _, err = p.communicate(timeout=60)
        rc = p.returncode
    except subprocess.TimeoutExpired:
        p.kill()
        rc, err = None, ""
    took = time.monotonic() - t
    left = subprocess.run(["pgrep", "-f", f"out_dir={out}"], capture_output=True, text=True).stdout.split()
    for pid in left:
        os.kill(int(pid), signal.SIGKILL)
    return out, rc, err, took, left


out, rc, err, took, left = wreck("hang", signal.SIGSTOP)
check(rc not in (0, None) and took < 30 and not left, "a rank stopped: the job ends within the timeout, no rank left",
      f"exit {rc} after {took:.1f} s, left {left}")
check("died or hangs" in err and "parallel.timeout_s" in err, "a rank stopped: the reason on stderr", err[-600:])
out, rc, err, took, left = wreck("dead", signal.SIGKILL)
check(rc not in (0, None) and took < 30 and not left, "a rank killed: the job ends, no rank left",
      f"exit {rc} after {took:.1f} s, left {left}")
_, p = pretrain("dead", 2, "train.steps=300", "train.checkpoint_every=20", resume="latest")
check(p.returncode == 0 and os.path.isdir(os.path.join(out, "ckpt-00000300")),
      "a rank killed: --resume latest on 2 ranks finishes from the last checkpoint", p.stderr[-600:])

# asynchronous SGD: rank 0 a parameter server, 2 workers; at equal tokens its
# loss stays near synchronous training's, staleness within the bound
sync1, _ = pretrain("sync1", 1, "train.grad_accum=1", "train.steps=100")
asy, _ = pretrain("async", 3, "parallel.mode=async", "train.grad_accum=1", "train.steps=100")
rows = [json.loads(line) for line in open(os.path.join(asy, "metrics.jsonl"))]
steps = [r["step"] for r in rows if "loss" in r]
stale = [r["staleness"] for r in rows if "staleness" in r]
check(steps == list(range(1, 101)), "async: 100 updates, each logged once", str(steps[:5]))
check(stale and max(stale) <= 4 and min(stale) == 0, "async: staleness within parallel.staleness (4)",
      f"{min(stale, default=None)}..{max(stale, default=None)}")
vs = [r["val_loss"] for r in rows if "val_loss" in r][-1]
vsync = [r["val_loss"] for r in map(json.loads, open(os.path.join(sync1, "metrics.jsonl"))) if "val_loss" in r][-1]
check(vs < 0.7 * 5.55 and abs(vs - vsync) / vsync < 0.20,
      "async: at equal tokens the validation loss within 20% of synchronous training's (measured 5-7%)",
      f"async {vs:.4f}, sync {vsync:.4f}")
asy0, _ = pretrain("async0", 3, "parallel.mode=async", "train.grad_accum=1", "train.steps=60", "parallel.staleness=0")
rows = [json.loads(line) for line in open(os.path.join(asy0, "metrics.jsonl"))]
check(all(r["staleness"] == 0 for r in rows if "staleness" in r) and
      max(r["stale_dropped"] for r in rows if "stale_dropped" in r) > 0,
      "async, staleness 0: only fresh gradients applied, stale ones dropped and counted")
stop, rc, _ = R.sigterm("async_stop", 3, "parallel.mode=async", "train.grad_accum=1", after_bytes=4000)
events = [json.loads(line) for line in open(os.path.join(stop, "metrics.jsonl"))]
check(rc == 75 and [e.get("detail", {}).get("why") for e in events if e.get("event") == "checkpoint"] == ["stop"],
      "async: SIGTERM checkpoints once and exits 75", f"exit {rc}")
_, p = pretrain("async_stop", 3, "parallel.mode=async", "train.grad_accum=1",
                f"train.steps={[e['step'] for e in events if e.get('event') == 'stop'][0] + 20}", resume="latest")
check(p.returncode == 0, "async: --resume latest goes on from the stop", p.stderr[-400:])

# layouts that cannot work: refused before any step, exit 2, the reason named
_, p = pretrain("bad_dp", 2, "parallel.dp=3", expect=2)
check("parallel.dp = 3" in p.stderr and not os.path.exists(os.path.join(W, "bad_dp", "metrics.jsonl")),
      "parallel.dp=3 on 2 ranks: refused", p.stderr[-400:])
_, p = pretrain("bad_accum", 2, "train.grad_accum=3", expect=2)
check("train.grad_accum = 3" in p.stderr, "grad_accum=3 on 2 ranks: refused", p.stderr[-400:])
_, p = pretrain("bad_async", 1, "parallel.mode=async", expect=2)
check("mpirun -np 3" in p.stderr, "async without mpirun: refused", p.stderr[-400:])
_, p = pretrain("bad_async_zero", 3, "parallel.mode=async", "parallel.zero=1", expect=2)
check("parallel.zero" in p.stderr, "async with ZeRO: refused", p.stderr[-400:])
_, p = pretrain("bad_single", 1, "parallel.dp=2", expect=2)
check("mpirun -np 2" in p.stderr, "parallel.dp=2 without mpirun: refused, saying how to launch", p.stderr[-400:])

R.finish("test_mpi", time.monotonic() - t0)
