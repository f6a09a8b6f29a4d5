#!/usr/bin/env python3
"""Training speed, kiln against PyTorch, in one run.

Runs the same models with kiln (build/bench/bench_train) and with PyTorch
(Debian's python3-torch, fp32, the model in tests/parity/kiln_torch.py),
alternating the two, and prints ms/step, tokens/s, GFLOP/s, MFU against the
sgemm peak measured on the spot, and the kiln/PyTorch throughput ratio.

    /usr/bin/python3 bench/bench_train.py [--threads 2] [--repeats 3] [--sizes 124M,small]
                                          [--precisions fp32,bf16]

--precisions bf16 runs kiln with train.precision=bf16 (its linear layers on the
fp32 sgemm with bf16-rounded operands) and PyTorch under
torch.autocast("cpu", torch.bfloat16), and prints kiln's bf16/fp32 speed-up;
bf16-onednn runs kiln's bf16 with train.bf16_kernels=onednn (oneDNN's bf16
instructions; kiln only).

PyTorch gets its best thread setting: torch.set_num_threads(threads) and
OMP_WAIT_POLICY=PASSIVE (Debian's torch calls the pthread OpenBLAS, whose
threads would otherwise fight the OpenMP pool), and the OpenBLAS kernels kiln
runs (OPENBLAS_CORETYPE set to them: on a CPU newer than Debian's OpenBLAS
knows, both would otherwise run its SSE3 fallback).
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import machine  # bench/machine.py: lscpu model and flags

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# name: (model config, B, T, timed steps)
SIZES = {
    "124M": (dict(vocab_size=50257, block_size=1024, n_layer=12, n_head=12, n_embd=768), 4, 64, 5),
    "small": (dict(vocab_size=50257, block_size=256, n_layer=6, n_head=6, n_embd=384), 8, 256, 5),
    "baby": (dict(vocab_size=256, block_size=64, n_layer=4, n_head=4, n_embd=128, bias=False,
                  act="gelu_erf"), 12, 64, 40),
}
sys.path.insert(0, os.path.join(ROOT, "tests", "parity"))


def full_config(model):
    from kiln_torch import model_config  # kiln's defaults and derived sizes
    return model_config(model)


def flops_per_step(cfg, B, T):
    """Forward + backward FLOPs, PaLM-style: 6 x matmul params + 12 L C T per token."""
    C, L, V, H = cfg["n_embd"], cfg["n_layer"], cfg["vocab_size"], cfg["ffn_hidden"]
    hd = C // cfg["n_head"]
    qkv = (cfg["n_head"] + 2 * cfg["n_kv_head"]) * hd
    fc = 2 * H if cfg["act"] == "swiglu" else H
    matmul = L * (qkv * C + C * C + fc * C + C * H) + V * C
    return (6 * matmul + 12 * L * C * T) * B * T


def run_kiln(binary, model, B, T, steps, threads, precision="fp32"):
    prec, _, kernels = precision.partition("-")
    args = [binary, str(B), str(T), str(steps), f"train.precision={prec}"]
    if kernels:
        args.append(f"train.bf16_kernels={kernels}")
    args += [f"model.{k}={str(v).lower()}" for k, v in model.items()]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    out = subprocess.run(args, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["ms_per_step"]


def run_torch(model, B, T, steps, threads, precision="fp32", core=None):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OMP_WAIT_POLICY="PASSIVE",
               OPENBLAS_NUM_THREADS=str(threads))
    if core:
        env["OPENBLAS_CORETYPE"] = core
    job = json.dumps(dict(model=model, B=B, T=T, steps=steps, threads=threads, precision=precision))
    out = subprocess.run([sys.executable, __file__, "--torch-worker", job], env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["ms_per_step"]


def torch_worker(job):
    import torch
    from kiln_torch import KilnGPT, param_groups
    job = json.loads(job)
    torch.set_num_threads(job["threads"])
    torch.manual_seed(0)
    cfg = full_config(job["model"])
    model = KilnGPT(cfg).float()
    opt = torch.optim.AdamW(param_groups(model, cfg, weight_decay=0.1, decay_embeddings=False),
                            lr=1e-4, betas=(0.9, 0.95), eps=1e-8)
    B, T, V = job["B"], job["T"], cfg["vocab_size"]
    bf16 = job.get("precision") == "bf16"
    times = []
    for step in range(job["steps"] + 1):  # the first step warms up
        x = torch.randint(0, V, (B, T))
        y = torch.randint(0, V, (B, T))
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            _, loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step > 0:
            times.append(time.perf_counter() - t0)
    print(json.dumps(dict(ms_per_step=1e3 * statistics.median(times))))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kiln", default=os.path.join(ROOT, "build", "bench", "bench_train"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sizes", default="124M,small")
    ap.add_argument("--baseline", help="another bench_train binary (e.g. a build of an earlier commit), run "
                    "alternately with --kiln: a refactor's no-slowdown check")
    ap.add_argument("--no-torch", action="store_true", help="leave PyTorch out (with --baseline)")
    ap.add_argument("--precisions", default="fp32", help="fp32, bf16 or both (fp32,bf16)")
    ap.add_argument("--torch-precisions", help="PyTorch's subset of --precisions (default: all of them); its "
                    "autocast bf16 on a CPU without AVX512_BF16 runs ~15x slower than its fp32")
    ap.add_argument("--torch-worker")
    a = ap.parse_args()
    if a.torch_worker:
        return torch_worker(a.torch_worker)
    torch_version = "not run"
    if not a.no_torch:
        import torch
        torch_version = torch.__version__
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))
    sg = json.loads(subprocess.run([a.kiln, "--sgemm", "2048"], env=env, check=True, capture_output=True,
                                   text=True).stdout)
    peak = sg["sgemm_gflops"]
    print("\n".join(machine.lscpu_lines()))
    cpu = machine.cpu_model()
    print(f"# {time.strftime('%Y-%m-%d')} | {cpu} | {a.threads} threads | sgemm peak {peak:.1f} GFLOP/s "
          f"(OpenBLAS {sg['core']} kernels, 2048^3) | torch {torch_version} | {platform.python_version()}")
    print(f"{'size':<7} {'impl':<13} {'ms/step':>9} {'tok/s':>8} {'GFLOP/s':>8} {'MFU':>6}   runs (ms/step)")
    for name in a.sizes.split(","):
        model, B, T, steps = SIZES[name]
        cfg = full_config(model)
        flops = flops_per_step(cfg, B, T)
        precs = a.precisions.split(",")
        torch_precs = a.torch_precisions.split(",") if a.torch_precisions else [p for p in precs if "-" not in p]
        tag = (lambda impl, p: impl) if precs == ["fp32"] else (lambda impl, p: f"{impl}-{p}")
        runs = {}
        for p in precs:
            runs[tag("kiln", p)] = []
            if a.baseline:
                runs[tag("baseline", p)] = []
            if not a.no_torch and p in torch_precs:
                runs[tag("pytorch", p)] = []
        for _ in range(a.repeats):  # alternate, so drift on a shared machine hits all
            for p in precs:
                runs[tag("kiln", p)].append(run_kiln(a.kiln, model, B, T, steps, a.threads, p))
                if a.baseline:
                    runs[tag("baseline", p)].append(run_kiln(a.baseline, model, B, T, steps, a.threads, p))
                if tag("pytorch", p) in runs:
                    runs[tag("pytorch", p)].append(run_torch(model, B, T, steps, a.threads, p, sg["core"]))
        med = {k: statistics.median(v) for k, v in runs.items()}
        for impl in runs:
            ms = med[impl]
            gf = flops / (ms / 1e3) / 1e9
            print(f"{name:<7} {impl:<13} {ms:9.1f} {B * T / (ms / 1e3):8.1f} {gf:8.1f} {gf / peak:6.1%}   "
                  + " ".join(f"{x:.0f}" for x in runs[impl]))
        for p in precs:
            k, t, b = tag("kiln", p), tag("pytorch", p), tag("baseline", p)
            if t in med:
                print(f"{name:<7} ratio {p}  kiln is {med[t] / med[k]:.2f}x PyTorch's tokens/s")
            if b in med:
                print(f"{name:<7} ratio {p}  kiln is {med[b] / med[k]:.3f}x the baseline's tokens/s")
        for p in precs:
            if p != "fp32" and "fp32" in precs:
                print(f"{name:<7} ratio    kiln {p} is {med[tag('kiln', 'fp32')] / med[tag('kiln', p)]:.2f}x "
                      "kiln fp32's tokens/s")


if __name__ == "__main__":
    main()
