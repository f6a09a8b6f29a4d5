#!/usr/bin/python3
"""Model parallelism over MPI (issue 14): the bytes tensor and pipeline
parallelism send per step, measured against the theory, and their speed.

The 6-layer model of bench_train.py ("small": 6 layers, 6 heads, width 384,
GPT-2's vocabulary padded to 50304 so that 2 tensor-parallel ranks split it)
on TinyStories in GPT-2 tokens, one thread per rank, 4 micro-batches of
B x T a step:
  tp=2: Megatron-LM's splits; rank 1 sends its share of 4 all-reduces of
        (B,T,C) per block, 2 more (the embedding, the head's input gradient)
        and the cross-entropy's row max and sum per micro-batch: on 2 ranks the
        ring volume is the data, 4 x (BTC x (4L + 2) + 2BT + 1) bytes;
  pp=2: 1F1B over 2 stages of 3 blocks; the last stage sends back the
        gradient of each micro-batch's activations, 4 x BTC bytes, and its
        copy of the tied embedding's gradient, 4 x V x C bytes, once a step.
The bytes are what OpenMPI's monitoring component (pml_monitoring) counted on
rank 1, point to point and inside collectives; a run of S2 steps minus one of
S1 steps, over S2 - S1, leaves out what is paid once (the start's weights, the
final checkpoint's gather). Also tokens/s of each layout beside one process
with 2 threads (same global batch), the measured pipeline bubble and rank 0's
time in communication (medians of the steps after the first).
    /usr/bin/python3 bench/bench_mp.py [--kiln build/kiln] [--batch 4] [--seq 256]
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import tempfile

import machine  # bench/machine.py: lscpu model and flags
import tinystories  # bench/tinystories.py: the stories in GPT-2 tokens

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
L, C, V = 6, 384, 50304
MODEL = [f"model.vocab_size={V}", "model.block_size=256", f"model.n_layer={L}", "model.n_head=6",
         f"model.n_embd={C}"]
ENV = dict(os.environ, OMP_NUM_THREADS="1", OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
MICRO = 4


def med(run, key):
    """The median over the steps after the first of a metric in metrics.jsonl."""
    with open(os.path.join(run, "metrics.jsonl")) as f:
        recs = [json.loads(line) for line in f if line.strip()]
    return statistics.median(r[key] for r in recs if key in r and r.get("step", 0) > 1)


def rank1_sent(out):
    """Bytes rank 1 sent: its user point-to-point ("E 1 0 N bytes") and its
    collectives' internal traffic ("I 1 0 N bytes")."""
    return sum(int(x) for x in re.findall(r"^[EI]\t1\t\d+\t(\d+) bytes", out, re.M))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kiln", default=os.path.join(ROOT, "build", "kiln"))
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--steps", default="3,6", help="S1,S2: the two run lengths")
    a = ap.parse_args()
    s1, s2 = (int(x) for x in a.steps.split(","))
    print("\n".join(machine.lscpu_lines()))
    print(subprocess.run([a.kiln, "env"], capture_output=True, text=True).stdout.splitlines()[-1])
    work = tempfile.mkdtemp(prefix="kiln_mp_")
    data = tinystories.gpt2_shards(a.kiln, work)
    common = MODEL + [f"train.batch_size={a.batch}", f"train.seq_len={a.seq}", f"train.grad_accum={MICRO}",
                      "train.warmup_steps=0", "train.log_every=1000", "train.eval_every=0",
                      f"data.train={data}/train_*.bin", "data.val="]

    def run(name, ranks, steps, *extra):
        out = os.path.join(work, f"{name}_{steps}")
        cmd = [a.kiln, "pretrain", "-q", "--set", f"out_dir={out}", "--set", f"train.steps={steps}"]
        for s in common + list(extra):
            cmd += ["--set", s]
        if ranks > 1:
            cmd = ["mpirun", "--oversubscribe", "--bind-to", "none", "--mca", "pml_monitoring_enable", "2",
                   "--mca", "pml_monitoring_enable_output", "2", "-np", str(ranks), *cmd]
        p = subprocess.run(cmd, env=ENV, check=True, capture_output=True, text=True)
        return out, rank1_sent(p.stdout + p.stderr)

    BT = a.batch * a.seq
    theory = {"tp=2": 4 * MICRO * (BT * C * (4 * L + 2) + 2 * BT + 1),
              "pp=2": 4 * MICRO * BT * C + 4 * V * C}
    one, _ = run("one", 1, s2, "train.threads=2")
    base = med(one, "tokens_per_s")
    print(f"\n6-layer model (vocab {V}), {MICRO} micro-batches of {a.batch} x {a.seq} a step:")
    print(f"  1 process, 2 threads:   {base:.0f} tok/s")
    for name, sets in (("tp=2", ["parallel.tp=2", "train.threads=1"]), ("pp=2", ["parallel.pp=2", "train.threads=1"])):
        _, b1 = run(name.replace("=", ""), 2, s1, *sets)
        out, b2 = run(name.replace("=", ""), 2, s2, *sets)
        per = (b2 - b1) / (s2 - s1)
        extra = f", bubble {100 * med(out, 'pp_bubble'):.0f}% measured" if name == "pp=2" else ""
        print(f"  {name}: {med(out, 'tokens_per_s'):.0f} tok/s ({100 * med(out, 'tokens_per_s') / base:.0f}% of one "
              f"process), comm {med(out, 'comm_ms'):.0f} of {med(out, 'ms'):.0f} ms a step{extra}")
        print(f"        rank 1 sent {per:.0f} bytes a step against {theory[name]} in theory = "
              f"{100 * per / theory[name]:.3f}%")


if __name__ == "__main__":
    main()
