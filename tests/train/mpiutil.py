"""mpiutil.py: the harness of the MPI training tests (test_mpi.py, test_mpi_tp.py).

Runs `kiln pretrain` on a config under mpirun --oversubscribe (one thread per
rank) or as one process, and compares runs: losses at every step and final
weights within a tolerance, or weights and moments bit for bit."""
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np

from kiln_torch import load_safetensors
import trainutil as tu

MPIRUN = ["mpirun", "--oversubscribe", "--bind-to", "none"]


def skip_without_mpi(kiln, src):
    if not shutil.which("mpirun"):
        tu.skip("mpirun not found (scripts/install-deps.sh installs openmpi-bin)")
    if "mpi: none" in subprocess.run([kiln, "env"], capture_output=True, text=True).stdout:
        tu.skip("kiln was built without MPI (libopenmpi-dev missing at build time)")
    if not os.path.isdir(tu.shared_data(src)):
        tu.skip(tu.shared_data(src) + " not found")


def environments():
    """The one-process environment and the ranks' (see below)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1",
               # shared memory without cross-process reads (CMA), which containers without
               # CAP_SYS_PTRACE refuse: copies through the shared segment work everywhere
               OMPI_MCA_btl_vader_single_copy_mechanism="none")
    # Under scripts/sanitize.sh the ranks keep ASan and UBSan but not the leak
    # check: OpenMPI's own allocations at exit (PMIx, hwloc, plugins it has already
    # unloaded, whose frames LeakSanitizer cannot name for a suppression) would
    # fail every run. kiln's code on this path is leak-checked by the one-process
    # runs here and in the other tests.
    mpi = dict(env, ASAN_OPTIONS=env["ASAN_OPTIONS"].replace("detect_leaks=1", "detect_leaks=0")) \
        if "ASAN_OPTIONS" in env else env
    return env, mpi


def tiny_config(kiln, src, w):
    """A tiny GPT-2 on Tiny Shakespeare bytes (shards in w/data), 50 steps of
    4 micro-batches of 8, checkpoints at 25 and 50: the file's path."""
    tu.byte_shards(kiln, src, w)
    cfg = os.path.join(w, "tiny.yaml")
    open(cfg, "w").write(f"""model:
  vocab_size: 256
  block_size: 64
  n_layer: 2
  n_head: 4
  n_embd: 64
  dropout: 0.1
train:
  batch_size: 8
  grad_accum: 4
  steps: 50
  lr: 1.0e-3
  warmup_steps: 5
  grad_clip: 1.0
  eval_every: 25
  eval_batches: 4
  checkpoint_every: 25
  log_every: 10
  threads: 1
data:
  train: {w}/data/train_*.bin
  val: {w}/data/val_*.bin
""")
    return cfg


