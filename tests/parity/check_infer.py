#!/usr/bin/python3
"""Inference parity: kiln's KV-cache inference (infer.h, float32) against
kiln_torch.KilnGPT (PyTorch, float64) on the same fixed random weights.

For each variant, runs tests/parity/infer_dump and compares, absolute error in nats:
  lp_whole, lp_steps   per-token log p(tokens[t] | tokens[<t]) from the prompt in one
                       call and token by token, against one full torch forward
  lp_choices           summed log-probabilities of continuations scored after a shared
                       context (the cache truncated back to it for each one)
  greedy               kiln's greedy tokens: at each step torch's log-probability of
                       kiln's choice is within the tolerance of torch's best
                       (a near-tie may pick either token; a wrong step cannot hide)

    /usr/bin/python3 tests/parity/check_infer.py [--dump build/tests/infer_dump] [-v]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from kiln_torch import KilnGPT, load_safetensors  # noqa: E402

T = 40
SMALL = dict(vocab_size=96, n_embd=48, n_head=4, n_layer=3, block_size=48, init_std=0.1)
CONFIGS = {
    "gpt2": dict(pos="learned", norm="layernorm", act="gelu", bias=True, tied=True),
    "llama_gqa": dict(pos="rope", norm="rmsnorm", act="swiglu", bias=False, tied=False, n_kv_head=2),
    "gelu_erf_ln_rope_mqa_bias": dict(pos="rope", norm="layernorm", act="gelu_erf", bias=True, tied=True,
                                      n_kv_head=1, rope_theta=500.0),
    "relu_rms_learned_untied": dict(pos="learned", norm="rmsnorm", act="relu", bias=True, tied=False),
}


def kiln_args(settings):
    args = []
    for k, v in {**SMALL, **settings}.items():
        args.append(f"model.{k}={str(v).lower() if isinstance(v, bool) else v}")
    return args


def run_config(name, settings, dump_bin, tmp):
    """Returns a list of (check, max abs error)."""
    out = os.path.join(tmp, name + ".safetensors")
    cmd = [dump_bin, out, str(T)] + kiln_args(settings)
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"infer_dump failed ({p.returncode}): {' '.join(cmd)}\n{p.stdout}{p.stderr}")
    dump, meta = load_safetensors(out)
    mc = json.loads(meta["kiln.json"])["model"]
    model = KilnGPT(mc).double().eval()
    params = dict(model.named_parameters())
    missing = sorted(n for n in params if "init." + n not in dump)
    extra = sorted(k[5:] for k in dump if k.startswith("init.") and k[5:] not in params)
    if missing or extra:
        raise RuntimeError(f"weights differ: missing {missing}, unknown {extra}")
    model.load_state_dict({n: torch.from_numpy(dump["init." + n].astype(np.float64)) for n in params},
                          strict=True)
    tokens = dump["tokens"].astype(np.int64)
    ctx = int(dump["ctx"][0])

    def logprobs(seq):
        with torch.no_grad():
            logits, _ = model(torch.from_numpy(np.asarray(seq, dtype=np.int64))[None, :])
        return torch.log_softmax(logits[0], dim=-1).numpy()  # (len, V)

    lp = logprobs(tokens)
    ref = lp[np.arange(T - 1), tokens[1:]]
    res = [("lp_whole", float(np.max(np.abs(dump["lp_whole"] - ref)))),
           ("lp_steps", float(np.max(np.abs(dump["lp_steps"] - ref))))]
    errs = []
    for row, got in zip(dump["choices"], dump["lp_choices"]):
        choice = row[row >= 0].astype(np.int64)
        seq = np.concatenate([tokens[:ctx], choice])
        lpc = logprobs(seq)
        want = sum(lpc[ctx - 1 + i, choice[i]] for i in range(len(choice)))
        errs.append(abs(float(got) - want))
    res.append(("lp_choices", max(errs)))
    seq = list(tokens[:ctx])
    gaps = []
    for g in dump["greedy"].astype(np.int64):
        last = logprobs(seq)[-1]
        gaps.append(float(last.max() - last[g]))
        seq.append(int(g))
    res.append(("greedy", max(gaps)))
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dump", default=os.path.join(ROOT, "build", "tests", "infer_dump"),
                    help="infer_dump binary (default: build/tests/infer_dump)")
    ap.add_argument("--tol", type=float, default=1e-4, help="max absolute error in nats")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args()
    if not os.access(a.dump, os.X_OK):
        print(f"infer_dump not found at {a.dump} (build it, or pass --dump PATH)", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    failed = 0
    print(f"kiln inference (float32) vs PyTorch {torch.__version__} (float64), T={T}, "
          f"absolute tolerance {a.tol:g} nats")
    with tempfile.TemporaryDirectory(prefix="kiln_infer_parity_") as tmp:
        for name, settings in CONFIGS.items():
            try:
                res = run_config(name, settings, a.dump, tmp)
            except RuntimeError as e:
                failed += 1
                print(f"FAIL {name}: {e}")
                continue
            bad = [(c, e) for c, e in res if not e <= a.tol]  # NaN counts as bad
            failed += len(bad)
            print(f"{'FAIL' if bad else 'ok  '} {name:<28} " + "  ".join(f"{c} {e:.1e}" for c, e in res))
    print("all checks passed" if not failed else f"{failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
