#!/usr/bin/python3
"""bf16 against fp32 in training (issue 13): the loss curves of one model, same
data, same seed, trained with train.precision fp32 and bf16 by `kiln pretrain`.

Default: the 6-layer model of bench_train.py ("small": 6 layers, 6 heads, width
384, GPT-2's vocabulary) for 200 steps on TinyStories (../shared/data) encoded
with GPT-2's tokenizer, batch 4 x 128 (bench_train.py's 8 x 256 takes ~25
minutes a run on 2 cores). Prints every logged step of both, the largest
relative gap between the curves (raw and over a 10-step moving average: single
steps of a 200-step run jitter with the batch), the validation losses and the
time per step. The issue's bar: the curve within 1% of fp32's.

    /usr/bin/python3 bench/bench_precision.py [--kiln build/kiln] [--steps 200] [--threads 2]
"""
import argparse
import json
import os
import subprocess
import tempfile
import time

import machine  # bench/machine.py: lscpu model and flags
import tinystories  # bench/tinystories.py: the stories in GPT-2 tokens

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MODEL = {"model.vocab_size": 50257, "model.block_size": 256, "model.n_layer": 6, "model.n_head": 6,
         "model.n_embd": 384}


def metrics(run):
    with open(os.path.join(run, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()]


def moving(xs, k):
    return [sum(xs[max(0, i - k + 1):i + 1]) / (i + 1 - max(0, i - k + 1)) for i in range(len(xs))]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kiln", default=os.path.join(ROOT, "build", "kiln"))
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    print("\n".join(machine.lscpu_lines()))
    work = tempfile.mkdtemp(prefix="kiln_precision_")
    data = tinystories.gpt2_shards(a.kiln, work)
    keys = dict(MODEL, **{"train.batch_size": a.batch, "train.seq_len": a.seq, "train.steps": a.steps,
                          "train.lr": 6e-4, "train.min_lr": 6e-5, "train.warmup_steps": 20,
                          "train.log_every": 20, "train.eval_every": 0, "train.eval_batches": 20,
                          "train.checkpoint_every": 0, "train.threads": a.threads, "train.seed": 1,
                          "data.train": os.path.join(data, "train_*.bin"),
                          "data.val": os.path.join(data, "val_*.bin")})
    curves, val, ms = {}, {}, {}
    for p in ("fp32", "bf16"):
        run = os.path.join(work, "run-" + p)
        args = [a.kiln, "pretrain", "-q"]
        for k, v in dict(keys, **{"train.precision": p, "out_dir": run}).items():
            args += ["--set", f"{k}={v}"]
        t0 = time.time()
        subprocess.run(args, check=True)
        recs = metrics(run)
        curves[p] = [r["loss"] for r in sorted((r for r in recs if "loss" in r), key=lambda r: r["step"])]
        val[p] = [r["val_loss"] for r in recs if "val_loss" in r][-1]
        steps_ms = sorted(r["ms"] for r in recs if "ms" in r)
        ms[p] = steps_ms[len(steps_ms) // 2]
        print(f"{p}: {time.time() - t0:.0f} s, median step {ms[p]:.0f} ms, final val loss {val[p]:.4f}")
    a32, a16 = curves["fp32"], curves["bf16"]
    assert len(a32) == len(a16) == a.steps, (len(a32), len(a16))
    raw = max(abs(y - x) / x for x, y in zip(a32, a16))
    s32, s16 = moving(a32, 10), moving(a16, 10)
    smooth = max(abs(y - x) / x for x, y in zip(s32, s16))
    print(f"# {time.strftime('%Y-%m-%d')} | {machine.cpu_model()} | {a.threads} threads | 6-layer model, "
          f"B={a.batch} T={a.seq}, {a.steps} steps, TinyStories (GPT-2 tokens)")
    print(f"{'step':>5} {'fp32':>8} {'bf16':>8} {'gap':>7}")
    for i in range(0, a.steps, 20):
        print(f"{i + 1:5d} {a32[i]:8.4f} {a16[i]:8.4f} {(a16[i] - a32[i]) / a32[i]:+7.2%}")
    print(f"{a.steps:5d} {a32[-1]:8.4f} {a16[-1]:8.4f} {(a16[-1] - a32[-1]) / a32[-1]:+7.2%}")
    print(f"largest gap: {raw:.2%} per step, {smooth:.2%} over a 10-step average; validation "
          f"{val['fp32']:.4f} vs {val['bf16']:.4f}; step {ms['fp32']:.0f} vs {ms['bf16']:.0f} ms "
          f"(bf16 {ms['fp32'] / ms['bf16']:.2f}x fp32's speed)")


if __name__ == "__main__":
    main()
