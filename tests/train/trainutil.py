"""trainutil.py: shared pieces of the end-to-end training tests (run with /usr/bin/python3)."""
import hashlib
import json
import os
import subprocess
import sys


def skip(msg):
    print("SKIP:", msg)
    sys.exit(77)


def shared_data(repo):
    return os.path.join(repo, "..", "shared", "data")


def byte_shards(kiln, repo, work):
    """Tiny Shakespeare as byte shards in work/data (train_*.bin, val_*.bin)."""
    src = os.path.join(shared_data(repo), "pretrain", "tinyshakespeare", "input.txt")
    if not os.path.exists(src):
        skip(src + " not found (the shared data folder is absent)")
    out = os.path.join(work, "data")
    if not os.path.isdir(out):
        subprocess.run([kiln, "tokenizer", "encode-corpus", "--bytes", "-o", out, src], check=True,
                       stdout=subprocess.DEVNULL)
    return out


# A model small enough that a step takes milliseconds, with every feature that
# carries state across a resume switched on: dropout, shuffling, accumulation,
# a batch ramp, evaluation and checkpoint rotation.
TINY = {
    "model.vocab_size": 256, "model.block_size": 32, "model.n_layer": 2, "model.n_head": 2,
    "model.n_embd": 32, "model.dropout": 0.1,
    "train.batch_size": 4, "train.seq_len": 32, "train.grad_accum": 2, "train.steps": 600,
    "train.lr": 3e-3, "train.min_lr": 3e-4, "train.warmup_steps": 10,
    "train.batch_ramp_start": 128, "train.batch_ramp_tokens": 8000,
    "train.eval_every": 50, "train.eval_batches": 2, "train.log_every": 50,
    "train.checkpoint_every": 10, "train.keep_last": 2, "train.keep_every": 100,
    "train.threads": 1, "train.peak_tflops": 1, "train.seed": 7,
}


def pretrain_args(kiln, data, run, overrides=None, extra=()):
    keys = dict(TINY)
    keys["data.train"] = os.path.join(data, "train_*.bin")
    keys["data.val"] = os.path.join(data, "val_*.bin")
    keys["out_dir"] = run
    keys.update(overrides or {})
    args = [kiln, "pretrain"]
    for k, v in keys.items():
        args += ["--set", "%s=%s" % (k, v)]
    return args + list(extra)


def metrics(run):
    """The records of run/metrics.jsonl."""
    with open(os.path.join(run, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()]


def series(recs, name):
    """step -> value of a series; fails if a step appears twice."""
    out = {}
    for r in recs:
        if name in r:
            assert r["step"] not in out, "step %d logged twice for %s" % (r["step"], name)
            out[r["step"]] = r[name]
    return out


def events(recs, kind):
    return [r for r in recs if r.get("event") == kind]


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def latest(run):
    with open(os.path.join(run, "latest")) as f:
        return os.path.join(run, f.read().strip())


def tensor_bytes(path):
    """sha256 of a safetensors file's tensor names, shapes and data, leaving out
    its metadata (the config, which names the run's own directory)."""
    with open(path, "rb") as f:
        raw = f.read()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    header.pop("__metadata__", None)
    h = hashlib.sha256(json.dumps(header, sort_keys=True).encode())
    h.update(raw[8 + n:])
    return h.hexdigest()


def weights(ckpt):
    return (tensor_bytes(os.path.join(ckpt, "model.safetensors")),
            tensor_bytes(os.path.join(ckpt, "optimizer.safetensors")))
