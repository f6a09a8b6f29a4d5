"""test_nonfinite.py KILN REPO: a step whose loss or gradient norm is not
finite (issue 12, item 3). With train.lr=1e4 and no clipping the weights blow
up within a few steps; with a checkpoint every step the old trainer applied the
NaN update and checkpointed it, so RUN/latest named NaN weights that passed
their checksum and every resume died. Now such a step is a spike even with the
z checks off: its update is not applied, the run rolls back to its newest good
checkpoint, and no checkpoint ever holds a non-finite value."""
import array
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trainutil as tu

kiln, repo = sys.argv[1], sys.argv[2]
work = tempfile.mkdtemp(prefix="kiln-nonfinite-")


def finite(path):
    """1 when every float32 tensor of a safetensors file is finite."""
    with open(path, "rb") as f:
        raw = f.read()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        x = array.array("f")
        x.frombytes(raw[8 + n + a:8 + n + b])
        if not all(math.isfinite(v) for v in x):
            return False
    return True


try:
    data = tu.byte_shards(kiln, repo, work)
    run = os.path.join(work, "run")
    keys = {"train.lr": 1e4, "train.min_lr": 1e4, "train.grad_clip": 0, "train.checkpoint_every": 1,
            "train.warmup_steps": 0, "train.steps": 12, "train.keep_last": 0, "train.eval_every": 0}
    p = subprocess.run(tu.pretrain_args(kiln, data, run, keys, ["-q"]), stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    out = p.stdout
    ckpts = sorted(d for d in os.listdir(run) if d.startswith("ckpt-"))
    assert ckpts, "no checkpoint written:\n" + out
    for d in ckpts:
        for f in ("model.safetensors", "optimizer.safetensors"):
            assert finite(os.path.join(run, d, f)), "%s/%s holds a non-finite value:\n%s" % (d, f, out)
    # every step diverges again, so after train.spike_max rollbacks the run gives up, cleanly
    assert p.returncode != 0 and "spike_max" in out, out
    # the non-finite steps were handled as spikes, not trained on
    spikes = tu.events(tu.metrics(run), "spike")
    assert spikes, "no spike recorded:\n" + out
    assert all("finite" in s["detail"]["why"] for s in spikes), spikes
    # RUN/latest names a checkpoint that verifies, and a resume loads it (and judges its steps again)
    r = subprocess.run(tu.pretrain_args(kiln, data, run, keys, ["-q", "--resume", "latest"]),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert "spike_max" in r.stdout, "resume from latest:\n" + r.stdout
    print("ok: %d checkpoints, all finite; %d non-finite steps handled as spikes" % (len(ckpts), len(spikes)))
finally:
    shutil.rmtree(work, ignore_errors=True)
