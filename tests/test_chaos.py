#!/usr/bin/python3
"""test_chaos.py KILN SRCDIR [SEED]: SIGKILL at random moments, then carry on.

pretrain: a tiny run (checkpoint every 3 steps, keep_last 2, evaluation every
10) is run once uninterrupted, then again with SIGKILL at random moments, some
aimed at a checkpoint being written (its temp directory seen in RUN), at
rotation, or at an evaluation (the heartbeat written before it), each time resumed with --resume latest (or restarted fresh as
`kiln supervise` does when no checkpoint was written yet) until it finishes.
The final weights and optimizer moments must equal the uninterrupted run's bit
for bit, metrics.jsonl must hold the same steps with the same losses, and no
temp file or directory may be left in RUN.

data run: a small pipeline run uninterrupted, then killed several times and
rerun until it succeeds: the shards and manifest must be byte-identical to the
uninterrupted run's, after every kill the output directory must hold either no
manifest or a manifest whose shards all match their sha256 (never half-written),
and no staging directory or work/ may be left. The seed is printed; give it
back as SEED to replay a failure."""
import glob
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

KILN, SRC = sys.argv[1], sys.argv[2]
SEED = int(sys.argv[3]) if len(sys.argv) > 3 else int.from_bytes(os.urandom(4), "little")
DATA = os.path.join(SRC, "..", "shared", "data")
W = tempfile.mkdtemp(prefix="kiln_chaos_")
rng = random.Random(SEED)
failures = []
T0 = time.monotonic()
ENV = dict(os.environ, OMP_NUM_THREADS="1")  # the same thread count for every run: bit-exact resume


def check(cond, name, info=""):
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else f": {info}"), flush=True)
    if not cond:
        failures.append(name)


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def tensors(path):
    """The sha256 of a safetensors file's data (its header's metadata holds out_dir)."""
    with open(path, "rb") as f:
        b = f.read()
    n = int.from_bytes(b[:8], "little")
    return hashlib.sha256(b[8 + n:]).hexdigest()


def temps(d, skip_kiln=False):
    """Temp files and directories under d; with skip_kiln, not RUN/.kiln-*.tmp
    (an atomic file's, which the trainer leaves alone: it may be kiln report's)."""
    return sorted(p for p in glob.glob(os.path.join(d, "**", ".*"), recursive=True)
                  if ".tmp" in p and not (skip_kiln and os.path.basename(p).startswith(".kiln-")))


def run_killed(cmd, delay=None, aim=None, limit=60):
    """Starts cmd; SIGKILLs it after delay seconds, or when aim() first holds
    (polled every half millisecond). Returns (exit code, what happened)."""
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV)
    t = time.monotonic()
    while p.poll() is None:
        now = time.monotonic() - t
        if (delay is not None and now >= delay) or (aim is not None and aim()) or now > limit:
            p.send_signal(signal.SIGKILL)
            p.wait()
            return None, "killed"
        time.sleep(0.0005)
    err = p.stderr.read().decode(errors="replace")
    return p.returncode, err


print(f"seed {SEED} (python3 tests/test_chaos.py KILN SRC {SEED} replays it)", flush=True)

# ---------------------------------------------------------------- pretrain
text = os.path.join(W, "text.txt")
with open(os.path.join(DATA, "pretrain/tinyshakespeare/input.txt"), "rb") as f:
    open(text, "wb").write(f.read(300000))
subprocess.run([KILN, "tokenizer", "encode-corpus", "--bytes", "-o", os.path.join(W, "data"), text], check=True,
               stdout=subprocess.DEVNULL)
STEPS = 45
cfg = os.path.join(W, "tiny.yaml")
open(cfg, "w").write(f"""model:
  vocab_size: 256
  block_size: 64
  n_layer: 2
  n_head: 4
  n_embd: 64
train:
  batch_size: 8
  steps: {STEPS}
  lr: 3.0e-3
  warmup_steps: 5
  eval_every: 10
  eval_batches: 4
  checkpoint_every: 3
  keep_last: 2
  log_every: 1
  threads: 1
data:
  train: {W}/data/train_*.bin
  val: {W}/data/val_*.bin
out_dir: {W}/ref
""")
t = time.monotonic()
subprocess.run([KILN, "pretrain", cfg, "-q"], check=True, env=ENV, stderr=subprocess.DEVNULL)
ref_seconds = time.monotonic() - t
print(f"reference run: {STEPS} steps in {ref_seconds:.1f} s", flush=True)

