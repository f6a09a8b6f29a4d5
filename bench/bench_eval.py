#!/usr/bin/python3
"""Evaluation speed: `kiln eval` against PyTorch doing what lm-evaluation-harness
does for the same requests (one forward pass per (context, choice) pair, no
cache; the items batched per item, torch on the same threads), on HellaSwag
and PIQA with the README demo's checkpoint (byte-level, runs/debian).

Both score identical token sequences (byte model: no tokenizer question), so
the log-likelihoods must agree; the script checks that, then prints items/s,
the ratio, and a markdown row for docs/benchmarks.md. Medians of --reps runs.

Usage: /usr/bin/python3 bench/bench_eval.py [--kiln build/kiln] [--model runs/debian] [--limit 200] [--reps 3]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import torch

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(root, "tests", "parity"))
import kiln_torch as kt  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--kiln", default=os.path.join(root, "build", "kiln"))
ap.add_argument("--model", default=os.path.join(root, "runs", "debian"))
ap.add_argument("--limit", type=int, default=200)
ap.add_argument("--reps", type=int, default=3)
ap.add_argument("--threads", type=int, default=2)
args = ap.parse_args()
if not os.path.exists(os.path.join(args.model, "latest")):
    sys.exit("%s: no run there (run scripts/demo.sh first, or pass --model)" % args.model)
torch.set_num_threads(args.threads)
data = os.path.join(root, "..", "shared", "data")
work = tempfile.mkdtemp(prefix="kiln_bench_eval_")
ckpt = os.path.join(args.model, open(os.path.join(args.model, "latest")).read().strip())
state = json.load(open(os.path.join(ckpt, "state.json")))
cfg = {}
section = None
for line in state["config"].splitlines():
    if not line.startswith(" "):
        section = line.rstrip(":")
        continue
    k, v = line.strip().split(": ", 1)
    if section == "model":
        cfg[k] = v.strip('"')
mc = {k: (int(v) if v.lstrip("-").isdigit() else v) for k, v in cfg.items()
      if k in ("vocab_size", "block_size", "n_layer", "n_head", "n_kv_head", "n_embd", "ffn_hidden")}
for k in ("pos", "norm", "act"):
    mc[k] = cfg[k]
for k in ("bias", "tied"):
    mc[k] = cfg[k] == "true"
model = kt.KilnGPT(kt.model_config(mc))
model.load_state_dict({k: torch.from_numpy(v) for k, v in kt.load_safetensors(os.path.join(ckpt, "model.safetensors"))[0].items()})
model.eval()
MAX = mc["block_size"]


def torch_items(prompts):
    """lm-evaluation-harness's way: every (context, continuation) pair is its own
    forward pass over the last MAX tokens (batched per item)."""
    lls = []
    for p in prompts:
        ctx = p["context"].encode()
        seqs, spans = [], []
        for c in p["continuations"]:
            n = len(ctx) - len(ctx.rstrip())
            a, b = (ctx[:-n], ctx[-n:] + c.encode()) if n else (ctx, c.encode())
            full = list(a + b)[-(MAX + 1):]
            seqs.append(full)
            spans.append(len(b))
        L = max(len(s) - 1 for s in seqs)
        x = torch.zeros(len(seqs), L, dtype=torch.long)
        for i, s in enumerate(seqs):
            x[i, :len(s) - 1] = torch.tensor(s[:-1])
        with torch.no_grad():
            lp = torch.log_softmax(model(x)[0].float(), -1)
        row = []
        for i, s in enumerate(seqs):
            n = min(spans[i], len(s) - 1)
            pos = torch.arange(len(s) - 1 - n, len(s) - 1)
            row.append(lp[i, pos, torch.tensor(s[-n:])].sum().item())
        lls.append(row)
    return lls


rows = []
for task in ("hellaswag", "piqa"):
    prompts_path, items_path = os.path.join(work, task + ".prompts"), os.path.join(work, task + ".items")
    cmd = [args.kiln, "eval", "--model", args.model, "--tasks", task, "--limit", str(args.limit), "--tokenizer",
           "bytes", "--threads", str(args.threads), "--data-dir", data, "--task-dir", os.path.join(root, "tasks"),
           "--dump-prompts", prompts_path, "--keep-items", items_path, "-q"]
    kt_times, pt_times = [], []
    for rep in range(args.reps):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        kt_times.append(time.perf_counter() - t0)
        prompts = [json.loads(l) for l in open(prompts_path)]
        t0 = time.perf_counter()
        ref = torch_items(prompts)
        pt_times.append(time.perf_counter() - t0)
    items = [json.loads(l) for l in open(items_path)]
    # items whose every request fits the model: there kiln must equal the single-pass reference
    # (longer continuations are scored in windows by kiln and cut by the reference)
    fits = [all(len((p["context"] + c).encode()) <= MAX + 1 or len(c.encode()) <= MAX for c in p["continuations"])
            and all(len(c.encode()) < MAX for c in p["continuations"]) for p in prompts]
    worst = max(abs(a - b) for it, r, ok in zip(items, ref, fits) if ok for a, b in zip(it["loglik"], r))
    assert worst < 1e-3, "%s: kiln and torch disagree by %g" % (task, worst)
    n = len(items)
    k, p = statistics.median(kt_times), statistics.median(pt_times)
    print("%s: %d items, kiln %.2f s (%.0f items/s, process start included), torch %.2f s (%.0f items/s); "
          "kiln/torch %.1fx; worst |loglik diff| %.1e" % (task, n, k, n / k, p, n / p, p / k, worst))
    rows.append("| %s | %d | %.0f | %.0f | %.1fx |" % (task, n, n / k, n / p, p / k))
print("\n| task | items | kiln items/s | PyTorch (lm-eval style) items/s | kiln / PyTorch |")
print("|---|---|---|---|---|")
print("\n".join(rows))
