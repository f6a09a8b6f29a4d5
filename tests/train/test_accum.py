"""test_accum.py KILN REPO: gradient accumulation reaches the same step as one
big batch. With the same sequences in the same order (no shuffle, no dropout),
8 sequences as 1x8, 2x4 and 4x2 (micro-batches x batch_size) give the same
loss and gradient norm at every step, to float32 summation-order noise, and
the same weights after 30 steps."""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trainutil as tu


def floats(path):
    """All tensors of a safetensors file, concatenated in header order."""
    with open(path, "rb") as f:
        raw = f.read()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    out = []
    for name in sorted(k for k in header if k != "__metadata__"):
        a, b = header[name]["data_offsets"]
        out += struct.unpack("<%df" % ((b - a) // 4), raw[8 + n + a:8 + n + b])
    return out


kiln, repo = sys.argv[1], sys.argv[2]
work = tempfile.mkdtemp(prefix="kiln-accum-")
try:
    data = tu.byte_shards(kiln, repo, work)
    runs = {}
    for accum, bs in ((1, 8), (2, 4), (4, 2)):
        run = os.path.join(work, "a%d" % accum)
        keys = {"train.grad_accum": accum, "train.batch_size": bs, "train.steps": 30, "train.batch_ramp_start": 0,
                "model.dropout": 0, "data.shuffle": "false", "train.eval_every": 0, "train.checkpoint_every": 0}
        subprocess.run(tu.pretrain_args(kiln, data, run, keys, ["-q"]), check=True)
        recs = tu.metrics(run)
        runs[accum] = (tu.series(recs, "loss"), tu.series(recs, "grad_norm"), tu.series(recs, "batch_tokens"),
                       floats(os.path.join(tu.latest(run), "model.safetensors")))
    big = runs[1]
    assert all(v == 256 for v in big[2].values())
    for accum in (2, 4):
        loss, norm, tokens, w = runs[accum]
        assert tokens == big[2], "accum %d: batch tokens differ" % accum
        worst_loss = max(abs(loss[s] - big[0][s]) / big[0][s] for s in big[0])
        worst_norm = max(abs(norm[s] - big[1][s]) / big[1][s] for s in big[1])
        assert abs(loss[1] - big[0][1]) < 1e-6 * big[0][1], (loss[1], big[0][1])
        assert worst_loss < 1e-4 and worst_norm < 1e-3, (accum, worst_loss, worst_norm)
        scale = max(abs(x) for x in big[3])
        worst_w = max(abs(a - b) for a, b in zip(w, big[3])) / scale
        assert len(w) == len(big[3]) and worst_w < 1e-4, (accum, worst_w)
        print("%d micro-batches of %d: loss within %.1e, grad norm within %.1e, weights within %.1e of 1x8" % (
            accum, 8 // accum, worst_loss, worst_norm, worst_w))
    # a different split of the data must NOT match: the test can tell batches apart
    run = os.path.join(work, "other")
    subprocess.run(tu.pretrain_args(kiln, data, run, {"train.grad_accum": 1, "train.batch_size": 8, "train.steps": 30,
                                                      "train.batch_ramp_start": 0, "model.dropout": 0,
                                                      "data.shuffle": "true", "train.eval_every": 0}, ["-q"]), check=True)
    other = tu.series(tu.metrics(run), "loss")
    assert max(abs(other[s] - big[0][s]) / big[0][s] for s in big[0]) > 1e-3
finally:
    shutil.rmtree(work, ignore_errors=True)
print("ok")
