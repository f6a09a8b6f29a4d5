#!/usr/bin/python3
"""Data parallelism over MPI (issue 14): what 2 ranks cost against 2 processes.

The 6-layer model of bench_train.py ("small": 6 layers, 6 heads, width 384,
GPT-2's vocabulary) on TinyStories in GPT-2 tokens, one thread per process:
  independent: two `kiln pretrain` runs at once, each a batch of B x T a step;
  dp=2:        `mpirun -np 2 kiln pretrain` with grad_accum 2, each rank one
               micro-batch of B x T a step, gradients all-reduced;
  ZeRO-1:      the same with parallel.zero=1;
  ZeRO-2:      the same with parallel.zero=2 (one micro-batch per rank: the
               blocks' gradients reduce-scattered once, as ZeRO-1's).
The issue's bar: dp=2 at >= 90% of the two independent runs' summed tokens/s.
Alternates the two, --repeats times; medians of the steps after the first two.
Also reads the bytes rank 1 sent per step from OpenMPI's
monitoring component (pml_monitoring: what really went through the transport)
against the ring all-reduce volume 2(N-1)/N x 4 bytes x parameters (ZeRO:
reduce-scatter plus all-gather, the same volume), and rank 0's time in
collectives per step (comm_ms in metrics.jsonl).
    /usr/bin/python3 bench/bench_dp.py [--kiln build/kiln] [--steps 8] [--repeats 3] [--batch 8] [--seq 256]
"""
import argparse
import glob
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

import machine  # bench/machine.py: lscpu model and flags
import tinystories  # bench/tinystories.py: the stories in GPT-2 tokens

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MODEL = ["model.vocab_size=50257", "model.block_size=256", "model.n_layer=6", "model.n_head=6", "model.n_embd=384"]
ENV = dict(os.environ, OMP_NUM_THREADS="1", OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")


def rows(run):
    with open(os.path.join(run, "metrics.jsonl")) as f:
        return [r for r in (json.loads(line) for line in f if line.strip()) if "loss" in r]


def rank1_sent(out):
    """Bytes rank 1 sent through the transport: its point to point ("E 1 0 N
    bytes") and its collectives' traffic ("I 1 0 N bytes"). The monitoring's
    per-collective count ("A2A") undercounts reduce-scatter and all-gather."""
    return sum(int(x) for x in re.findall(r"^[EI]\t1\t\d+\t(\d+) bytes", out, re.M))


def tok_s(run):
    return statistics.median(r["tokens_per_s"] for r in rows(run)[2:])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kiln", default=os.path.join(ROOT, "build", "kiln"))
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=256)
    a = ap.parse_args()
    print("\n".join(machine.lscpu_lines()))
    print(subprocess.run([a.kiln, "env"], capture_output=True, text=True).stdout.splitlines()[-1])
    work = tempfile.mkdtemp(prefix="kiln_dp_")
    data = tinystories.gpt2_shards(a.kiln, work)
    common = MODEL + [f"train.batch_size={a.batch}", f"train.seq_len={a.seq}", f"train.steps={a.steps}",
                      "train.threads=1", "train.log_every=1000", "train.eval_every=0", f"data.train={data}/train_*.bin",
                      "data.val="]

    def pretrain_cmd(out, *extra):
        cmd = [a.kiln, "pretrain", "-q", "--set", f"out_dir={out}"]
        for s in common + list(extra):
            cmd += ["--set", s]
        return cmd

    indep, dp, zero, zero2, comm_ms, sent, sent_z1, sent_z2 = [], [], [], [], [], [], [], []
    for rep in range(a.repeats):
        runs = [os.path.join(work, f"ind{rep}_{i}") for i in range(2)]
        procs = [subprocess.Popen(pretrain_cmd(r, "train.grad_accum=1"), env=ENV) for r in runs]
        if any(p.wait() for p in procs):
            sys.exit("an independent run failed")
        indep.append(sum(tok_s(r) for r in runs))
        run = os.path.join(work, f"dp{rep}")
        # the monitoring component prints each rank's counts at MPI_Finalize
        p = subprocess.run(["mpirun", "--oversubscribe", "--bind-to", "none", "--mca", "pml_monitoring_enable", "2",
                            "--mca", "pml_monitoring_enable_output", "2", "-np", "2",
                            *pretrain_cmd(run, "train.grad_accum=2")], env=ENV, check=True, capture_output=True,
                           text=True)
        dp.append(tok_s(run))
        for z, runs_z, sent_z in ((1, zero, sent_z1), (2, zero2, sent_z2)):
            zrun = os.path.join(work, f"zero{z}_{rep}")
            pz = subprocess.run(["mpirun", "--oversubscribe", "--bind-to", "none", "--mca", "pml_monitoring_enable",
                                 "2", "--mca", "pml_monitoring_enable_output", "2", "-np", "2",
                                 *pretrain_cmd(zrun, "train.grad_accum=2", f"parallel.zero={z}")], env=ENV,
                                check=True, capture_output=True, text=True)
            runs_z.append(tok_s(zrun))
            sent_z.append(rank1_sent(pz.stdout + pz.stderr) / a.steps)
        comm_ms.append(statistics.median(r["comm_ms"] for r in rows(run)[2:]))
        sent.append(rank1_sent(p.stdout + p.stderr) / a.steps)
        print(f"repeat {rep + 1}: independent {indep[-1]:.0f} tok/s, dp=2 {dp[-1]:.0f} tok/s "
              f"({100 * dp[-1] / indep[-1]:.1f}%), comm {comm_ms[-1]:.1f} ms/step; dp=2 ZeRO-1 {zero[-1]:.0f} tok/s "
              f"({100 * zero[-1] / indep[-1]:.1f}%); ZeRO-2 {zero2[-1]:.0f} tok/s ({100 * zero2[-1] / indep[-1]:.1f}%)",
              flush=True)
    ck = sorted(glob.glob(os.path.join(work, "dp0", "ckpt-*", "model.safetensors")))[-1]
    with open(ck, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
    header.pop("__metadata__", None)
    nparams = sum((h["data_offsets"][1] - h["data_offsets"][0]) // 4 for h in header.values())
    theory = 2 * (2 - 1) / 2 * 4 * nparams
    step_ms = 1e3 * a.batch * a.seq * 2 / statistics.median(dp)
    print(f"\n6-layer model, B={a.batch} T={a.seq}, 1 thread per process, {a.steps} steps, medians of {a.repeats}:")
    print(f"  two independent processes: {statistics.median(indep):.0f} tok/s (summed)")
    print(f"  mpirun -np 2 (dp=2):       {statistics.median(dp):.0f} tok/s = "
          f"{100 * statistics.median(dp) / statistics.median(indep):.1f}% of independent (bar 90%)")
    print(f"  dp=2 with ZeRO-1:          {statistics.median(zero):.0f} tok/s = "
          f"{100 * statistics.median(zero) / statistics.median(indep):.1f}% of independent")
    print(f"  dp=2 with ZeRO-2:          {statistics.median(zero2):.0f} tok/s = "
          f"{100 * statistics.median(zero2) / statistics.median(indep):.1f}% of independent")
    print(f"  comm per step (rank 0):    {statistics.median(comm_ms):.1f} ms of {step_ms:.0f} ms")
    for name, x in (("dp=2", sent), ("ZeRO-1", sent_z1), ("ZeRO-2", sent_z2)):
        print(f"  bytes rank 1 sent/step, {name}: {statistics.median(x):.0f} (OpenMPI monitoring) against "
              f"{theory:.0f} theory = {100 * statistics.median(x) / theory:.2f}%")


if __name__ == "__main__":
    main()
