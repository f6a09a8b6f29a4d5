"""test_kernels.py KILN REPO: which sgemm runs the linear layers' products
(train.sgemm, issue 13). auto races OpenBLAS's and oneDNN's sgemm per product
class on the model's shapes once per machine and keeps the verdict in a cache
file (KILN_CACHE_DIR): the first run races and writes it, the next reads it,
both record it in config.yaml and train the same weights bit for bit. Either
library forced gives the same losses to float precision. A resumed run keeps
its checkpoint's choice even when the cache is gone, bit for bit. A cache file
that is not a verdict is raced over, never trusted."""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import trainutil as tu

kiln, repo = sys.argv[1], sys.argv[2]
work = tempfile.mkdtemp(prefix="kiln_kernels_")
data = tu.byte_shards(kiln, repo, work)
cache = os.path.join(work, "cache")
env = dict(os.environ, KILN_CACHE_DIR=cache)
KEYS = {"train.steps": 6, "train.log_every": 2, "train.checkpoint_every": 3, "train.keep_last": 0,
        "train.eval_every": 0, "model.n_layer": 2, "model.n_embd": 64, "model.n_head": 4,
        "train.batch_ramp_start": 0, "train.threads": 2, "train.warmup_steps": 2}
if "oneDNN" not in subprocess.run([kiln, "env"], capture_output=True, text=True).stdout:
    tu.skip("this kiln has no oneDNN: train.sgemm auto is OpenBLAS without a race")


def train(name, keys=None, extra=()):
    run = os.path.join(work, name)
    out = subprocess.run(tu.pretrain_args(kiln, data, run, dict(KEYS, **(keys or {})), list(extra)),
                         capture_output=True, text=True, env=env)
    text = out.stdout + out.stderr
    assert out.returncode == 0, text
    line = re.search(r"^sgemm: (\S+) for the forward, input-gradient and weight-gradient products: (.*)$", text, re.M)
    assert line, text
    cfg = re.search(r"^  sgemm: (\S+)$", open(os.path.join(run, "config.yaml")).read(), re.M).group(1)
    assert cfg == line.group(1), (cfg, line.group(0))
    return run, line.group(1), line.group(2)


LIB = r"(openblas|onednn),(openblas|onednn),(openblas|onednn)"
run1, v1, why1 = train("first")
assert re.fullmatch(LIB, v1), v1
assert re.match(r"raced \(forward [\d.]+ ms on OpenBLAS, [\d.]+ on oneDNN; input gradient .*\), kept in " +
                re.escape(cache) + r"/sgemm-[0-9a-f]{16}$", why1), why1
files = os.listdir(cache)
assert len(files) == 1, files
text = open(os.path.join(cache, files[0])).read()
assert "train.sgemm: %s\n" % v1 in text, text
run2, v2, why2 = train("second")
assert v2 == v1 and why2.startswith("this machine's verdict for these shapes"), why2
assert tu.weights(tu.latest(run1)) == tu.weights(tu.latest(run2)), "two runs on one verdict differ"
print("auto: %s raced once and kept; the second run read it and trained the same weights" % v1)

# each library forced: the same losses to float precision
runs = {lib: train("forced_" + lib, {"train.sgemm": lib}) for lib in ("openblas", "onednn")}
assert runs["openblas"][1] == "openblas" and runs["onednn"][1] == "onednn", runs
la, lb = (tu.series(tu.metrics(runs[k][0]), "loss") for k in ("openblas", "onednn"))
assert la.keys() == lb.keys() and all(abs(la[s] - lb[s]) <= 1e-5 * abs(la[s]) for s in la), (la, lb)
mixed = train("mixed", {"train.sgemm": "onednn,openblas,onednn"})
assert mixed[1] == "onednn,openblas,onednn" and mixed[2] == "train.sgemm", mixed
print("forced: openblas and onednn losses within 1e-5 (step 6: %.6f vs %.6f)" % (la[6], lb[6]))

# a resume keeps its checkpoint's choice with the cache gone, bit for bit
shutil.rmtree(cache)
final = tu.latest(run1)
want = tu.weights(final)
shutil.rmtree(final)
with open(os.path.join(run1, "latest"), "w") as f:
    f.write("ckpt-00000003\n")
_, v3, why3 = train("first", extra=["--resume", "latest"])
assert v3 == v1 and why3 == "the resumed run's choice", (v3, why3)
assert tu.weights(final) == want, "resume with the checkpoint's sgemm differs"
assert not os.path.exists(cache), "a resume raced"
print("resume: the checkpoint's %s, bit for bit, no race" % v3)

# a cache file that is no verdict (written by hand, truncated) is raced over
os.makedirs(cache)
_, v4, why4 = train("fresh")
name = os.listdir(cache)[0]
with open(os.path.join(cache, name), "w") as f:
    f.write("train.sgemm: fastest\n")
_, v5, why5 = train("fresh2")
assert why5.startswith("raced (") and why5.endswith("could not keep it in %s/%s" % (cache, name)), why5
assert re.fullmatch(LIB, v5), v5
print("a broken cache file is raced over: " + why5[-60:])

# signals while oneDNN's kernels run: SIGUSR1 (the control file's) every 0.5 ms
# for 3 s, then SIGTERM: the trainer checkpoints and exits 75. Before kiln kept
# signals off oneDNN's threads this aborted ("corrupted size vs. prev_size")
# within a few signals.
sig = dict(KEYS, **{"train.steps": 1000000, "train.checkpoint_every": 0, "train.log_every": 100000,
                    "train.sgemm": "onednn", "model.n_embd": 128, "train.batch_size": 8})
for prec in ("fp32", "bf16"):
    extra = {"train.precision": prec, "train.bf16_kernels": "onednn" if prec == "bf16" else "auto"}
    run = os.path.join(work, "signals_" + prec)
    p = subprocess.Popen(tu.pretrain_args(kiln, data, run, dict(sig, **extra), ["-q"]), stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, env=env)
    while p.poll() is None and not os.path.exists(os.path.join(run, "metrics.jsonl")):
        time.sleep(0.01)
    n, end = 0, time.time() + 3
    while time.time() < end and p.poll() is None:
        p.send_signal(signal.SIGUSR1)
        n += 1
        time.sleep(0.0005)
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
    _, err = p.communicate()
    if prec == "bf16" and p.returncode == 2 and "train.bf16_kernels: onednn: " in err.decode():
        print("bf16 kernels: none here (%s)" % err.decode().strip().splitlines()[-1])
        continue
    assert p.returncode == 75, (prec, p.returncode, n, err.decode()[-400:])
    print("%s on oneDNN: %d SIGUSR1 then SIGTERM: exit 75" % (prec, n))
shutil.rmtree(work)
