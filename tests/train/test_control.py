"""test_control.py KILN REPO: live control of a running trainer through
RUN/control and SIGUSR1. Each change is applied at a step boundary, logged with
its step, kept in checkpoints (so a resumed run keeps it); a file with a bad
line is rejected whole; `stop: now` checkpoints and exits with status 75."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trainutil as tu

kiln, repo = sys.argv[1], sys.argv[2]
work = tempfile.mkdtemp(prefix="kiln-control-")


def wait_for(cond, what, timeout=60):
    t = time.time()
    while not cond():
        assert time.time() - t < timeout, "timed out waiting for " + what
        time.sleep(0.005)


def write_control(run, text):
    tmp = os.path.join(run, "control.tmp")
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, os.path.join(run, "control"))


def state(ckpt):
    with open(os.path.join(ckpt, "state.json")) as f:
        return json.load(f)


try:
    data = tu.byte_shards(kiln, repo, work)
    ref = os.path.join(work, "ref")
    subprocess.run(tu.pretrain_args(kiln, data, ref, extra=["-q"]), check=True)
    ref_lr = tu.series(tu.metrics(ref), "lr")

    # 1. a control file present at the start: applied before the first step
    run = os.path.join(work, "pre")
    os.makedirs(run)
    write_control(run, "# slow down and switch\nlr_mult: 0.5\nweight_decay: 0.05\ngrad_clip: 0.5\n"
                       "optimizer: sgd   # fresh state\nactivation: relu\ncheckpoint: now\n")
    subprocess.run(tu.pretrain_args(kiln, data, run, {"train.steps": 40}, ["-q"]), check=True)
    recs = tu.metrics(run)
    ev = tu.events(recs, "control")
    assert len(ev) == 1 and ev[0]["step"] == 0, ev
    assert ev[0]["detail"] == {"lr_mult": 0.5, "weight_decay": 0.05, "grad_clip": 0.5, "optimizer": "sgd",
                               "activation": "relu", "checkpoint": "now"}, ev[0]["detail"]
    assert os.path.exists(os.path.join(run, "control.applied")) and not os.path.exists(os.path.join(run, "control"))
    assert os.path.isdir(os.path.join(run, "ckpt-00000000"))
    lr = tu.series(recs, "lr")
    st = state(tu.latest(run))
    assert st["live"]["lr_mult"] == 0.5 and st["live"]["optimizer"] == 1 and st["live"]["act"] == 2, st["live"]
    assert abs(st["live"]["weight_decay"] - 0.05) < 1e-7 and abs(st["live"]["grad_clip"] - 0.5) < 1e-7
    plain = os.path.join(work, "plain40")
    subprocess.run(tu.pretrain_args(kiln, data, plain, {"train.steps": 40}, ["-q"]), check=True)
    plain_lr = tu.series(tu.metrics(plain), "lr")
    assert all(abs(lr[s] - 0.5 * plain_lr[s]) <= 1e-6 * plain_lr[s] for s in lr), "lr_mult not applied"
    print("control at start: applied at step 0, kept in the checkpoint state")

    # 2. while running: a bad file is rejected whole, a good one applied, then stop
    run = os.path.join(work, "live")
    p = subprocess.Popen(tu.pretrain_args(kiln, data, run, {"train.checkpoint_every": 10}, ["-q"]))
    wait_for(lambda: os.path.exists(os.path.join(run, "ckpt-00000040")), "step 40")
    write_control(run, "lr_mult: 0.5\nbogus_key: 1\n")
    wait_for(lambda: os.path.exists(os.path.join(run, "control.rejected")), "the rejection")
    write_control(run, "lr_mult: 0.25\n")
    wait_for(lambda: os.path.exists(os.path.join(run, "control.applied")), "the change")
    os.kill(p.pid, signal.SIGUSR1)  # no control file now: a checkpoint
    time.sleep(0.05)
    write_control(run, "stop: now\n")
    rc = p.wait(timeout=120)
    assert rc == 75, "stop: status %d" % rc
    recs = tu.metrics(run)
    rej = tu.events(recs, "control_rejected")
    assert len(rej) == 1 and "control:2" in rej[0]["detail"]["error"] and "bogus_key" in rej[0]["detail"]["error"], rej
    ctl = tu.events(recs, "control")
    assert ctl[0]["detail"] == {"lr_mult": 0.25}, ctl
    changed = ctl[0]["step"]
    assert ctl[-1]["detail"] == {"stop": "now"}
    lr = tu.series(recs, "lr")
    for s in lr:
        want = ref_lr[s] * (0.25 if s > changed else 1.0)
        assert abs(lr[s] - want) <= 1e-6 * want, (s, lr[s], want)
    reasons = [e["detail"]["why"] for e in tu.events(recs, "checkpoint")]
    assert "stop" in reasons, reasons
    stop_step = tu.events(recs, "stop")[0]["step"]
    print("live: rejected a bad file, lr_mult 0.25 from step %d, stopped at step %d (checkpoints: %s)" % (
        changed, stop_step, sorted(set(reasons))))

    # 3. resumed: the change persists
    subprocess.run(tu.pretrain_args(kiln, data, run, {"train.checkpoint_every": 10}, ["-q", "--resume", "latest"]),
                   check=True)
    lr = tu.series(tu.metrics(run), "lr")
    assert sorted(lr) == list(range(1, 601))
    assert all(abs(lr[s] - 0.25 * ref_lr[s]) <= 1e-6 * ref_lr[s] for s in lr if s > stop_step)
    print("resumed: lr_mult 0.25 kept")

    # 5. checkpoints by the clock (train.checkpoint_minutes), not only by step
    run = os.path.join(work, "minutes")
    subprocess.run(tu.pretrain_args(kiln, data, run, {"train.steps": 400, "train.checkpoint_every": 0,
                                                      "train.checkpoint_minutes": 0.002, "train.keep_last": 0},
                                    ["-q"]), check=True)
    timed = [e for e in tu.events(tu.metrics(run), "checkpoint") if e["detail"]["why"] == "scheduled"]
    assert len(timed) >= 2, "checkpoint_minutes wrote %d checkpoints" % len(timed)
    print("checkpoint_minutes: %d timed checkpoints" % len(timed))

    # 4. refused values: swiglu changes the shapes; the file is rejected, the run goes on
    run = os.path.join(work, "refuse")
    os.makedirs(run)
    write_control(run, "activation: swiglu\n")
    out = subprocess.run(tu.pretrain_args(kiln, data, run, {"train.steps": 12}), capture_output=True, text=True)
    assert out.returncode == 0 and "swiglu changes the parameter shapes" in out.stdout, out.stdout
    assert os.path.exists(os.path.join(run, "control.rejected"))
    print("swiglu refused")
finally:
    shutil.rmtree(work, ignore_errors=True)
print("ok")