class Runs:
    """Runs of one config in work directory w, and the checks on them."""

    def __init__(self, kiln, w, cfg):
        self.kiln, self.w, self.cfg = kiln, w, cfg
        self.env, self.mpi_env = environments()
        self.failures = []

    def check(self, cond, name, info=""):
        print(("ok   " if cond else "FAIL ") + name + ("" if cond else f": {info}"), flush=True)
        if not cond:
            self.failures.append(name)

    def pretrain(self, name, ranks=1, *sets, resume=None, expect=0):
        out = os.path.join(self.w, name)
        cmd = ([*MPIRUN, "-np", str(ranks)] if ranks > 1 else []) + [self.kiln, "pretrain", self.cfg, "-q", "--set",
                                                                      f"out_dir={out}"]
        for s in sets:
            cmd += ["--set", s]
        if resume:
            cmd += ["--resume", resume]
        p = subprocess.run(cmd, capture_output=True, text=True, env=self.mpi_env if ranks > 1 else self.env,
                           timeout=300)
        if p.returncode != expect:
            self.check(False, f"{name}: exit {expect}", f"exit {p.returncode}: {p.stderr[-1500:]}")
        return out, p

    def sigterm(self, name, ranks, *sets, after_bytes=2000):
        """Starts a long run on ranks, sends every rank SIGTERM once its
        metrics.jsonl has after_bytes, as a scheduler's preemption does; the
        run's directory, mpirun's exit status (None: it hung) and the pids."""
        out = os.path.join(self.w, name)
        cmd = [*MPIRUN, "-np", str(ranks), self.kiln, "pretrain", self.cfg, "-q", "--set", f"out_dir={out}", "--set",
               "train.steps=100000"]
        for s in sets:
            cmd += ["--set", s]
        p = subprocess.Popen(cmd, env=self.mpi_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        metrics = os.path.join(out, "metrics.jsonl")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (os.path.exists(metrics) and os.path.getsize(metrics) > after_bytes):
            time.sleep(0.05)
        pids = [int(x) for x in subprocess.run(["pgrep", "-f", f"^{self.kiln} pretrain .*out_dir={out}"],
                                               capture_output=True, text=True).stdout.split()]
        for pid in pids:
            os.kill(pid, signal.SIGTERM)
        try:
            rc = p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            rc = None
        return out, rc, pids

    @staticmethod
    def events(run, kind):
        return [e for e in map(json.loads, open(os.path.join(run, "metrics.jsonl"))) if e.get("event") == kind]

    @staticmethod
    def losses(run):
        rows = [json.loads(line) for line in open(os.path.join(run, "metrics.jsonl"))]
        return {r["step"]: r["loss"] for r in rows if "loss" in r}, rows

    @staticmethod
    def weights(run, step=50, what="model"):
        return load_safetensors(os.path.join(run, f"ckpt-{step:08d}", f"{what}.safetensors"))[0]

    def close(self, a, b, name, tol=1e-5):
        la, lb = self.losses(a)[0], self.losses(b)[0]  # a may be a resumed run: its steps are a tail of b's
        ok = len(la) >= 25 and la.keys() <= lb.keys()
        rel = max(abs(la[s] - lb[s]) / abs(lb[s]) for s in la) if ok else float("inf")
        self.check(ok and rel <= tol, f"{name}: loss at every step within {tol:g} relative",
                   f"max {rel:.3g}, steps {len(la)} vs {len(lb)}")
        wa, wb = self.weights(a), self.weights(b)
        dw = max(float(np.max(np.abs(wa[k] - wb[k]))) for k in wb)
        self.check(wa.keys() == wb.keys() and dw <= tol, f"{name}: final weights within {tol:g}",
                   f"max |diff| {dw:.3g}")

    @staticmethod
    def state(run, step=50):
        """A checkpoint's optimizer state: optimizer.safetensors's tensors, or a
        sharded checkpoint's parts' (file/tensor), as name -> array."""
        ck = os.path.join(run, f"ckpt-{step:08d}")
        if os.path.exists(os.path.join(ck, "optimizer.safetensors")):
            return load_safetensors(os.path.join(ck, "optimizer.safetensors"))[0]
        out = {}
        for f in sorted(glob.glob(os.path.join(ck, "shard-*.safetensors"))):
            for k, v in load_safetensors(f)[0].items():
                out[f"{os.path.basename(f)}/{k}"] = v
        return out

    def identical(self, a, b, name):
        wa, wb = self.weights(a), self.weights(b)
        same = wa.keys() == wb.keys() and all(np.array_equal(wa[k], wb[k]) for k in wb)
        oa, ob = self.state(a), self.state(b)
        same = same and len(ob) > 0 and oa.keys() == ob.keys() and all(np.array_equal(oa[k], ob[k]) for k in ob)
        self.check(same, f"{name}: final weights and moments bit for bit")

    def finish(self, test, elapsed):
        print(f"{test}: {elapsed:.0f} s")
        if self.failures:
            print(f"{len(self.failures)} failure(s): {self.failures}")
            sys.exit(1)
        shutil.rmtree(self.w, ignore_errors=True)
