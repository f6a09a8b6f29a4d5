"""test_machine.py KILN REPO: what the trainer says about the machine (issue 13):
the memory plan at start matches the model's size, each step's peak resident
memory is in metrics.jsonl and covers the plan, and MFU is measured against a
peak that is the larger of the theoretical and the measured one, kept with its
inputs in env.json, so no step shows more than 100%. train.recompute gives
the same weights bit for bit with a smaller activation plan."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import trainutil as tu

kiln, repo = sys.argv[1], sys.argv[2]
work = tempfile.mkdtemp(prefix="kiln_machine_")
data = tu.byte_shards(kiln, repo, work)
run = os.path.join(work, "run")
KEYS = {"train.steps": 6, "train.log_every": 2, "train.peak_tflops": 0, "train.checkpoint_every": 6,
        "train.eval_every": 0, "model.n_layer": 3,
        "train.batch_ramp_start": 0, "train.warmup_steps": 2, "model.n_embd": 128, "model.n_head": 4}
args = tu.pretrain_args(kiln, data, run, KEYS)
out = subprocess.run(args, capture_output=True, text=True)
assert out.returncode == 0, out.stderr
text = out.stdout + out.stderr
params = int(re.search(r"model: (\d+) parameters", text).group(1))
m = re.search(r"memory: weights ([\d.]+) MiB, gradients ([\d.]+), optimizer state ([\d.]+), "
              r"activations ([\d.]+) \(batch 4 x 32\); ([\d.]+) MiB in all", text)
assert m, text
w, g, o, a, total = map(float, m.groups())
MiB = 1 << 20
assert abs(w - params * 4 / MiB) < 0.051 and g == w and abs(o - 2 * w) < 0.11, (params, m.groups())
assert a > 0 and abs(total - (w + g + o + a)) < 0.2, m.groups()

pk = json.load(open(os.path.join(run, "env.json")))["peak_flops"]
assert pk["used"] == max(pk["theoretical"], pk["measured"]) and pk["used"] > 0, pk
assert pk["used_is"] in ("theoretical", "measured") and pk["measured_kernel"] == "sgemm", pk
if pk["theoretical"] > 0:
    assert pk["cores"] >= 1 and pk["ghz"] > 0 and pk["flops_per_cycle"] in (8, 16, 32, 64), pk
    assert abs(pk["theoretical"] - pk["cores"] * pk["ghz"] * 1e9 * pk["flops_per_cycle"]) < 1e3, pk
assert re.search(r"MFU against [\d.]+ GFLOP/s, the (theoretical|measured) peak: \d+ cores x [\d.]+ GHz", text), text

rows = [r for r in tu.metrics(run) if "loss" in r]
assert len(rows) == 6, rows
for r in rows:
    assert 0 < r["mfu"] <= 1, r
    assert r["peak_rss_mb"] >= w + g + o + a, (r, total)  # kiln_alloc zeroes, so all of it is resident
lines = re.findall(r"\| rss (\d+) MiB \|", text)
assert len(lines) == 3 and all(float(x) >= total - 1 for x in lines), text
print("memory plan %.1f MiB, step peaks %s MiB, peak %.1f GFLOP/s (%s)" %
      (total, sorted({round(r["peak_rss_mb"]) for r in rows}), pk["used"] / 1e9, pk["used_is"]))

# train.recompute: one layer's activations instead of three, the same weights
run2 = os.path.join(work, "run_recompute")
out2 = subprocess.run(tu.pretrain_args(kiln, data, run2, dict(KEYS, **{"train.recompute": "true"})),
                      capture_output=True, text=True)
assert out2.returncode == 0, out2.stderr
a2 = float(re.search(r"activations ([\d.]+) \(batch", out2.stdout + out2.stderr).group(1))
assert a2 < a * 0.75, (a2, a)
assert tu.weights(tu.latest(run2)) == tu.weights(tu.latest(run)), "recompute changed the weights"
print("recompute: activations %.1f MiB instead of %.1f, weights identical" % (a2, a))

# train.precision bf16: said at start with the bf16 weight copies in the
# memory plan; not fp32's weights, but fp32's losses to bf16's precision;
# resumed from its middle checkpoint, the same weights and optimizer state bit
# for bit. With each train.bf16_kernels: auto (raced at start, the choice
# recorded in config.yaml and kept on resume), sgemm, and onednn (oneDNN's bf16
# kernels, MFU against their own peak; refused with the reason on a CPU or
# build without them).
l32 = tu.series(tu.metrics(run), "loss")
dnn = subprocess.run([kiln, "env"], capture_output=True, text=True).stdout
have_dnn = re.search(r"^bf16 peak: +[\d.]+ GFLOP/s theoretical", dnn, re.M) is not None
for kernels in ("auto", "sgemm", "onednn"):
    BF16 = dict(KEYS, **{"train.precision": "bf16", "train.checkpoint_every": 3, "train.keep_last": 0,
                         "train.bf16_kernels": kernels})
    run3 = os.path.join(work, "run_bf16_" + kernels)
    out3 = subprocess.run(tu.pretrain_args(kiln, data, run3, BF16), capture_output=True, text=True)
    t3 = out3.stdout + out3.stderr
    if kernels == "onednn" and not have_dnn:
        assert out3.returncode != 0 and "train.bf16_kernels: onednn: " in t3, t3
        print("bf16 onednn: refused here: " + t3.strip().splitlines()[-1])
        continue
    assert out3.returncode == 0, t3
    chose = re.search(r"^  bf16_kernels: (\w+)$", open(os.path.join(run3, "config.yaml")).read(), re.M).group(1)
    assert chose in ("sgemm", "onednn") and (kernels == "auto" or chose == kernels), (kernels, chose)
    on = "in oneDNN's bf16 kernels" if chose == "onednn" else "on the fp32 sgemm with bf16-rounded operands"
    assert "precision: bf16 matmuls; the linear layers " + on in t3, t3
    if kernels == "auto":
        assert re.search(r"train.bf16_kernels auto: on the MLP's 128 x 512 x 128, oneDNN's .* [\d.]+ GFLOP/s, the "
                         r"sgemm [\d.]+\)" if have_dnn else r"no bf16 kernels here", t3), t3
    m3 = re.search(r"bf16 weight copies ([\d.]+); ([\d.]+) MiB in all", t3)
    assert m3 and abs(float(m3.group(1)) - w) < 0.051, t3
    pk3 = json.load(open(os.path.join(run3, "env.json")))["peak_flops"]
    if chose == "onednn":
        assert re.search(r"mfu [\d.]+% of bf16 ", t3) and pk3["measured_kernel"] == "oneDNN bf16 matmul", (t3, pk3)
        assert pk3["flops_per_cycle"] == 2 * pk["flops_per_cycle"] or pk["flops_per_cycle"] == 0, (pk, pk3)
    else:
        assert re.search(r"mfu [\d.]+% of fp32 ", t3) and pk3["measured_kernel"] == "sgemm", (t3, pk3)
    assert all(0 < r["mfu"] <= 1 for r in tu.metrics(run3) if "mfu" in r)
    l16 = tu.series(tu.metrics(run3), "loss")
    assert all(abs(l16[s] - l32[s]) < 0.02 * l32[s] for s in l32), (l32, l16)
    assert tu.weights(tu.latest(run3)) != tu.weights(tu.latest(run)), "bf16 gave fp32's weights"
    final = tu.latest(run3)
    final_state = tu.weights(final)
    shutil.rmtree(final)
    with open(os.path.join(run3, "latest"), "w") as f:
        f.write("ckpt-00000003\n")
    out4 = subprocess.run(tu.pretrain_args(kiln, data, run3, BF16, ["--resume", "latest"]), capture_output=True,
                          text=True)
    t4 = out4.stdout + out4.stderr
    assert out4.returncode == 0 and "resumed from" in t4, t4
    if kernels == "auto":
        assert "(train.bf16_kernels auto: the resumed run's choice: %s)" % chose in t4, t4
    assert tu.weights(final) == final_state, "bf16 resume differs (%s)" % kernels
    print("bf16 %s (%s): losses within 2%% of fp32's (step 6: %.4f vs %.4f), resumed from step 3 bit for bit" %
          (kernels, chose, l16[6], l32[6]))
