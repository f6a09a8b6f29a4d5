#!/usr/bin/python3
"""Parity test: kiln (C, float32) against kiln_torch.KilnGPT (PyTorch, float64).

For each model variant, runs tests/parity/parity_dump (kiln on one fixed batch),
loads its initial weights into KilnGPT in float64 and compares:
  logits, loss            plain forward of the initial weights
  grad.<name>             gradients of the first training step
  step3.<name>            weights after 3 steps (zero grad, forward, backward,
                          clip_grad_norm_, AdamW with kiln's param groups)
Metric per tensor: max|kiln - torch| / max(max|torch|, 1e-6), must be <= --tol.
A tensor present on one side only is a failure.

    /usr/bin/python3 tests/parity/check_parity.py [--dump build/tests/parity_dump] [-v]
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
from kiln_torch import KilnGPT, load_safetensors, param_groups  # noqa: E402

SMALL = dict(vocab_size=96, n_embd=32, n_head=4, n_layer=2, block_size=16)
B, T = 2, 12
# AdamW's update is lr * m / (sqrt(v) + eps): for a gradient element near zero it
# amplifies absolute gradient error by up to lr/eps. kiln's default eps=1e-8 turns
# float32 rounding (~1e-10 on near-zero gradients) into step3 errors of 1e-4..2e-3
# relative (measured over init seeds), i.e. the comparison would test float32 noise,
# not the math. eps=1e-5 keeps step3 as well conditioned as the gradients, and is
# still comparable to many gradient elements, so eps's place in the formula is tested.
# weight_decay=0.5 (parity_dump's default is 0.1) makes decay on a wrong tensor move
# it by 1.5e-3 relative in 3 steps, well above the tolerance.
TRAIN = {"train.eps": 1e-5, "train.weight_decay": 0.5}

# name: kiln settings (key=value for parity_dump) on top of SMALL and TRAIN.
# init_std: at kiln's default 0.02 pre-activations are so small that tanh-GELU and
# erf-GELU differ by < 1e-4, so the RoPE configs use 0.1 (which also makes attention
# far from uniform). Configs with learned positions and biases keep 0.02: there the
# gradient of k_proj.bias is exactly zero (a bias on k adds q.b to a whole score row,
# which softmax ignores), so kiln's value is pure float32 noise measured against the
# 1e-6 floor, and that noise grows with the weights (2e-3 at init_std 0.1).
CONFIGS = {
    "gpt2": dict(pos="learned", norm="layernorm", act="gelu", bias=True, tied=True),
    "llama": dict(pos="rope", norm="rmsnorm", act="swiglu", bias=False, tied=False, n_kv_head=2,
                  init_std=0.1),
    "relu_rms_learned_untied_bias": dict(pos="learned", norm="rmsnorm", act="relu", bias=True,
                                         tied=False, **{"train.decay_embeddings": True}),
    "gelu_erf_ln_rope_tied_mqa": dict(pos="rope", norm="layernorm", act="gelu_erf", bias=True,
                                      tied=True, n_kv_head=1, init_std=0.1),
    "swiglu_ln_learned_bias_ffn40": dict(pos="learned", norm="layernorm", act="swiglu", bias=True,
                                         tied=True, n_kv_head=2, ffn_hidden=40, norm_eps=1e-3,
                                         **{"train.decay_embeddings": True}),
    "gelu_ln_nobias_rope_untied": dict(pos="rope", norm="layernorm", act="gelu", bias=False,
                                       tied=False, rope_theta=500.0, init_std=0.1),
}


def kiln_args(settings):
    args = []
    for k, v in {**SMALL, **TRAIN, **settings}.items():
        key = k if "." in k else "model." + k
        args.append(f"{key}={str(v).lower() if isinstance(v, bool) else v}")
    return args


def rel_err(kiln, ref):
    kiln = np.asarray(kiln, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if kiln.shape != ref.shape:
        return float("inf")
    if kiln.size == 0:
        return 0.0
    return float(np.max(np.abs(kiln - ref)) / max(float(np.max(np.abs(ref))), 1e-6))


def check_names(dump, model_shapes):
    """Every dump tensor must be one this test compares, and init./grad./step3. must each
    carry exactly the torch model's parameters, with the same shapes. Returns the problems."""
    problems = []
    fixed = {"tokens", "targets", "logits", "loss"}
    prefixes = ("init.", "grad.", "step3.")
    for name in sorted(fixed - set(dump)):
        problems.append(f"dump lacks '{name}'")
    for name in sorted(dump):
        if name not in fixed and not name.startswith(prefixes):
            problems.append(f"dump tensor '{name}' is not checked by this test")
    in_dump = {}  # parameter name -> prefixes it has in the dump
    for name in dump:
        for pre in prefixes:
            if name.startswith(pre):
                in_dump.setdefault(name[len(pre):], []).append(pre[:-1])
    for name in sorted(set(in_dump) - set(model_shapes)):
        problems.append(f"dump tensor '{name}' ({'/'.join(in_dump[name])}) has no counterpart in the torch model")
    for name, shape in sorted(model_shapes.items()):
        missing = [pre[:-1] for pre in prefixes if pre + name not in dump]
        if missing:
            problems.append(f"torch parameter '{name}' is missing from the dump ({'/'.join(missing)})")
        for pre in prefixes:
            if pre + name in dump and dump[pre + name].shape != shape:
                problems.append(f"'{pre}{name}' has shape {list(dump[pre + name].shape)}, torch {list(shape)}")
    return problems


