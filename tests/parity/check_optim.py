#!/usr/bin/python3
"""Optimizer and LR-schedule parity: kiln (C, float32) against PyTorch (float64).

Optimizers (tests/parity/optim_dump step): from the same initial weights and the
same gradients, N steps of
  adamw  torch.optim.AdamW              sgd  torch.optim.SGD (momentum, dampening 0,
  lion   the Lion formula (Chen et al.       optional nesterov, weight_decay coupled)
         2023, as lion-pytorch), below
with torch.nn.utils.clip_grad_norm_ before each step, kiln's two parameter groups
(decayed / not decayed), L1/L2 penalties as a loss term whose gradient is added
after clipping, and a live optimizer swap (state reset). Two metrics per tensor:
  final.<name>  max|kiln - torch| / max|torch|            <= --tol (1e-6)
  moved.<name>  max|kiln - torch| / max|torch - initial|  <= --move-tol (1e-4)
The second is the error relative to how far the weights moved (the learning rates
are large so that they move by percents): float32 weights of ~1 round by ~1e-7 per
step, so it cannot be much smaller, but a wrong term in an update shows far above it.
penalty_value (the logged penalty) is checked against the same sum in float64.

Schedules (optim_dump lr): kiln's lr_at over a whole run against
torch.optim.lr_scheduler: LinearLR warmup + CosineAnnealingLR / LinearLR / StepLR
through SequentialLR, and LambdaLR for inv_sqrt and wsd written from their
definitions. Metric: max relative error over the run, must be <= 1e-6.

    /usr/bin/python3 tests/parity/check_optim.py [--dump build/tests/optim_dump] [-v]
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import warnings

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from kiln_torch import decays, load_safetensors  # noqa: E402

STEPS = 6
# name: key=value settings for optim_dump. The learning rates are large so that the
# weights (std 0.5) move by percents and an error in an update formula shows far above
# float32 rounding. grad_clip 1 clips every step (the made-up gradients have norm ~30).
COMMON = {"train.lr": 0.02, "train.grad_clip": 1.0}
OPT_CONFIGS = {
    "adamw": {"train.optimizer": "adamw", "train.weight_decay": 0.5, "train.eps": 1e-6},
    "adamw_decay_emb_untied_noclip": {"train.optimizer": "adamw", "train.weight_decay": 0.3,
                                      "train.decay_embeddings": "true", "model.tied": "false",
                                      "train.grad_clip": 0, "train.beta2": 0.99},
    "sgd_momentum": {"train.optimizer": "sgd", "train.momentum": 0.9, "train.weight_decay": 0.5,
                     "train.lr": 0.3},
    "sgd_nesterov": {"train.optimizer": "sgd", "train.momentum": 0.8, "train.nesterov": "true",
                     "train.weight_decay": 0.2, "train.lr": 0.3},
    "sgd_plain": {"train.optimizer": "sgd", "train.momentum": 0, "train.weight_decay": 0.1,
                  "train.lr": 0.5},
    "lion": {"train.optimizer": "lion", "train.beta1": 0.9, "train.beta2": 0.99,
             "train.weight_decay": 1.0, "train.lr": 0.01},
    # penalties: the loss gains l1*sum|w| + l2/2*sum w^2 over the decayed tensors
    "adamw_l1_l2_noclip": {"train.optimizer": "adamw", "train.weight_decay": 0.1, "train.l1": 0.3,
                           "train.l2": 0.7, "train.grad_clip": 0, "train.eps": 1e-6},
    "sgd_l1_l2_clip": {"train.optimizer": "sgd", "train.weight_decay": 0.1, "train.l1": 0.05,
                       "train.l2": 0.2, "train.lr": 0.3},
    "lion_l1_l2": {"train.optimizer": "lion", "train.beta2": 0.99, "train.weight_decay": 0.5,
                   "train.l1": 0.5, "train.l2": 2.0, "train.lr": 0.01},
    # live swaps: the state is reset and the new optimizer starts at opt_step 1
    "swap_adamw_to_sgd": {"train.optimizer": "adamw", "train.weight_decay": 0.3, "train.eps": 1e-6,
                          "swap_at": 4, "swap_to": "sgd"},
    "swap_sgd_to_adamw": {"train.optimizer": "sgd", "train.weight_decay": 0.3, "train.eps": 1e-6,
                          "train.lr": 0.3, "swap_at": 3, "swap_to": "adamw"},
    "reset_adamw": {"train.optimizer": "adamw", "train.weight_decay": 0.3, "train.eps": 1e-6,
                    "swap_at": 4, "swap_to": "adamw"},
    "swap_adamw_to_lion": {"train.optimizer": "adamw", "train.weight_decay": 0.3, "train.eps": 1e-6,
                           "train.beta2": 0.99, "swap_at": 3, "swap_to": "lion"},
}


class Lion(torch.optim.Optimizer):
    """Lion from its definition (Chen et al. 2023, Algorithm 2; lion-pytorch):
    w -= lr*wd*w; w -= lr*sign(b1*m + (1-b1)*g); m = b2*m + (1-b2)*g.
    Records the smallest |c| / (|b1*m| + |(1-b1)*g|), c = b1*m + (1-b1)*g, it took the
    sign of (min_margin): float32 rounding flips a sign only where that is ~1e-7."""

    def __init__(self, params, lr, betas, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, betas=betas, weight_decay=weight_decay))
        self.min_margin = math.inf

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                g = p.grad
                m = self.state[p].setdefault("exp_avg", torch.zeros_like(p))
                p.mul_(1 - group["lr"] * group["weight_decay"])
                c = m * b1 + g * (1 - b1)
                size = (m * b1).abs() + (g * (1 - b1)).abs()
                self.min_margin = min(self.min_margin, float((c.abs() / size).min()))
                p.add_(torch.sign(c), alpha=-group["lr"])
                m.mul_(b2).add_(g, alpha=1 - b2)


def make_optimizer(name, groups, js, lr):
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=(js["beta1"], js["beta2"]), eps=js["eps"])
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=js["momentum"], dampening=0,
                               nesterov=js["nesterov"])
    return Lion(groups, lr=lr, betas=(js["beta1"], js["beta2"]))


def run_optimizer(name, settings, dump_bin, tmp):
    """Returns (results [(tensor, error)], notes) or raises RuntimeError."""
    out = os.path.join(tmp, name + ".safetensors")
    args = [f"{k}={v}" for k, v in {**COMMON, **settings}.items()]
    cmd = [dump_bin, "step", out, str(STEPS)] + args
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"optim_dump failed ({p.returncode}): {' '.join(cmd)}\n{p.stdout}{p.stderr}")
    dump, meta = load_safetensors(out)
    js = json.loads(meta["kiln.json"])
    names = sorted(n[len("init."):] for n in dump if n.startswith("init."))
    if not names or any("final." + n not in dump for n in names):
        raise RuntimeError("dump lacks init./final. tensors")
    params = {n: torch.tensor(dump["init." + n], dtype=torch.float64, requires_grad=True) for n in names}
    init = {n: p.detach().clone() for n, p in params.items()}
    decayed = [params[n] for n in names if decays(n, js["decay_embeddings"])]
    others = [params[n] for n in names if not decays(n, js["decay_embeddings"])]
    if not decayed or not others:
        raise RuntimeError("expected both decayed and non-decayed tensors")

    def penalty():
        return sum(js["l1"] * p.abs().sum() + 0.5 * js["l2"] * (p * p).sum() for p in decayed)

    notes = []
    pen_torch = float(penalty())
    pen_kiln = float(js["penalty"])
    results = [("penalty_value", abs(pen_kiln - pen_torch) / max(abs(pen_torch), 1e-12))]

    lrs = dump["lr"].astype(np.float64)
    kind, opt = js["optimizer"], None
    margins = []
    for step in range(1, STEPS + 1):
        if step == js["swap_at"]:
            kind, opt = js["swap_to"], None
        if opt is None:
            # SGD's weight_decay is coupled (added to the gradient), AdamW's and Lion's decoupled;
            # all three take it per group, on the decayed tensors only
            opt = make_optimizer(kind, [dict(params=decayed, weight_decay=js["weight_decay"]),
                                        dict(params=others, weight_decay=0.0)], js, lrs[0])
        for g in opt.param_groups:
            g["lr"] = float(lrs[step - 1])
        for n, p in params.items():
            p.grad = torch.tensor(dump[f"grad{step}." + n], dtype=torch.float64)
        if js["grad_clip"] > 0:
            torch.nn.utils.clip_grad_norm_(list(params.values()), js["grad_clip"])
        if js["l1"] or js["l2"]:  # the penalty in the loss, its gradient added after clipping
            penalty().backward()
        opt.step()
        if isinstance(opt, Lion):
            margins.append(opt.min_margin)
    if margins:
        # a sign taken of a value within float32 rounding of 0 could flip: the data must avoid it
        notes.append(f"Lion's sign margin {min(margins):.1e}")
        if min(margins) < 1e-5:
            raise RuntimeError(f"Lion's sign argument came within {min(margins):.2e} (relative) of 0: "
                               "float32 rounding may flip it; change train.seed")
    for n, p in params.items():
        moved = float((p.detach() - init[n]).abs().max())
        diff = float(np.max(np.abs(dump["final." + n].astype(np.float64) - p.detach().numpy())))
        results.append(("final." + n, diff / max(float(p.detach().abs().max()), 1e-12)))
        results.append(("moved." + n, diff / max(moved, 1e-12)))
    return results, notes


def torch_lrs(steps, w, sched_list, milestones, base):
    """The lr torch's schedulers give each step (read before that step's scheduler.step())."""
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=base)
    S = torch.optim.lr_scheduler
    scheds = [f(opt) for f in sched_list]
    sch = scheds[0] if len(scheds) == 1 else S.SequentialLR(opt, scheds, milestones=milestones)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sch.step()
    return out


def schedule_cases():
    """name -> (kiln settings, torch lr list builder). lr 3e-3 throughout."""
    S = torch.optim.lr_scheduler
    lr = 3e-3

    def warm(w):
        return lambda o: S.LinearLR(o, start_factor=1 / (w + 1), end_factor=1.0, total_iters=w)

    def inv_sqrt(w):  # fairseq's inverse_sqrt after nanoGPT's (s+1)/(w+1) warmup
        W = max(w, 1)
        return lambda s: (s + 1) / (w + 1) if s < w else math.sqrt(W / (s - w + W))

    def wsd(w, decay_steps, frac, floor):  # MiniCPM's warmup-stable-decay with a linear decay
        def f(s):
            if s < w:
                return (s + 1) / (w + 1)
            done = min((s - w) / (decay_steps - w), 1.0)
            start = 1 - frac
            return 1.0 if done <= start else 1 - (done - start) / frac * (1 - floor)
        return f

    cases = {
        # warmup 10, cosine to min_lr at the end of the run (steps 300)
        "cosine": (dict(schedule="cosine", warmup_steps=10, steps=300, min_lr=3e-4),
                   lambda: torch_lrs(300, 10, [warm(10), lambda o: S.CosineAnnealingLR(o, T_max=290, eta_min=3e-4)],
                                     [10], lr)),
        # decay ends at 200 of 300: the floor holds after it (ConstantLR at min_lr/lr)
        "cosine_decay_steps_floor": (
            dict(schedule="cosine", warmup_steps=25, steps=300, decay_steps=200, min_lr=6e-4),
            lambda: torch_lrs(300, 25, [warm(25), lambda o: S.CosineAnnealingLR(o, T_max=175, eta_min=6e-4),
                                        lambda o: S.ConstantLR(o, factor=0.2, total_iters=10**9)], [25, 200], lr)),
        "cosine_no_warmup": (dict(schedule="cosine", warmup_steps=0, steps=250, min_lr=0),
                             lambda: torch_lrs(250, 0, [lambda o: S.CosineAnnealingLR(o, T_max=250, eta_min=0)],
                                               [], lr)),
        "linear": (dict(schedule="linear", warmup_steps=20, steps=220, min_lr=3e-5),
                   lambda: torch_lrs(220, 20, [warm(20), lambda o: S.LinearLR(o, start_factor=1.0, end_factor=0.01,
                                                                              total_iters=200)], [20], lr)),
        "step": (dict(schedule="step", warmup_steps=5, steps=400, step_every=60, step_factor=0.5, min_lr=0),
                 lambda: torch_lrs(400, 5, [warm(5), lambda o: S.StepLR(o, step_size=60, gamma=0.5)], [5], lr)),
        "inv_sqrt": (dict(schedule="inv_sqrt", warmup_steps=40, steps=500, min_lr=0),
                     lambda: torch_lrs(500, 40, [lambda o: S.LambdaLR(o, inv_sqrt(40))], [], lr)),
        "wsd": (dict(schedule="wsd", warmup_steps=30, steps=330, wsd_decay_frac=0.25, min_lr=3e-4),
                lambda: torch_lrs(330, 30, [lambda o: S.LambdaLR(o, wsd(30, 330, 0.25, 0.1))], [], lr)),
        "constant": (dict(schedule="constant", warmup_steps=15, steps=100, min_lr=0),
                     lambda: torch_lrs(100, 15, [warm(15)], [], lr)),
    }
    return lr, cases


def run_schedule(name, settings, build, lr, dump_bin):
    args = [f"train.lr={lr}"] + [f"train.{k}={v}" for k, v in settings.items()]
    p = subprocess.run([dump_bin, "lr"] + args, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"optim_dump lr failed: {p.stderr}")
    kiln = [float(line.split()[1]) for line in p.stdout.splitlines()]
    ref = build()
    if len(kiln) != len(ref):
        raise RuntimeError(f"{len(kiln)} kiln steps, {len(ref)} torch steps")
    errs = [abs(k - r) / max(abs(r), 1e-12) for k, r in zip(kiln, ref)]
    worst = int(np.argmax(errs))
    return errs[worst], worst, kiln[worst], ref[worst]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dump", default=os.path.join(ROOT, "build", "tests", "optim_dump"),
                    help="optim_dump binary (default: build/tests/optim_dump)")
    ap.add_argument("--tol", type=float, default=1e-6,
                    help="optimizers: max error relative to the largest weight, per tensor")
    ap.add_argument("--move-tol", type=float, default=1e-4,
                    help="optimizers: max error relative to the largest movement of a weight, per tensor")
    ap.add_argument("--lr-tol", type=float, default=1e-6, help="schedules: max relative error")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every tensor's error")
    a = ap.parse_args()
    if not os.access(a.dump, os.X_OK):
        print(f"optim_dump not found at {a.dump} (build it, or pass --dump PATH)", file=sys.stderr)
        return 2
    warnings.simplefilter("ignore")  # SequentialLR's deprecation chatter
    torch.set_num_threads(1)
    failed = passed = 0
    print(f"optimizers: kiln (float32) vs PyTorch {torch.__version__} (float64), {STEPS} steps, "
          f"tolerance {a.tol:g} of the weights and {a.move_tol:g} of their movement")
    with tempfile.TemporaryDirectory(prefix="kiln_optim_") as tmp:
        for name, settings in OPT_CONFIGS.items():
            try:
                results, notes = run_optimizer(name, settings, a.dump, tmp)
            except RuntimeError as e:
                failed += 1
                print(f"FAIL {name}: {e}")
                continue
            bad = [(t, e) for t, e in results if not e <= (a.move_tol if t.startswith("moved.") else a.tol)]
            passed += len(results) - len(bad)
            failed += len(bad)
            def worst(prefix):
                r = [e for t, e in results if t.startswith(prefix)]
                return max(r, key=lambda e: e if e == e else math.inf)
            print(f"{'FAIL' if bad else 'ok  '} {name:<30} {len(results):3d} values, worst of weights "
                  f"{worst('final.'):.1e}, of movement {worst('moved.'):.1e}"
                  f"{'; ' + '; '.join(notes) if notes else ''}")
            for t, e in (results if a.verbose else bad):
                print(f"       {t}: {e:.3e}")
    print(f"schedules: kiln lr_at vs torch.optim.lr_scheduler, tolerance {a.lr_tol:g} relative")
    lr, cases = schedule_cases()
    for name, (settings, build) in cases.items():
        try:
            err, step, k, r = run_schedule(name, settings, build, lr, a.dump)
        except RuntimeError as e:
            failed += 1
            print(f"FAIL {name}: {e}")
            continue
        ok = err <= a.lr_tol
        passed += ok
        failed += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {name:<32} worst step {step}: kiln {k:.9g} torch {r:.9g} ({err:.2e})")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
