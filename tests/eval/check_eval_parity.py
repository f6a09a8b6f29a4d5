#!/usr/bin/python3
"""check_eval_parity.py KILN REPO: kiln eval against an independent reference.

A small GPT-2-vocabulary model is trained for a few steps; `kiln eval` scores
HellaSwag, LAMBADA, PIQA, CrowS-Pairs and WikiText on it, dumping its prompts,
per-item log-likelihoods and results. Independently, this script
  - tokenizes with the real tiktoken (npm, tests/tokenizer/reference.mjs),
  - splits context and continuation as lm-evaluation-harness's _encode_pair
    does (trailing context spaces move to the continuation; continuation tokens
    are tok(context+continuation) past tok(context); empty context -> EOT),
  - builds lm-evaluation-harness's rolling windows for WikiText,
  - computes the log-likelihoods with PyTorch (tests/parity/kiln_torch.py) from
    the checkpoint's weights,
  - and recomputes every metric (acc, acc_norm, perplexity, pct_stereotype,
    likelihood_difference, word/byte perplexity, bits per byte, stderr)
    with lm-evaluation-harness's formulas.
Log-likelihoods must agree to 1e-4 (whole WikiText articles: 1e-6 per token),
metrics to 1e-6 relative.
"""
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "parity"))
import kiln_torch as kt  # noqa: E402

kiln, repo = sys.argv[1], sys.argv[2]
data = os.path.join(repo, "..", "shared", "data")
gpt2 = os.path.join(data, "tokenizers", "gpt2.tiktoken")
ref_js = os.path.join(repo, "tests", "tokenizer", "reference.mjs")
if not os.path.exists(gpt2):
    print("SKIP: %s not found (the shared data folder is absent)" % gpt2)
    sys.exit(77)
if not shutil.which("node") or not os.path.isdir(os.path.join(repo, "tests", "tokenizer", "node_modules", "tiktoken")):
    print("SKIP: node or the npm tiktoken package is missing (scripts/install-deps.sh installs them)")
    sys.exit(77)

work = tempfile.mkdtemp(prefix="kiln-evalparity-")
fails = 0


def check(cond, what):
    global fails
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        fails += 1


def run(*args):
    subprocess.run(list(args), check=True, stdout=subprocess.DEVNULL)