RUN = os.path.join(W, "run")
final = f"ckpt-{STEPS:08d}"
kills = {"random": 0, "checkpoint": 0, "rotation": 0, "evaluation": 0}
starts = 0


def aim_checkpoint():
    return bool(glob.glob(os.path.join(RUN, ".ckpt-*")))


def aim_rotation():
    # a checkpoint renamed into place and the older ones not yet pruned
    return len(glob.glob(os.path.join(RUN, "ckpt-*"))) > 2


def heartbeat():
    """(mtime_ns, step) of RUN/heartbeat, or (0, -1)."""
    try:
        path = os.path.join(RUN, "heartbeat")
        return os.stat(path).st_mtime_ns, int(open(path).read().split()[1])
    except (OSError, IndexError, ValueError):
        return 0, -1


beat_at_start = [0]


def aim_evaluation():
    # the trainer beats just before it evaluates (every 10 steps); the kill
    # lands within a millisecond of such a beat from this process, inside the
    # 4 validation batches
    t, s = heartbeat()
    return t > beat_at_start[0] and s > 0 and s % 10 == 0


KILLS = 18
while True:
    if os.path.isdir(os.path.join(RUN, final)) and os.path.exists(os.path.join(RUN, "latest")) and \
            open(os.path.join(RUN, "latest")).read().strip() == final:
        break
    if starts >= KILLS + 10:
        check(False, "pretrain: finishes after the kills", f"{starts} starts")
        break
    resume = os.path.exists(os.path.join(RUN, "latest"))
    cmd = [KILN, "pretrain", cfg, "-q", "--set", f"out_dir={RUN}"] + (["--resume", "latest"] if resume else [])
    if not resume:  # died before its first checkpoint: start over, as kiln supervise does
        ENV["KILN_SUPERVISE_FRESH_RESTART"] = "1"
    starts += 1
    n = sum(kills.values())
    if n >= KILLS:
        rc, err = run_killed(cmd)
    else:
        how = rng.choice(["random", "random", "checkpoint", "rotation", "evaluation"])
        # short delays, so that the run is killed many times before it ends (a
        # start that gets to no new checkpoint makes no progress: the cap on
        # starts above ends that); aimed kills wait a random while before they
        # arm, so that they land on different checkpoints
        wait = rng.uniform(0, ref_seconds / 8)
        beat_at_start[0] = heartbeat()[0]
        if how == "random":
            rc, err = run_killed(cmd, delay=rng.uniform(0.05, ref_seconds / 5))
        else:
            start = time.monotonic()
            aim = {"checkpoint": aim_checkpoint, "rotation": aim_rotation, "evaluation": aim_evaluation}[how]
            rc, err = run_killed(cmd, aim=lambda: time.monotonic() - start > wait and aim())
        if rc is None:
            kills[how] += 1
    ENV.pop("KILN_SUPERVISE_FRESH_RESTART", None)
    if rc not in (None, 0):
        check(False, "pretrain: a restart after a kill succeeds", f"exit {rc}: {err[-600:]}")
        break

nkills = sum(kills.values())
print(f"pretrain: {nkills} kills ({kills['random']} at random, {kills['checkpoint']} while a checkpoint was "
      f"written, {kills['rotation']} during rotation, {kills['evaluation']} during evaluation), {starts} starts",
      flush=True)
