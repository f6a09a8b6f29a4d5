#!/usr/bin/python3
"""test_mpi_model.py KILN SRCDIR: model parallelism over MPI: tensor (parallel.tp)
and pipeline (parallel.pp) parallelism, and their layouts with data parallelism.

The tiny model of test_mpi.py, 50 steps, one thread per rank under mpirun
--oversubscribe. Tensor-parallel ranks sum partial products where one process
sums whole ones (and a tied head's gradient joins the embedding's across
stages), so runs agree to float rounding, not bit for bit.
- GPT-2 (tied embedding, learned positions, LayerNorm, GELU, biases, dropout
  0.1) on tp=2 follows the one-process run: loss at every step and validation
  loss within 1e-5 relative, final weights within 1e-5;
- Llama's variant (RoPE, RMSNorm, SwiGLU, GQA with 4 query and 2 kv heads,
  untied head, no biases) the same on tp=2, on dp=2 x tp=2 (4 ranks) and with
  ZeRO-1 over the two replicas;
- checkpoints are sharded and layout-free: the whole weights (what eval
  reads), each rank's part and a manifest; a corrupt part is refused; a tp=2
  run resumed at step 25 on tp=2 (each rank reading its part) ends bit for
  bit where the uninterrupted run ended; on 1 rank and on dp=2 it continues
  within 1e-5; a dp=2 checkpoint continues on tp=2;
- comm_bytes is the theoretical volume of the activations' all-reduces: per
  micro-batch 4 of (B,T,C) per block, 2 for the embedding and the head's input
  gradient, and the cross-entropy's row max and sum of exponentials;
- pipeline stages: GPT-2 (tied head: its copy of the embedding on the last
  stage) on pp=2, and a 4-block Llama on pp=2, tp=2 x pp=2 and dp=2 x tp=2 x
  pp=2 with ZeRO-2 (8 ranks), GPT-2 on dp=2 x pp=2 with ZeRO-2, with
  recomputation, all within 1e-5 of one
  process; a pp=2 run resumed at 25 on pp=2 bit for bit, on 1 process within
  1e-5; pp_bubble logged every step; comm_bytes on the first stage are its
  activations sent on (4 B x B*T*C per micro-batch) and the tied embedding's
  gradient sum;
- SIGTERM to a tp=2 x pp=2 job checkpoints once and exits 75, and --resume
  latest goes on;
- layouts that do not divide the heads, the kv heads, the vocabulary, the
  blocks or the ranks are refused before any step, naming the key.
Skips (exit 77) when mpirun is missing or kiln was built without MPI."""
import json
import os
import shutil
import sys
import tempfile
import time

KILN, SRC = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.join(SRC, "tests", "parity"))
sys.path.insert(0, os.path.join(SRC, "tests", "train"))
import mpiutil as mu  # noqa: E402

mu.skip_without_mpi(KILN, SRC)
W = tempfile.mkdtemp(prefix="kiln_mpi_model_")
cfg = mu.tiny_config(KILN, SRC, W)
R = mu.Runs(KILN, W, cfg)
check, pretrain, losses, close, identical = R.check, R.pretrain, R.losses, R.close, R.identical
LLAMA = ("model.pos=rope", "model.norm=rmsnorm", "model.act=swiglu", "model.bias=false", "model.tied=false",
         "model.n_kv_head=2")


def val_close(a, b, name, tol=1e-5):
    va = {r["step"]: r["val_loss"] for r in losses(a)[1] if "val_loss" in r}
    vb = {r["step"]: r["val_loss"] for r in losses(b)[1] if "val_loss" in r}
    rel = max((abs(va[s] - vb[s]) / vb[s] for s in vb), default=float("inf")) if va.keys() == vb.keys() else 1
    check(len(vb) == 2 and rel <= tol, f"{name}: validation loss within {tol:g} (rank 0's whole model)",
          f"{va} vs {vb}")


t0 = time.monotonic()
one, _ = pretrain("one")
tp2, _ = pretrain("tp2", 2, "parallel.tp=2")
close(tp2, one, "GPT-2, tp=2 vs 1 process")
val_close(tp2, one, "GPT-2, tp=2")