def run_config(name, settings, dump_bin, tmp, verbose):
    """Returns (list of (tensor, error)) or raises RuntimeError for a structural failure."""
    out = os.path.join(tmp, name + ".safetensors")
    cmd = [dump_bin, out, str(B), str(T)] + kiln_args(settings)
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"parity_dump failed ({p.returncode}): {' '.join(cmd)}\n{p.stdout}{p.stderr}")
    dump, meta = load_safetensors(out)
    js = json.loads(meta["kiln.json"])
    mc, tc = js["model"], js["train"]
    assert (js["B"], js["T"]) == (B, T)

    model = KilnGPT(mc).double()
    params = dict(model.named_parameters())
    problems = check_names(dump, {n: tuple(p.shape) for n, p in params.items()})
    if set(model.state_dict()) != set(params):
        problems.append("torch state_dict keys differ from its parameter names: "
                        f"{sorted(set(model.state_dict()) ^ set(params))}")
    if problems:
        raise RuntimeError("tensor names/shapes do not match:\n  " + "\n  ".join(problems))

    model.load_state_dict({n: torch.from_numpy(dump["init." + n].astype(np.float64)) for n in params},
                          strict=True)
    tokens = torch.from_numpy(dump["tokens"]).long()
    targets = torch.from_numpy(dump["targets"]).long()
    results = []

    model.eval()  # plain forward (kiln's dropout is 0 in these configs anyway)
    with torch.no_grad():
        logits, loss = model(tokens, targets)
    results.append(("logits", rel_err(dump["logits"], logits.numpy())))
    results.append(("loss", rel_err(dump["loss"], loss.reshape(1).numpy())))

    model.train()
    opt = torch.optim.AdamW(param_groups(model, mc, weight_decay=tc["weight_decay"],
                                         decay_embeddings=tc["decay_embeddings"]),
                            lr=tc["lr"], betas=(tc["beta1"], tc["beta2"]), eps=tc["eps"])
    for step in range(1, 4):
        opt.zero_grad(set_to_none=False)
        _, loss = model(tokens, targets)
        loss.backward()
        if step == 1:
            for n, p in params.items():
                g = p.grad if p.grad is not None else torch.zeros_like(p)
                results.append(("grad." + n, rel_err(dump["grad." + n], g.numpy())))
        if tc["grad_clip"] > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), tc["grad_clip"])
        opt.step()
    for n, p in params.items():
        results.append(("step3." + n, rel_err(dump["step3." + n], p.detach().numpy())))
    if verbose:
        for t, e in results:
            print(f"    {t:<55} {e:.3e}")
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dump", default=os.path.join(ROOT, "build", "tests", "parity_dump"),
                    help="parity_dump binary (default: build/tests/parity_dump)")
    ap.add_argument("--tol", type=float, default=1e-4, help="max relative error per tensor")
    ap.add_argument("--configs", help="comma-separated subset of: " + ",".join(CONFIGS))
    ap.add_argument("-v", "--verbose", action="store_true", help="print every tensor's error")
    a = ap.parse_args()
    if not os.access(a.dump, os.X_OK):
        print(f"parity_dump not found at {a.dump} (build it, or pass --dump PATH)", file=sys.stderr)
        return 2
    names = a.configs.split(",") if a.configs else list(CONFIGS)
    for n in names:
        if n not in CONFIGS:
            print(f"unknown config '{n}'; known: {', '.join(CONFIGS)}", file=sys.stderr)
            return 2
    torch.set_num_threads(1)
    passed = failed = 0
    print(f"kiln (float32) vs PyTorch {torch.__version__} (float64), B={B} T={T}, "
          f"{' '.join(f'{k}={v}' for k, v in TRAIN.items())}, max relative error tolerance {a.tol:g}")
    with tempfile.TemporaryDirectory(prefix="kiln_parity_") as tmp:
        for name in names:
            try:
                results = run_config(name, CONFIGS[name], a.dump, tmp, a.verbose)
            except RuntimeError as e:
                failed += 1
                print(f"FAIL {name}: {e}")
                continue
            bad = [(t, e) for t, e in results if not e <= a.tol]  # NaN counts as bad
            passed += len(results) - len(bad)
            failed += len(bad)
            worst = max(results, key=lambda r: r[1] if r[1] == r[1] else float("inf"))
            print(f"{'FAIL' if bad else 'ok  '} {name:<30} {len(results):3d} tensors, "
                  f"worst {worst[0]} {worst[1]:.2e}")
            for t, e in bad:
                print(f"       {t}: {e:.3e} > {a.tol:g}")
    print("counting tensors (a config whose dump or tensor names are wrong counts as one failure)")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
