#!/usr/bin/env python3
"""Training on a shared machine: 20 steps of a small model, alone and with
busy neighbours (`yes > /dev/null`, one per --busy), for each OpenMP wait
setting. Prints the median training seconds of --repeats runs (the sum of
the steps' times in metrics.jsonl, to the millisecond).

    /usr/bin/python3 bench/bench_threads.py [--kiln build/kiln] [--baseline OLD/kiln]
                                            [--busy 2] [--repeats 3]

The variants take turns within each repeat. Variants: `kiln` as it starts by
itself (it chooses its wait policy, see `kiln env`), libgomp's default spin
(GOMP_SPINCOUNT=300000, what kiln had before issue 12),
OMP_WAIT_POLICY=passive, and GOMP_SPINCOUNT 1000 and 100000; `--baseline`
adds an older build started with no setting at all.
"""
import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile

import machine  # bench/machine.py: lscpu model and flags

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

CONFIG = """model: {{vocab_size: 256, block_size: 64, n_layer: 4, n_head: 4, n_embd: 128}}
train: {{batch_size: 4, steps: 20, lr: 1.0e-3, warmup_steps: 2, log_every: 20, eval_every: 0,
        eval_batches: 1, checkpoint_every: 0}}
data: {{train: {d}/train_*.bin, val: {d}/val_*.bin}}
out_dir: {run}
"""


def clean_env():
    env = dict(os.environ)
    for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KILN_SPINCOUNT_CHOSEN", "OMP_NUM_THREADS"):
        env.pop(k, None)
    return env


def train_seconds(kiln, extra_env, work, n):
    run = os.path.join(work, "run%d" % n)
    cfg = os.path.join(work, "c%d.yaml" % n)
    with open(cfg, "w") as f:
        f.write(CONFIG.format(d=os.path.join(work, "data"), run=run))
    env = clean_env()
    env.update(extra_env)
    out = subprocess.run([kiln, "pretrain", cfg], env=env, capture_output=True, text=True)
    if out.returncode:
        sys.exit("pretrain failed: " + out.stdout + out.stderr)
    # the steps' own times from metrics.jsonl (ms each), not the trainer's
    # rounded "finished" line
    with open(os.path.join(run, "metrics.jsonl")) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return sum(r["ms"] for r in rows if "loss" in r and "ms" in r) / 1000.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kiln", default=os.path.join(ROOT, "build", "kiln"))
    ap.add_argument("--baseline")
    ap.add_argument("--busy", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", help="comma-separated variant numbers to run (0 = kiln's own choice)")
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # so that the busy processes are ended
    print("\n".join(machine.lscpu_lines()))
    variants = [("kiln (its own choice)", a.kiln, {}),
                ("GOMP_SPINCOUNT=300000 (libgomp default)", a.kiln, {"GOMP_SPINCOUNT": "300000"}),
                ("OMP_WAIT_POLICY=passive", a.kiln, {"OMP_WAIT_POLICY": "passive"}),
                ("GOMP_SPINCOUNT=1000", a.kiln, {"GOMP_SPINCOUNT": "1000"}),
                ("GOMP_SPINCOUNT=100000", a.kiln, {"GOMP_SPINCOUNT": "100000"})]
    if a.baseline:
        variants.append(("baseline build, no setting", a.baseline, {}))
    if a.only:
        variants = [variants[int(i)] for i in a.only.split(",")]
    with tempfile.TemporaryDirectory() as work:
        with open(os.path.join(work, "text.txt"), "wb") as f:
            f.write(open("/usr/share/common-licenses/GPL-3", "rb").read() * 4)
        subprocess.run([a.kiln, "tokenizer", "encode-corpus", "--bytes", "-o", os.path.join(work, "data"),
                        os.path.join(work, "text.txt")], check=True, capture_output=True)
        # the variants take turns within each repeat, so that a change in the
        # machine's load (it is shared) falls on all of them alike
        runs = {(v, busy): [] for v in range(len(variants)) for busy in (0, a.busy)}
        n = 0
        for busy in (0, a.busy):
            hogs = [subprocess.Popen(["yes"], stdout=subprocess.DEVNULL) for _ in range(busy)]
            try:
                for _ in range(a.repeats):
                    for v, (name, kiln, env) in enumerate(variants):
                        n += 1
                        runs[(v, busy)].append(train_seconds(kiln, env, work, n))
                        print("#", name, "busy", busy, runs[(v, busy)][-1], flush=True)
            finally:
                for h in hogs:
                    h.kill()
                    h.wait()
        print("| wait setting | alone: s for 20 steps | with %d busy processes |" % a.busy)
        print("|---|---|---|")
        for v, (name, _, _) in enumerate(variants):
            row = ["%.2f (%s)" % (statistics.median(r), " ".join("%.2f" % x for x in r))
                   for r in (runs[(v, 0)], runs[(v, a.busy)])]
            print("| %s | %s | %s |" % (name, row[0], row[1]), flush=True)

if __name__ == "__main__":
    main()