# the activations' all-reduces: ring volume 2(N-1)/N = 1 x the bytes on 2 ranks
N, C, L, micro = 8 * 64, 64, 2, 4
per_micro = 4 * (N * C * (4 * L + 2) + 2 * N + 1)
vol = [r["comm_bytes"] for r in losses(tp2)[1] if "comm_bytes" in r]
check(vol and all(v == micro * per_micro for v in vol),
      "tp=2: comm_bytes each step = 4 B x (B*T*C x (4 per block + 2) + 2 B*T + 1) x micro-batches",
      f"{vol[:3]} vs {micro * per_micro}")

lone, _ = pretrain("llama1", 1, *LLAMA)


def layouts(base, what, cases):
    """Runs (name, ranks, settings) and compares each with base; their directories by name."""
    out = {}
    for name, ranks, sets, label in cases:
        out[name], _ = pretrain(name, ranks, *sets)
        close(out[name], base, f"{what}, {label} vs 1 process")
    return out


runs = layouts(lone, "Llama (GQA 4/2, SwiGLU, RoPE, untied)", [
    ("llama_tp2", 2, ("parallel.tp=2", *LLAMA), "tp=2"),
    ("llama_dp2_tp2", 4, ("parallel.tp=2", *LLAMA), "dp=2 x tp=2 (4 ranks)"),
    ("llama_zero", 4, ("parallel.tp=2", "parallel.zero=1", *LLAMA), "dp=2 x tp=2 with ZeRO-1")])
ltp2 = runs["llama_tp2"]

# layout-free checkpoints
ck = os.path.join(ltp2, "ckpt-00000025")
r2, _ = pretrain("resume_tp2", 2, "parallel.tp=2", *LLAMA, resume=ck)
identical(r2, ltp2, "tp=2 resumed at 25 on tp=2 vs uninterrupted")
r1, _ = pretrain("resume_one", 1, *LLAMA, resume=ck)
close(r1, ltp2, "tp=2 resumed at 25 on 1 process")
rd, _ = pretrain("resume_dp2", 2, *LLAMA, resume=ck)
close(rd, ltp2, "tp=2 resumed at 25 on dp=2")
# the checkpoint is sharded: the whole weights for its readers, one part per
# rank (its share's weights and moments), the manifest in state.json; a part
# that does not match its sha256 is refused
ck50 = os.path.join(ltp2, "ckpt-00000050")
files = sorted(os.listdir(ck50))
check(files == ["model.safetensors", "shard-00000.safetensors", "shard-00001.safetensors", "state.json",
                "state.json.sha256"], "tp=2: the checkpoint holds the whole weights and each rank's part", str(files))
with open(os.path.join(ck50, "state.json")) as f:
    parts = json.load(f)["shards"]
check(parts["tp"] == 2 and [x["tp_rank"] for x in parts["files"]] == [0, 1] and all(x["params"] for x in parts["files"]),
      "tp=2: the manifest names each rank's part", str(parts))
bad = os.path.join(W, "corrupt")
shutil.copytree(os.path.join(ltp2, "ckpt-00000025"), bad)
with open(os.path.join(bad, "shard-00001.safetensors"), "r+b") as f:
    f.seek(-8, 2)
    x = f.read(1)
    f.seek(-8, 2)
    f.write(bytes([x[0] ^ 1]))
_, p = pretrain("from_corrupt", 2, "parallel.tp=2", *LLAMA, resume=bad, expect=2)
check("shard-00001.safetensors" in p.stderr and "sha256" in p.stderr, "tp=2: a corrupt part is refused, named",
      p.stderr[-400:])
ldp, _ = pretrain("llama_dp2", 2, *LLAMA)
rt, _ = pretrain("dp2_on_tp2", 2, "parallel.tp=2", *LLAMA, resume=os.path.join(ldp, "ckpt-00000025"))
close(rt, ldp, "dp=2 resumed at 25 on tp=2")

# pipeline stages
pp2, _ = pretrain("pp2", 2, "parallel.pp=2")
close(pp2, one, "GPT-2 (tied head), pp=2 vs 1 process")
val_close(pp2, one, "GPT-2, pp=2")
rows = losses(pp2)[1]
vol = [r["comm_bytes"] for r in rows if "comm_bytes" in r]
bub = [r["pp_bubble"] for r in rows if "pp_bubble" in r]
V = 256
check(vol and all(v == 4 * (micro * N * C + V * C) for v in vol),
      "pp=2: comm_bytes of the first stage = its activations sent on + the tied embedding's gradient sum",
      f"{vol[:3]} vs {4 * (micro * N * C + V * C)}")
