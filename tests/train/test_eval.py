"""test_eval.py KILN REPO: benchmarks during pretraining. With eval.tasks set,
the trainer scores them every eval.every steps and at the end, logging
eval/<task>/<metric>; the numbers at the end equal `kiln eval` on the final
checkpoint."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trainutil as tu

kiln, repo = sys.argv[1], sys.argv[2]
work = tempfile.mkdtemp(prefix="kiln-traineval-")
try:
    data = tu.byte_shards(kiln, repo, work)
    run = os.path.join(work, "run")
    dd = os.path.join(tu.shared_data(repo), "")
    keys = {"train.steps": 200, "eval.tasks": "hellaswag,lambada_openai", "eval.every": 100, "eval.limit": 10,
            "eval.tokenizer": "bytes", "eval.task_dir": os.path.join(repo, "tasks"), "eval.data_dir": dd}
    subprocess.run(tu.pretrain_args(kiln, data, run, keys, ["-q"]), check=True)
    recs = tu.metrics(run)
    acc = tu.series(recs, "eval/hellaswag/acc_norm")
    ppl = tu.series(recs, "eval/lambada_openai/perplexity")
    assert sorted(acc) == [100, 200] and sorted(ppl) == [100, 200], (acc, ppl)
    assert all(0 <= v <= 1 for v in acc.values()) and all(v > 1 for v in ppl.values())
    out = os.path.join(work, "results.json")
    subprocess.run([kiln, "eval", "--model", run, "--tasks", "hellaswag,lambada_openai", "--limit", "10",
                    "--tokenizer", "bytes", "--task-dir", keys["eval.task_dir"], "--data-dir", dd, "--output", out,
                    "-q"], check=True, stdout=subprocess.DEVNULL)
    res = {(r["task"], r["metric"]): r["value"] for r in json.load(open(out))["results"]}
    assert abs(res[("hellaswag", "acc_norm")] - acc[200]) < 1e-9, (res, acc)
    assert abs(res[("lambada_openai", "perplexity")] - ppl[200]) < 1e-6 * ppl[200], (res, ppl)
    print("eval during training: hellaswag acc_norm %s, lambada perplexity %s; kiln eval agrees" % (acc, ppl))
finally:
    shutil.rmtree(work, ignore_errors=True)
print("ok")
