"""test_resume.py KILN REPO: exact resume. A run killed with SIGKILL at random
moments and resumed each time ends with the same per-step losses and the same
final weights and optimizer state, bit for bit, as an uninterrupted run; so do a
run stopped by SIGTERM and one whose newest checkpoint is corrupt. A resume that
would change the model's shape is refused and changes nothing."""
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trainutil as tu

kiln, repo = sys.argv[1], sys.argv[2]
work = tempfile.mkdtemp(prefix="kiln-resume-")
try:
    data = tu.byte_shards(kiln, repo, work)

    # the uninterrupted reference
    ref = os.path.join(work, "ref")
    subprocess.run(tu.pretrain_args(kiln, data, ref, extra=["-q"]), check=True)
    ref_recs = tu.metrics(ref)
    ref_loss = tu.series(ref_recs, "loss")
    ref_val = tu.series(ref_recs, "val_loss")
    ref_w = tu.weights(tu.latest(ref))
    assert sorted(ref_loss) == list(range(1, 601)), "reference must log every step"
    # the batch ramp: 128 tokens (1 micro-batch of 4x32) growing to 2 micro-batches
    bt = tu.series(ref_recs, "batch_tokens")
    assert bt[1] == 128 and bt[600] == 256, (bt[1], bt[600])
    # rotation: the newest 2 plus the milestones (multiples of 100)
    ckpts = sorted(d for d in os.listdir(ref) if d.startswith("ckpt-"))
    assert ckpts == ["ckpt-%08d" % s for s in (100, 200, 300, 400, 500, 590, 600)], ckpts
    print("reference: %d steps, final loss %.4f, checkpoints %s" % (len(ref_loss), ref_loss[600], ckpts))

    def latest_step(run):
        try:
            with open(os.path.join(run, "latest")) as f:
                return int(f.read().strip()[5:])
        except (OSError, ValueError):
            return -1

    def start_and_wait(run, extra, step, jitter):
        """Starts the trainer; once its newest checkpoint reaches step, waits
        jitter seconds more (landing anywhere in a step or a checkpoint write)."""
        p = subprocess.Popen(tu.pretrain_args(kiln, data, run, extra=extra + ["-q"]))
        while p.poll() is None and latest_step(run) < step:
            time.sleep(0.002)
        time.sleep(jitter)
        return p

    def finish(run, kills):
        """Runs until exit 0, SIGKILLing at each (step, jitter) of kills and resuming."""
        extra = []
        for attempt in range(40):
            if kills:
                step, jitter = kills.pop(0)
                p = start_and_wait(run, extra, step, jitter)
                p.send_signal(signal.SIGKILL)
            else:
                p = subprocess.Popen(tu.pretrain_args(kiln, data, run, extra=extra + ["-q"]))
            rc = p.wait()
            if rc == 0:
                return attempt
            assert rc == -signal.SIGKILL, "trainer failed with status %d" % rc
            extra = ["--resume", "latest"] if os.path.exists(os.path.join(run, "latest")) else []
        raise AssertionError("run never finished")

    def same_as_ref(run, what):
        recs = tu.metrics(run)
        loss, val = tu.series(recs, "loss"), tu.series(recs, "val_loss")
        assert loss == ref_loss, "%s: losses differ at steps %s" % (
            what, [s for s in ref_loss if loss.get(s) != ref_loss[s]][:5])
        assert val == ref_val, "%s: validation losses differ" % what
        assert tu.weights(tu.latest(run)) == ref_w, "%s: final weights or optimizer state differ" % what

    # SIGKILL at random moments
    rng = random.Random(20261129)
    killed = os.path.join(work, "killed")
    kills = [(s, rng.uniform(0, 0.02)) for s in sorted(rng.sample(range(10, 580, 10), 6))]
    finish(killed, list(kills))
    resumes = len(tu.events(tu.metrics(killed), "resume"))
    assert resumes == len(kills), "%d resumes after %d kills" % (resumes, len(kills))
    same_as_ref(killed, "SIGKILL")
    print("SIGKILL: %d kills, %d resumes: losses and final weights identical" % (len(kills), resumes))

    # SIGTERM: a checkpoint at the step it stopped, status 75, then resume
    term = os.path.join(work, "term")
    p = start_and_wait(term, [], 300, 0.005)
    p.send_signal(signal.SIGTERM)
    rc = p.wait()
    assert rc == 75, "SIGTERM: status %d, expected 75" % rc
    stop = tu.events(tu.metrics(term), "stop")
    assert len(stop) == 1, stop
    assert tu.latest(term).endswith("ckpt-%08d" % stop[0]["step"]), "no checkpoint at the stop"
    subprocess.run(tu.pretrain_args(kiln, data, term, extra=["-q", "--resume", "latest"]), check=True)
    same_as_ref(term, "SIGTERM")
    print("SIGTERM: stopped at step %d with status 75; resumed: identical" % stop[0]["step"])

    # a corrupt newest checkpoint: resume falls back to the one before, with a warning
    corrupt = os.path.join(work, "corrupt")
    subprocess.run(tu.pretrain_args(kiln, data, corrupt, {"train.steps": 120, "train.decay_steps": 600}, ["-q"]),
                   check=True)
    newest = tu.latest(corrupt)
    with open(os.path.join(newest, "model.safetensors"), "r+b") as f:
        f.seek(-9, 2)
        b = f.read(1)
        f.seek(-9, 2)
        f.write(bytes([b[0] ^ 0x40]))
    out = subprocess.run(tu.pretrain_args(kiln, data, corrupt, extra=["--resume", "latest"]),
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "skipping" in out.stdout and "sha256" in out.stdout, out.stdout[:2000]
    assert "resumed from %s" % os.path.join(corrupt, "ckpt-00000110") in out.stdout, out.stdout[:2000]
    same_as_ref(corrupt, "corrupt newest checkpoint")
    print("corrupt checkpoint: resumed from the previous one: identical")

    # a resume that changes the model's shape: status 2, a named key, nothing written
    before = {}
    for root, _, files in os.walk(killed):
        for fn in files:
            before[os.path.join(root, fn)] = tu.sha256(os.path.join(root, fn))
    out = subprocess.run(tu.pretrain_args(kiln, data, killed, {"model.n_layer": 3}, ["--resume", "latest"]),
                         capture_output=True, text=True)
    assert out.returncode == 2, (out.returncode, out.stderr)
    assert "model.n_layer" in out.stderr and "shape" in out.stderr, out.stderr
    after = {}
    for root, _, files in os.walk(killed):
        for fn in files:
            after[os.path.join(root, fn)] = tu.sha256(os.path.join(root, fn))
    assert before == after, "a refused resume changed files"
    print("shape change refused: %s" % out.stderr.strip())

    # a fresh start in a directory that holds a run is refused
    out = subprocess.run(tu.pretrain_args(kiln, data, killed), capture_output=True, text=True)
    assert out.returncode == 2 and "already holds a run" in out.stderr, out.stderr
    assert before == {p: tu.sha256(p) for p in before}, "a refused start changed files"

    # a checkpoint of another model, named explicitly: refused before anything is written
    other = os.path.join(work, "other")
    out = subprocess.run(tu.pretrain_args(kiln, data, other, {"model.n_embd": 48}, ["--resume", tu.latest(ref)]),
                         capture_output=True, text=True)
    assert out.returncode == 2 and "model.n_embd = 32 but the config says 48" in out.stderr, out.stderr
    assert not os.path.exists(os.path.join(other, "metrics.jsonl")), "a refused resume started a run"
    print("another model's checkpoint refused")

    # under the supervisor: the trainer SIGKILLed, then hung (SIGSTOP); both restarted, same result
    sup = os.path.join(work, "sup")
    p = subprocess.Popen([kiln, "supervise", "-q", "--run", sup, "--backoff", "0.1", "--heartbeat-timeout", "3",
                          "--kill-grace", "0.5", "--"] + tu.pretrain_args(kiln, data, sup, extra=["-q"]))

    def trainer_pid():
        with open(os.path.join(sup, "trainer.pid")) as f:
            return int(f.read())

    for step, sig in ((200, signal.SIGKILL), (400, signal.SIGSTOP)):
        t0 = time.time()
        while latest_step(sup) < step:
            assert p.poll() is None and time.time() - t0 < 120, "supervised run stalled"
            time.sleep(0.002)
        os.kill(trainer_pid(), sig)
    assert p.wait(timeout=180) == 0
    with open(os.path.join(sup, "incidents.jsonl")) as f:
        kinds = [json.loads(line)["kind"] for line in f]
    assert kinds.count("crash") == 1 and kinds.count("hang") == 1 and kinds.count("restart") == 2, kinds
    same_as_ref(sup, "supervised")
    print("supervised: a SIGKILL and a hang, %s: identical" % kinds)

    # warm start: another run's weights, a fresh schedule
    warm = os.path.join(work, "warm")
    subprocess.run(tu.pretrain_args(kiln, data, warm, {"train.steps": 20}, ["-q", "--init-from", tu.latest(ref)]),
                   check=True)
    warm_loss = tu.series(tu.metrics(warm), "loss")
    assert warm_loss[1] < ref_loss[1] - 1.0, (warm_loss[1], ref_loss[1])
    print("warm start: first loss %.3f (fresh init: %.3f)" % (warm_loss[1], ref_loss[1]))
finally:
    shutil.rmtree(work, ignore_errors=True)
print("ok")
