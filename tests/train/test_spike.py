"""test_spike.py KILN REPO: the spike guard on a poisoned batch. A corpus of
Shakespeare has one document of random characters planted where step ~150
reads it. Without the guard the loss jumps there; with it the trainer rolls
back to its last checkpoint, skips the poisoned batches, records the spike
with the planted document's source and id (from the shard manifest), and the
logged loss never jumps. Under mpirun (2 ranks) the guard spikes, rolls back
and skips at the steps one process does."""
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trainutil as tu

kiln, repo = sys.argv[1], sys.argv[2]
src = os.path.join(tu.shared_data(repo), "pretrain", "tinyshakespeare", "input.txt")
if not os.path.exists(src):
    tu.skip(src + " not found (the shared data folder is absent)")
work = tempfile.mkdtemp(prefix="kiln-spike-")
try:
    text = open(src, encoding="utf-8").read()
    paras = [p.strip() + "\n" for p in text.split("\n\n") if p.strip()]

    def write_docs(name, docs):
        with open(os.path.join(work, name + ".jsonl"), "w") as f:
            for i, d in docs:
                f.write(json.dumps({"id": i, "text": d}) + "\n")

    # books-a: about 150 steps of 128 tokens; then the poison; then books-b
    a, n = [], 0
    while n < 150 * 128:
        a.append(("a%d" % len(a), paras[len(a)]))
        n += len(paras[len(a) - 1]) + 1
    b = [("b%d" % i, p) for i, p in enumerate(paras[len(a):len(a) + 1500])]
    rng = random.Random(5)
    poison = "".join(rng.choice("QZXJKVqzxjkv{}|~^`@#$%0123456789") for _ in range(200)) + "\n"
    write_docs("books-a", a)
    write_docs("web", [("poison-1", poison)])
    write_docs("books-b", b)
    pipe = os.path.join(work, "pipeline.yaml")
    with open(pipe, "w") as f:
        f.write("seed: 1\nout_dir: %s\nsources:\n" % os.path.join(work, "tokens"))
        for s in ("books-a", "web", "books-b"):
            f.write("  - {name: %s, format: jsonl, paths: [%s]}\n" % (s, os.path.join(work, s + ".jsonl")))
        f.write("stages: []\noutput:\n  tokenizer: bytes\n  shard_tokens: 100000\n  val_fraction: 0\n")
    subprocess.run([kiln, "data", "run", pipe], check=True, stdout=subprocess.DEVNULL)
    data = os.path.join(work, "tokens")

    keys = {"model.dropout": 0, "train.grad_accum": 1, "train.batch_ramp_start": 0, "train.steps": 300,
            "train.lr": 2e-3, "train.min_lr": 2e-3, "train.schedule": "constant", "data.shuffle": "false",
            "data.val": "", "train.checkpoint_every": 20, "train.keep_last": 3, "train.keep_every": 0}
    guard = dict(keys, **{"train.spike_z": 6, "train.spike_window": 50, "train.spike_min_history": 20,
                          "train.spike_action": "rollback", "train.spike_lr_factor": 0.5, "train.spike_max": 10})

    plain = os.path.join(work, "plain")
    subprocess.run(tu.pretrain_args(kiln, data, plain, keys, ["-q"]), check=True)
    plain_loss = tu.series(tu.metrics(plain), "loss")
    typical = sorted(plain_loss[s] for s in range(100, 300))[100]  # the median
    worst = max(range(100, 300), key=lambda s: plain_loss[s])
    assert plain_loss[worst] > typical + 1.0, "the poison did not cause a spike: %.3f vs median %.3f" % (
        plain_loss[worst], typical)
    print("without the guard: loss %.3f at step %d (median %.3f)" % (plain_loss[worst], worst, typical))

    guarded = os.path.join(work, "guarded")
    out = subprocess.run(tu.pretrain_args(kiln, data, guarded, guard), capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr
    recs = tu.metrics(guarded)
    loss = tu.series(recs, "loss")
    assert sorted(loss) == list(range(1, 301)), "every step must be logged once"
    spikes, rollbacks, skips = tu.events(recs, "spike"), tu.events(recs, "rollback"), tu.events(recs, "skip")
    assert spikes and rollbacks and skips, (len(spikes), len(rollbacks), len(skips))
    first = spikes[0]
    assert abs(first["step"] + 1 - worst) <= 2, "spike at step %d, the plain run jumped at %d" % (first["step"] + 1, worst)
    docs = [(d["source"], d["id"]) for e in spikes for d in e["detail"]["documents"]]
    assert ("web", "poison-1") in docs, docs
    assert ("web", "poison-1") in [(d["source"], d["id"]) for e in skips for d in e["detail"]["documents"]]
    assert first["detail"]["action"] == "rollback" and first["detail"]["lr_mult"] == 0.5, first["detail"]
    assert rollbacks[0]["detail"]["to_step"] % 20 == 0 and rollbacks[0]["detail"]["to_step"] <= first["step"]
    after = max(loss[s] for s in range(100, 301))
    assert after < typical + 1.0, "the guarded run still spiked: %.3f (median %.3f)" % (after, typical)
    with open(os.path.join(tu.latest(guarded), "state.json")) as f:
        st = json.load(f)
    assert st["skip"] and st["guard"]["spikes"] == len(spikes), st["skip"]
    assert "rolled back" in out.stdout
    print("with the guard: %d spike(s), %d rollback(s), skipped steps %s, worst loss after step 100 %.3f" % (
        len(spikes), len(rollbacks), st["skip"], after))

    # skip without rollback, and the same trainer resumed must still skip
    skip_only = os.path.join(work, "skip")
    subprocess.run(tu.pretrain_args(kiln, data, skip_only, dict(guard, **{"train.spike_action": "skip"}), ["-q"]),
                   check=True)
    recs = tu.metrics(skip_only)
    assert tu.events(recs, "spike") and not tu.events(recs, "rollback")
    assert max(tu.series(recs, "loss")[s] for s in range(100, 301)) < typical + 1.0
    print("skip-only: ok")

    # under mpirun, 2 ranks each computing one of a step's 2 micro-batches: the
    # guard sees the global loss, so the ranks spike, roll back and skip together,
    # at the steps where one process with the same batches does
    env = subprocess.run([kiln, "env"], capture_output=True, text=True).stdout
    if shutil.which("mpirun") and "mpi: none" not in env:
        menv = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
                    OMPI_MCA_btl_vader_single_copy_mechanism="none")
        if "ASAN_OPTIONS" in menv:  # OpenMPI's own leaks at exit (see tests/test_mpi.py)
            menv["ASAN_OPTIONS"] = menv["ASAN_OPTIONS"].replace("detect_leaks=1", "detect_leaks=0")
        g2 = dict(guard, **{"train.grad_accum": 2, "train.steps": 150})
        one, two = os.path.join(work, "one"), os.path.join(work, "two")
        subprocess.run(tu.pretrain_args(kiln, data, one, g2, ["-q"]), check=True)
        out = subprocess.run(["mpirun", "--oversubscribe", "--bind-to", "none", "-np", "2"] +
                             tu.pretrain_args(kiln, data, two, g2, ["-q"]), capture_output=True, text=True, env=menv)
        assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
        r1, r2 = tu.metrics(one), tu.metrics(two)
        assert sorted(tu.series(r2, "loss")) == list(range(1, 151)), "2 ranks: every step logged once"
        ev = lambda recs, kind: [(e["step"], e["detail"].get("action"), e["detail"].get("to_step"))
                                 for e in tu.events(recs, kind)]
        assert ev(r2, "spike") and ev(r2, "spike") == ev(r1, "spike"), (ev(r2, "spike"), ev(r1, "spike"))
        assert ev(r2, "rollback") and ev(r2, "rollback") == ev(r1, "rollback"), (ev(r2, "rollback"),
                                                                                  ev(r1, "rollback"))
        l1, l2 = tu.series(r1, "loss"), tu.series(r2, "loss")
        gap = max(abs(l2[s] - l1[s]) / l1[s] for s in l1)  # float rounding only: the sums' order
        assert gap < 1e-3, "2 ranks: loss %.3g away from one process's" % gap
        print("2 ranks: spikes %s and rollbacks %s at the one-process run's steps, loss within %.2g" % (
            ev(r2, "spike"), ev(r2, "rollback"), gap))
    else:
        print("2 ranks: skipped (no mpirun, or kiln built without MPI)")
finally:
    shutil.rmtree(work, ignore_errors=True)
print("ok")