try:
    # a tiny model on GPT-2 tokens (the weights only need to be fixed, not good)
    run(kiln, "tokenizer", "encode-corpus", "-t", gpt2, "-o", os.path.join(work, "tok"),
        os.path.join(data, "pretrain", "tinyshakespeare", "input.txt"))
    cfg = {"model.vocab_size": 50257, "model.block_size": 64, "model.n_layer": 2, "model.n_head": 2,
           "model.n_embd": 32, "train.batch_size": 4, "train.seq_len": 64, "train.steps": 20,
           "train.warmup_steps": 2, "train.lr": 3e-3, "train.threads": 2, "train.peak_tflops": 1,
           "data.train": os.path.join(work, "tok", "train_*.bin"), "data.val": "",
           "out_dir": os.path.join(work, "run")}
    args = [kiln, "pretrain", "-q"]
    for k, v in cfg.items():
        args += ["--set", "%s=%s" % (k, v)]
    run(*args)

    tasks = "hellaswag,lambada_openai,piqa,crows_pairs_english,wikitext"
    prompts, items, results = [], [], []
    for names, limit in (("hellaswag,lambada_openai,piqa,crows_pairs_english", 12), ("wikitext", 3)):
        items_path, prompts_path, results_path = (os.path.join(work, f) for f in ("items.jsonl", "prompts.jsonl",
                                                                                 "results.json"))
        out = subprocess.run([kiln, "eval", "--model", cfg["out_dir"], "--tasks", names, "--limit", str(limit),
                              "--tokenizer", gpt2, "--keep-items", items_path, "--dump-prompts", prompts_path,
                              "--output", results_path, "--data-dir", data, "--task-dir",
                              os.path.join(repo, "tasks"), "-q"], capture_output=True, text=True)
        if out.returncode != 0:
            print(out.stdout, out.stderr)
            sys.exit(1)
        print(out.stdout)
        prompts += [json.loads(l) for l in open(prompts_path)]
        items += [json.loads(l) for l in open(items_path)]
        results += json.load(open(results_path))["results"]
    check(len(prompts) == len(items) and len(items) > 0, "%d items scored and dumped" % len(items))

    # the reference tokenizer: real tiktoken, one batch for every string we need
    strings = []

    def need(s):
        strings.append(s)
        return len(strings) - 1

    EOT = 50256
    plan = []  # per item: list of (context token index or None, whole token index or None, text-only idx)
    for p in prompts:
        entry = []
        for cont in p["continuations"]:
            ctx = p["context"]
            if ctx == "":
                entry.append(("empty", need(cont)))
            else:
                n_spaces = len(ctx) - len(ctx.rstrip())
                c2, k2 = (ctx[:-n_spaces], ctx[-n_spaces:] + cont) if n_spaces else (ctx, cont)
                entry.append(("pair", need(c2), need(c2 + k2)))
        plan.append(entry)
    with open(os.path.join(work, "strings.jsonl"), "w") as f:
        for s in strings:
            f.write(json.dumps({"text": s}) + "\n")
    ids_out = subprocess.run(["node", ref_js, "tiktoken-batch", gpt2, os.path.join(work, "strings.jsonl")],
                             capture_output=True, text=True, check=True).stdout.splitlines()
    ids = [json.loads(l) for l in ids_out]

    # the model in PyTorch, from the checkpoint kiln eval used
    ckpt = os.path.join(cfg["out_dir"], open(os.path.join(cfg["out_dir"], "latest")).read().strip())
    mc = kt.model_config({k.split(".", 1)[1]: v for k, v in cfg.items() if k.startswith("model.")})
    model = kt.KilnGPT(mc).double()
    model.load_state_dict({k: torch.from_numpy(v).double() for k, v in
                           kt.load_safetensors(os.path.join(ckpt, "model.safetensors"))[0].items()})
    model.eval()
    MAX = mc["block_size"]

    def logprobs(tokens):
        with torch.no_grad():
            logits = model(torch.tensor([tokens]))
            logits = logits[0] if isinstance(logits, torch.Tensor) else logits[0][0]
            return torch.log_softmax(logits, -1)

    def loglik(ctx_enc, cont_enc):
        """lm-evaluation-harness's _loglikelihood_tokens for one request."""
        full = (ctx_enc + cont_enc)[-(MAX + 1):]
        inp = full[:-1]
        lp = logprobs(inp)
        n = len(cont_enc)
        rows = lp[len(inp) - n:]
        tgt = torch.tensor(full[-n:])
        ll = rows.gather(1, tgt[:, None]).sum().item()
        greedy = bool((rows.argmax(-1) == tgt).all())
        return ll, greedy

    def rolling_windows(token_list):
        """lm-evaluation-harness's get_rolling_token_windows(prefix=EOT, context_len=1), each window made
        disjoint (make_disjoint_window: the context drops what the prediction repeats)."""
        pred_len = MAX
        first = min(MAX, len(token_list))
        a, b = [EOT] + token_list[:first - 1], token_list[:first]
        yield a[:len(a) - (len(b) - 1)], b
        predicted = first
        while predicted < len(token_list):
            wl = min(len(token_list) - predicted, pred_len)
            end = predicted + wl
            a, b = token_list[end - MAX - 1:end - 1], token_list[end - wl:end]
            yield a[:len(a) - (len(b) - 1)], b
            predicted += wl

    worst = worst_rolling = 0.0
    ref = {}
    for p, it, entry in zip(prompts, items, plan):
        lls, greedys = [], []
        for e in entry:
            if e[0] == "empty" and p["task"] == "wikitext":
                total = 0.0
                for a, b in rolling_windows(ids[e[1]]):
                    total += loglik(a, b)[0]
                lls.append(total)
                greedys.append(None)
                continue
            if e[0] == "empty":
                ctx_enc, cont_enc = [EOT], ids[e[1]]
            else:
                ctx_enc = ids[e[1]]
                whole = ids[e[2]]
                cont_enc = whole[len(ctx_enc):]
            ll, g = loglik(ctx_enc, cont_enc)
            lls.append(ll)
            greedys.append(g)
        got = it["loglik"]
        if it["task"] == "wikitext":  # a whole article: thousands of tokens, compare per token
            worst_rolling = max(worst_rolling, abs(lls[0] - got[0]) / it["tokens"])
        else:
            worst = max(worst, max(abs(a - b) for a, b in zip(lls, got)))
        if it.get("greedy") is not None:
            check(it["greedy"] == greedys[0], "%s %s: greedy flag" % (it["task"], it["id"]))
        ref[(it["task"], it["id"])] = (lls, greedys, p, it)
    check(worst < 1e-4, "per-choice log-likelihoods equal PyTorch's (worst |diff| %.2e)" % worst)
    check(worst_rolling < 1e-6, "rolling log-likelihoods equal PyTorch's (worst |diff| per token %.2e)" % worst_rolling)

    # every metric recomputed with lm-evaluation-harness's formulas
    def mean_se(x):
        x = np.array(x, dtype=float)
        return x.mean(), (x.std(ddof=1) / math.sqrt(len(x)) if len(x) > 1 else None)

    def expect(task, metric, value, se=None):
        r = [r for r in results if r["task"] == task and r["metric"] == metric and r["subset"] == "all"]
        check(len(r) == 1 and abs(r[0]["value"] - value) <= 1e-6 * max(1.0, abs(value)) and
              (se is None or abs(r[0]["stderr"] - se) < 1e-6),
              "%s %s = %.6f (kiln %s)" % (task, metric, value, r[0]["value"] if r else "missing"))

    by_task = {}
    for (task, _), v in ref.items():
        by_task.setdefault(task, []).append(v)
    for task, vs in by_task.items():
        if task in ("hellaswag", "piqa"):
            acc, accn = [], []
            for lls, _, p, it in vs:
                lens = [len(c) - 1 for c in p["continuations"]]  # len(choice): the delimiter " " is not counted
                acc.append(float(int(np.argmax(lls)) == it["label"]))
                accn.append(float(int(np.argmax(np.array(lls) / np.array(lens))) == it["label"]))
            expect(task, "acc", *mean_se(acc))
            expect(task, "acc_norm", *mean_se(accn))
        elif task == "lambada_openai":
            expect(task, "acc", *mean_se([float(g[0]) for _, g, _, _ in vs]))
            expect(task, "perplexity", math.exp(-np.mean([l[0] for l, _, _, _ in vs])))
        elif task == "crows_pairs_english":
            expect(task, "pct_stereotype", *mean_se([float(l[0] > l[1]) for l, _, _, _ in vs]))
            expect(task, "likelihood_difference", *mean_se([abs(l[0] - l[1]) for l, _, _, _ in vs]))
        elif task == "wikitext":
            ll = sum(l[0] for l, _, _, _ in vs)
            text = [p["target"] for _, _, p, _ in vs]  # lm-eval counts words and bytes on the raw page
            words = sum(len(re.split(r"\s+", t)) for t in text)
            nbytes = sum(len(t.encode("utf-8")) for t in text)
            expect(task, "word_perplexity", math.exp(-ll / words))
            expect(task, "byte_perplexity", math.exp(-ll / nbytes))
            expect(task, "bits_per_byte", -ll / nbytes / math.log(2))
    check(set(by_task) == set(tasks.split(",")), "every task was checked: %s" % sorted(by_task))
finally:
    shutil.rmtree(work, ignore_errors=True)
print("%d failed" % fails)
sys.exit(1 if fails else 0)