check(nkills >= KILLS // 2, "pretrain: the kills happened", str(kills))
ok = os.path.isdir(os.path.join(RUN, final))
check(ok, "pretrain: the final checkpoint is there")
if ok:
    for f in ("model.safetensors", "optimizer.safetensors"):
        check(tensors(os.path.join(RUN, final, f)) == tensors(os.path.join(W, "ref", final, f)),
              f"pretrain: {f} bit-identical to the uninterrupted run's")


    def rows(path):
        out = []
        for line in open(path):
            r = json.loads(line)
            if "event" in r:
                continue
            out.append({k: v for k, v in r.items() if k not in ("time", "tokens_per_s", "mfu", "ms", "peak_rss_mb")})
        return out

    a, b = rows(os.path.join(RUN, "metrics.jsonl")), rows(os.path.join(W, "ref", "metrics.jsonl"))
    check(a == b, "pretrain: metrics.jsonl has the uninterrupted run's steps and losses",
          f"{len(a)} vs {len(b)} rows; first difference: {next(((x, y) for x, y in zip(a, b) if x != y), None)}")
    ck = sorted(os.path.basename(p) for p in glob.glob(os.path.join(RUN, "ckpt-*")))
    check(ck == sorted(os.path.basename(p) for p in glob.glob(os.path.join(W, "ref", "ckpt-*"))),
          "pretrain: rotation kept the same checkpoints", str(ck))
    check(not temps(RUN, True), "pretrain: no temp directory or file left", str(temps(RUN, True)))
    if temps(RUN):
        print(f"--   left by a kill while RUN/latest or metrics.jsonl was replaced: {temps(RUN)}")
pretrain_seconds = time.monotonic() - T0

# ---------------------------------------------------------------- data run
docs = []
stories = open(os.path.join(DATA, "pretrain/tinystories/TinyStories-train.head-part1.txt"), encoding="utf-8").read()
for i, s in enumerate(x.strip() for x in stories.split("<|endoftext|>")):
    if s:
        docs.append({"id": f"s{i}", "text": s})
docs += docs[:100]  # exact duplicates for exact_dedup
with open(os.path.join(W, "stories.jsonl"), "w") as f:
    for d in docs:
        f.write(json.dumps(d) + "\n")
out = os.path.join(W, "out")
pipe = os.path.join(W, "pipe.yaml")
open(pipe, "w").write(f"""seed: 7
out_dir: {out}
sources:
  - {{name: stories, format: jsonl, paths: [{W}/stories.jsonl]}}
stages:
  - clean
  - exact_dedup
  - sample: {{weights: [stories=1], max_epochs: 1}}
output: {{tokenizer: bytes, shard_tokens: 300000, val_fraction: 0.05}}
""")


def products(d):
    return {os.path.basename(p): sha(p) for p in glob.glob(os.path.join(d, "*.bin")) + [os.path.join(d, "manifest.json")]
            if os.path.exists(p)}


def consistent(d):
    """No manifest yet, or one whose shards all exist with their sha256."""
    m = os.path.join(d, "manifest.json")
    if not os.path.exists(m):
        return True
    man = json.load(open(m))
    return all(os.path.exists(os.path.join(d, s["path"])) and sha(os.path.join(d, s["path"])) == s["sha256"]
               for s in man["shards"])


t = time.monotonic()
p = subprocess.run([KILN, "data", "run", pipe], env=ENV, capture_output=True, text=True)
check(p.returncode == 0, "data run: uninterrupted", p.stderr[-600:])
data_seconds = time.monotonic() - t
ref = products(out)
os.rename(out, os.path.join(W, "out_ref"))
print(f"data run: uninterrupted in {data_seconds:.1f} s, {len(ref)} files", flush=True)
data_kills = data_starts = completed = 0
DATA_KILLS = 8
always_consistent = True
# killed at random moments; a run that finishes first is fine (its output must
# be the reference's), and the next one replaces that output, killed again
while data_kills < DATA_KILLS and data_starts < 4 * DATA_KILLS:
    data_starts += 1
    rc, err = run_killed([KILN, "data", "run", pipe], delay=rng.uniform(0.02, data_seconds))
    if rc is None:
        data_kills += 1
        always_consistent &= consistent(out)
    elif rc == 0:
        completed += 1
        check(products(out) == ref, "data run: a run between the kills writes the reference's output")
    else:
        check(False, "data run: a rerun after a kill succeeds", f"exit {rc}: {err[-600:]}")
data_starts += 1
rc, err = run_killed([KILN, "data", "run", pipe])
check(rc == 0, "data run: the last rerun succeeds", f"exit {rc}: {err[-600:]}")
print(f"data run: {data_kills} kills, {data_starts} starts ({completed} finished between kills)", flush=True)
check(always_consistent, "data run: after every kill, the output is complete or has no manifest")
check(products(out) == ref, "data run: shards and manifest byte-identical to the uninterrupted run's")
left = temps(out) + ([os.path.join(out, "work")] if os.path.exists(os.path.join(out, "work")) else [])
check(not left, "data run: no staging directory or work/ left", str(left))

total = time.monotonic() - T0
print(f"chaos: {nkills + data_kills} kills in {total:.0f} s (pretrain {pretrain_seconds:.0f} s), seed {SEED}")
if failures:
    print(f"{len(failures)} failed (seed {SEED}); work directory kept: {W}")
    sys.exit(1)
shutil.rmtree(W)
