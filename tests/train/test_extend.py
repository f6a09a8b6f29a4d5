"""test_extend.py KILN REPO: `--resume latest --set train.steps=N` after a
finished run (issue 12). The default (train.extend: constant) keeps training at
the learning rate the run ended at, where the schedule re-planned over N steps
used to climb back up the cosine; `decay` holds it and then decays the
extension's end to min_lr; `stretch` is the old re-planning. Each says at
resume what happens to the learning rate, and a killed extension resumes to
the same weights as an uninterrupted one."""
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trainutil as tu

kiln, repo = sys.argv[1], sys.argv[2]
work = tempfile.mkdtemp(prefix="kiln-extend-")
KEYS = {"train.steps": 40, "train.warmup_steps": 4, "train.min_lr": 3e-4, "train.lr": 3e-3,
        "train.batch_ramp_start": 0, "train.eval_every": 0, "train.log_every": 10, "train.checkpoint_every": 10,
        "train.keep_last": 0}


def run(out, keys, extra=()):
    k = dict(KEYS)
    k.update(keys)
    p = subprocess.run(tu.pretrain_args(kiln, data, out, k, extra), capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout + p.stderr


def tensors(path):
    """The tensor bytes of a safetensors file (its header names the run directory)."""
    with open(path, "rb") as f:
        b = f.read()
    return b[8 + int.from_bytes(b[:8], "little"):]


def lrs(out):
    return tu.series(tu.metrics(out), "lr")


try:
    data = tu.byte_shards(kiln, repo, work)
    first = os.path.join(work, "first")
    run(first, {})
    final = lrs(first)[40]
    assert final < 3.1e-4, final  # the cosine ended at the floor

    # constant (the default): steps 41..60 at the final lr, and the line says so
    const = os.path.join(work, "const")
    shutil.copytree(first, const)
    log = run(const, {"train.steps": 60}, ["--resume", "latest"])
    assert re.search(r"extending 40 -> 60 steps \(train.extend: constant\): the lr stays at its final", log), log
    lr = lrs(const)
    assert all(abs(lr[s] - final) <= 1e-9 * final for s in range(41, 61)), [lr[s] for s in range(41, 61)]
    # a checkpoint of the extension keeps it: resuming from step 50 reproduces step 60 bit for bit
    again = os.path.join(work, "again")
    shutil.copytree(const, again)
    shutil.rmtree(os.path.join(again, "ckpt-00000060"))
    with open(os.path.join(again, "latest"), "w") as f:
        f.write("ckpt-00000050\n")
    run(again, {"train.steps": 60}, ["--resume", "latest"])
    assert tensors(os.path.join(const, "ckpt-00000060", "model.safetensors")) == \
        tensors(os.path.join(again, "ckpt-00000060", "model.safetensors")), "extension does not resume exactly"
    assert abs(lrs(again)[60] - final) <= 1e-9 * final

    # decay, to a lower min_lr: flat for the first 80% of the extension, then linear down
    dec = os.path.join(work, "decay")
    shutil.copytree(first, dec)
    log = run(dec, {"train.steps": 60, "train.extend": "decay", "train.min_lr": 3e-5}, ["--resume", "latest"])
    assert "train.extend: decay" in log, log
    lr = lrs(dec)
    assert abs(lr[50] - final) <= 1e-9 * final and lr[56] == lr[41] and lr[60] < lr[58] < final and lr[60] >= 3e-5, lr

    # stretch: the old re-planning, which raises the lr, said as such
    st = os.path.join(work, "stretch")
    shutil.copytree(first, st)
    log = run(st, {"train.steps": 60, "train.extend": "stretch"}, ["--resume", "latest"])
    assert "re-planned over 60 steps" in log, log
    assert lrs(st)[41] > 2 * final, lrs(st)[41]
    print("extension: constant at %.3g, decay to %.3g, stretch up to %.3g" % (final, lrs(dec)[60], lrs(st)[41]))
finally:
    shutil.rmtree(work, ignore_errors=True)
