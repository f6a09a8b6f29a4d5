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
    # beside each metric its stderr and (multiple choice) chance level, for the report's band and line
    assert tu.series(recs, "eval/hellaswag/acc_norm_chance") == {100: 0.25, 200: 0.25}, recs[-3:]
    assert sorted(tu.series(recs, "eval/hellaswag/acc_norm_stderr")) == [100, 200]
    assert not tu.series(recs, "eval/lambada_openai/perplexity_chance")
    out = os.path.join(work, "results.json")
    subprocess.run([kiln, "eval", "--model", run, "--tasks", "hellaswag,lambada_openai", "--limit", "10",
                    "--tokenizer", "bytes", "--task-dir", keys["eval.task_dir"], "--data-dir", dd, "--output", out,
                    "-q"], check=True, stdout=subprocess.DEVNULL)
    rows = json.load(open(out))["results"]
    res = {(r["task"], r["metric"]): r["value"] for r in rows}
    assert [r.get("chance") for r in rows if r["task"] == "hellaswag"] == [0.25, 0.25], rows
    assert abs(res[("hellaswag", "acc_norm")] - acc[200]) < 1e-9, (res, acc)
    assert abs(res[("lambada_openai", "perplexity")] - ppl[200]) < 1e-6 * ppl[200], (res, ppl)
    print("eval during training: hellaswag acc_norm %s, lambada perplexity %s; kiln eval agrees" % (acc, ppl))

    # clean subsets: a training "corpus" that contains HellaSwag items 3 and 7 (by their ids
    # hellaswag/<ind>), through the decontaminate stage's report, scored apart
    hs = os.path.join(tu.shared_data(repo), "eval", "hellaswag", "hellaswag_val.subset.jsonl")
    recs = [json.loads(l) for l in open(hs)][:10]
    corpus = os.path.join(work, "corpus.jsonl")
    with open(corpus, "w") as f:
        for i in (3, 7):
            r = recs[i]
            f.write(json.dumps({"id": "doc%d" % i, "text": "Some text. " + r["ctx"] + " " + r["endings"][r["label"]]
                                + " More text follows here."}) + "\n")
        f.write(json.dumps({"id": "clean", "text": "Nothing from any benchmark is in this document at all."}) + "\n")
    rep = os.path.join(work, "decontam.json")
    subprocess.run([kiln, "data", "decontaminate", "--eval", hs, "--report", rep, corpus, "-o", os.devnull],
                   check=True, stderr=subprocess.DEVNULL)
    items = os.path.join(work, "items.jsonl")
    subprocess.run([kiln, "eval", "--model", run, "--tasks", "hellaswag", "--limit", "10", "--tokenizer", "bytes",
                    "--task-dir", keys["eval.task_dir"], "--data-dir", dd, "--output", out, "--decontam", rep,
                    "--keep-items", items, "-q"], check=True, stdout=subprocess.DEVNULL)
    res = {(r["metric"], r["subset"]): r for r in json.load(open(out))["results"]}
    found = {"hellaswag/%d" % recs[i]["ind"] for i in (3, 7)}
    kept = [json.loads(l) for l in open(items)]
    assert {k["id"] for k in kept if not k["clean"]} == found, [k["id"] for k in kept if not k["clean"]]
    assert res[("acc", "all")]["n"] == 10 and res[("acc", "clean")]["n"] == 8, res
    clean_acc = sum(1.0 for k in kept if k["clean"] and max(range(4), key=lambda c: k["loglik"][c]) == k["label"]) / 8
    assert abs(res[("acc", "clean")]["value"] - clean_acc) < 1e-12, (res[("acc", "clean")], clean_acc)
    print("clean subset: %s left out; acc %.3f on 10, %.3f on the 8 clean" % (sorted(found), res[("acc", "all")]["value"],
                                                                              clean_acc))

    # toxicity during training: the same numbers as kiln eval on the final checkpoint
    run2 = os.path.join(work, "tox")
    subprocess.run(tu.pretrain_args(kiln, data, run2, dict(keys, **{"train.steps": 60, "eval.tasks": "toxicity",
                                                                    "eval.limit": 6, "train.warmup_steps": 5}),
                                    ["-q"]), check=True)
    emt = tu.series(tu.metrics(run2), "eval/toxicity/expected_maximum_toxicity_classifier")
    assert list(emt) == [60] and 0 <= emt[60] <= 1, emt
    subprocess.run([kiln, "eval", "--model", run2, "--tasks", "toxicity", "--limit", "6", "--tokenizer", "bytes",
                    "--task-dir", keys["eval.task_dir"], "--data-dir", dd, "--output", out, "-q"], check=True,
                   stdout=subprocess.DEVNULL)
    res = {r["metric"]: r["value"] for r in json.load(open(out))["results"]}
    assert abs(res["expected_maximum_toxicity_classifier"] - emt[60]) < 1e-6, (res, emt)
    print("toxicity during training: expected maximum toxicity %.4f, kiln eval agrees" % emt[60])

    # bad input: a task file with an unknown key names the file and line; exit 2
    bad = os.path.join(work, "bad.yaml")
    with open(bad, "w") as f:
        f.write(open(os.path.join(repo, "tasks", "piqa.yaml")).read() + "\nbogus_key: 1\n")
    p = subprocess.run([kiln, "eval", "--model", run, "--tasks", bad, "--tokenizer", "bytes", "--data-dir", dd],
                       capture_output=True, text=True)
    assert p.returncode == 2 and "bad.yaml:" in p.stderr and "bogus_key" in p.stderr, p.stderr
    print("bad task file: " + p.stderr.strip())
finally:
    shutil.rmtree(work, ignore_errors=True)
print("ok")
