"""test_statesum.py KILN REPO: state.json is checksummed like the tensor files
(issue 12, item 5). Editing loader.pos or step in a checkpoint's state.json
used to resume silently from a different place; now state.json.sha256 records
its sha256, the edited checkpoint is refused naming the file, and
--resume latest falls back to the previous good checkpoint. A checkpoint of an
older kiln (no state.json.sha256) is accepted with a warning."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trainutil as tu

kiln, repo = sys.argv[1], sys.argv[2]
work = tempfile.mkdtemp(prefix="kiln-statesum-")


def run_kiln(args):
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return p.returncode, p.stdout


try:
    data = tu.byte_shards(kiln, repo, work)
    run = os.path.join(work, "run")
    keys = {"train.steps": 30, "train.checkpoint_every": 10, "train.keep_last": 0, "train.eval_every": 0,
            "train.batch_ramp_start": 0}
    subprocess.run(tu.pretrain_args(kiln, data, run, keys, ["-q"]), check=True)
    last = tu.latest(run)
    assert last.endswith("ckpt-00000030"), last
    # edit the loader position: still valid JSON, still the same tensors
    path = os.path.join(last, "state.json")
    with open(path) as f:
        text = f.read()
    st = json.loads(text)
    old = '"pos":\t%d' % st["loader"]["pos"]
    assert old in text, text[:400]
    with open(path, "w") as f:
        f.write(text.replace(old, '"pos":\t%d' % (st["loader"]["pos"] + 7)))
    # named directly: refused, naming the file
    rc, out = run_kiln(tu.pretrain_args(kiln, data, run, dict(keys, **{"train.steps": 40}), ["--resume", last]))
    assert rc != 0 and path in out and "state.json.sha256" in out, out
    # latest: falls back to ckpt-20, saying why
    rc, out = run_kiln(tu.pretrain_args(kiln, data, run, dict(keys, **{"train.steps": 40}), ["--resume", "latest"]))
    assert rc == 0, out
    assert "skipping " + last in out and "edited or corrupt" in out, out
    assert "resumed from " + os.path.join(run, "ckpt-00000020") in out, out
    # a checkpoint without state.json.sha256 (an older kiln's): accepted, with a warning
    os.remove(os.path.join(run, "ckpt-00000040", "state.json.sha256"))
    rc, out = run_kiln(tu.pretrain_args(kiln, data, run, dict(keys, **{"train.steps": 45}), ["--resume", "latest"]))
    assert rc == 0 and "accepted unchecked" in out, out
    assert "resumed from " + os.path.join(run, "ckpt-00000040") in out, out
    print("ok: an edited state.json is refused; latest falls back; an old checkpoint is accepted with a warning")
finally:
    shutil.rmtree(work, ignore_errors=True)