check(len(bub) == 50 and all(0 <= b < 1 for b in bub), "pp=2: pp_bubble logged every step, a fraction", str(bub[:3]))
DEEP = (*LLAMA, "model.n_layer=4")
deep1, _ = pretrain("deep1", 1, *DEEP)
runs = layouts(deep1, "Llama, 4 blocks", [
    ("deep_pp2", 2, ("parallel.pp=2", *DEEP), "pp=2"),
    ("deep_tp2_pp2", 4, ("parallel.pp=2", "parallel.tp=2", *DEEP), "tp=2 x pp=2"),
    ("deep_8", 8, ("parallel.pp=2", "parallel.tp=2", "parallel.zero=2", *DEEP), "dp=2 x tp=2 x pp=2 with ZeRO-2 (8 ranks)"),
    ("deep_recompute", 2, ("parallel.pp=2", "train.recompute=true", *DEEP), "pp=2 with recomputation")])
dpp2 = runs["deep_pp2"]
layouts(one, "GPT-2 (tied head)", [("gpt2_dp2_pp2_zero2", 4, ("parallel.pp=2", "parallel.zero=2"), "dp=2 x pp=2 with ZeRO-2")])
ck = os.path.join(dpp2, "ckpt-00000025")
pr2, _ = pretrain("deep_resume_pp2", 2, "parallel.pp=2", *DEEP, resume=ck)
identical(pr2, dpp2, "pp=2 resumed at 25 on pp=2 vs uninterrupted")
pr1, _ = pretrain("deep_resume_one", 1, *DEEP, resume=ck)
close(pr1, dpp2, "pp=2 resumed at 25 on 1 process")

# SIGTERM to a tp=2 x pp=2 job: every rank stops at the same step, rank 0
# gathers the shares into one checkpoint, exit 75; --resume latest goes on
stop, rc, pids = R.sigterm("stop_tp2_pp2", 4, "parallel.tp=2", "parallel.pp=2", *DEEP)
ckpts = R.events(stop, "checkpoint")
check(rc == 75 and len(pids) == 4 and [c["detail"]["why"] for c in ckpts] == ["stop"],
      "tp=2 x pp=2: SIGTERM to the 4 ranks checkpoints once and exits 75", f"exit {rc}, {len(pids)} ranks, {ckpts}")
at = R.events(stop, "stop")[0]["step"] if R.events(stop, "stop") else 0
_, p = pretrain("stop_tp2_pp2", 4, "parallel.tp=2", "parallel.pp=2", *DEEP, f"train.steps={at + 10}",
                resume="latest")
check(p.returncode == 0 and os.path.isdir(os.path.join(stop, f"ckpt-{at + 10:08d}")),
      "tp=2 x pp=2: --resume latest goes on from the stop", p.stderr[-400:])

# layouts that cannot work: refused before any step, exit 2, the key named
for name, ranks, sets, want in [
        ("bad_heads", 3, ("parallel.tp=3",), "does not divide model.n_head = 4"),
        ("bad_kv", 4, ("parallel.tp=4", *LLAMA), "does not divide model.n_kv_head = 2"),
        ("bad_vocab", 2, ("parallel.tp=2", "model.vocab_size=257"), "does not divide model.vocab_size = 257"),
        ("bad_blocks", 3, ("parallel.pp=3",), "does not divide model.n_layer = 2"),
        ("bad_ranks", 2, ("parallel.tp=4",), "does not divide the job's 2 ranks"),
        ("bad_layout", 4, ("parallel.tp=2", "parallel.dp=1"), "make 2 ranks, but the job has 4")]:
    _, p = pretrain(name, ranks, *sets, expect=2)
    check(want in p.stderr and not os.path.exists(os.path.join(W, name, "metrics.jsonl")),
          f"{name}: refused before any step", p.stderr[-400:])

R.finish("test_mpi_model", time.monotonic() - t0)
