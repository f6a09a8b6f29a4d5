#!/usr/bin/env python3
"""Training dynamics, kiln against PyTorch: nanoGPT's CPU "baby GPT" on Tiny
Shakespeare as bytes (configs/shakespeare-baby.yaml: 4 layers, 4 heads, width
128, block 64, batch 12, lr 1e-3 with 100 warmup steps and cosine decay to 1e-4
over 2000 iterations, AdamW betas (0.9, 0.99), weight decay 0.1, clip 1.0).

kiln runs `kiln pretrain`; PyTorch runs nanoGPT's loop (random windows, its LR
schedule) on the same shards with tests/parity/kiln_torch.py's model. Both are
scored on the whole validation split. Prints wall time and final validation loss.

    /usr/bin/python3 bench/bench_shakespeare.py [--threads 2] [--steps 2000]
"""
import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
INPUT = os.path.join(ROOT, "..", "shared", "data", "pretrain", "tinyshakespeare", "input.txt")
MODEL = dict(vocab_size=256, block_size=64, n_layer=4, n_head=4, n_embd=128, pos="learned",
             norm="layernorm", act="gelu_erf", bias=False, tied=True)
B, T = 12, 64


def torch_worker(job):
    import numpy as np
    import torch
    sys.path.insert(0, os.path.join(ROOT, "tests", "parity"))
    from kiln_torch import KilnGPT, param_groups
    job = json.loads(job)
    torch.set_num_threads(job["threads"])
    torch.manual_seed(1337)
    steps = job["steps"]

    def shard(path):
        return np.memmap(path, dtype=np.uint16, mode="r", offset=1024)

    train, val = shard(job["train"]), shard(job["val"])
    model = KilnGPT(MODEL).float()
    opt = torch.optim.AdamW(param_groups(model, MODEL, weight_decay=0.1, decay_embeddings=True),
                            lr=1e-3, betas=(0.9, 0.99), eps=1e-8)

    def lr_at(it):  # nanoGPT's get_lr
        if it < 100:
            return 1e-3 * (it + 1) / (100 + 1)
        if it > steps:
            return 1e-4
        ratio = (it - 100) / (steps - 100)
        return 1e-4 + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (1e-3 - 1e-4)

    t0 = time.perf_counter()
    for it in range(steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(it)
        ix = torch.randint(len(train) - T - 1, (B,))
        x = torch.stack([torch.from_numpy(train[i:i + T].astype(np.int64)) for i in ix])
        y = torch.stack([torch.from_numpy(train[i + 1:i + 1 + T].astype(np.int64)) for i in ix])
        _, loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    seconds = time.perf_counter() - t0
    # validation: every non-overlapping window of T (+1) tokens, as kiln evaluates
    model.eval()
    n = (len(val) - 1) // T
    total = 0.0
    with torch.no_grad():
        for s in range(0, n, 64):
            rows = range(s, min(n, s + 64))
            x = torch.stack([torch.from_numpy(val[r * T:r * T + T].astype(np.int64)) for r in rows])
            y = torch.stack([torch.from_numpy(val[r * T + 1:r * T + 1 + T].astype(np.int64)) for r in rows])
            total += model(x, y)[1].item() * len(rows)
    print(json.dumps(dict(seconds=seconds, val_loss=total / n)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kiln", default=os.path.join(ROOT, "build", "kiln"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--torch-worker")
    a = ap.parse_args()
    if a.torch_worker:
        return torch_worker(a.torch_worker)
    with tempfile.TemporaryDirectory() as w:
        subprocess.run([a.kiln, "tokenizer", "encode-corpus", "--bytes", "-o", w, INPUT], check=True,
                       capture_output=True)
        train, val = os.path.join(w, "train_000000.bin"), os.path.join(w, "val_000000.bin")
        env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))
        t0 = time.perf_counter()
        log = subprocess.run([a.kiln, "pretrain", os.path.join(ROOT, "configs", "shakespeare-baby.yaml"),
                              "--set", f"data.train={train}", "--set", f"data.val={val}",
                              "--set", f"out_dir={w}/run", "--set", f"train.steps={a.steps}",
                              "--set", f"train.decay_steps={a.steps}", "--set", "train.eval_every=0"],
                             env=env, check=True, capture_output=True, text=True).stdout
        kiln_s = time.perf_counter() - t0
        kiln_val = float(re.findall(r"val loss ([0-9.]+)", log)[-1])
        tenv = dict(env, OMP_WAIT_POLICY="PASSIVE", OPENBLAS_NUM_THREADS=str(a.threads))
        job = json.dumps(dict(threads=a.threads, steps=a.steps, train=train, val=val))
        out = subprocess.run([sys.executable, __file__, "--torch-worker", job], env=tenv, check=True,
                             capture_output=True, text=True).stdout
        torch_res = json.loads(out.strip().splitlines()[-1])
    print(f"# {time.strftime('%Y-%m-%d')} | baby GPT on Tiny Shakespeare (bytes), {a.steps} steps, "
          f"{a.threads} threads")
    print(f"{'impl':<8} {'seconds':>8} {'val loss':>9}")
    print(f"{'kiln':<8} {kiln_s:8.1f} {kiln_val:9.4f}   (wall time of the whole command)")
    print(f"{'pytorch':<8} {torch_res['seconds']:8.1f} {torch_res['val_loss']:9.4f}   (training loop only)")
    print(f"ratio    kiln is {torch_res['seconds'] / kiln_s:.2f}x faster; val loss difference "
          f"{kiln_val - torch_res['val_loss']:+.4f}")


if __name__ == "__main__":
    main()
