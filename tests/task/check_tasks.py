#!/usr/bin/python3
"""check_tasks.py: every item of every shipped task (tasks/*.yaml), as kiln
renders it, against the same item built in Python with lm-evaluation-harness's
rules (hellaswag utils.preprocess and str.capitalize, lambada's split(' '),
PIQA's labels, CrowS-Pairs' CSV via the csv module, wikitext's
document-level pages and wikitext_detokenizer, GSM8K's few-shot layout) and
GSM8K's answer filters and exact_match against RegexFilter / exact_match on
generated cases with Python's re.

usage: check_tasks.py TASK_DUMP SOURCE_ROOT   (exit 77 without ../shared/data)
"""
import csv
import json
import os
import random
import re
import string
import subprocess
import sys

DUMP, ROOT = sys.argv[1], sys.argv[2]
DATA = os.path.join(ROOT, "..", "shared", "data")
FILES = ["eval/hellaswag/hellaswag_val.subset.jsonl", "eval/lambada/lambada_test.jsonl", "eval/gsm8k/test.jsonl",
         "eval/gsm8k/train.jsonl", "eval/piqa/valid.jsonl", "eval/piqa/valid-labels.lst",
         "bias/crows-pairs/crows_pairs_anonymized.csv", "pretrain/wikitext-2-raw/wiki.test.raw"]
for f in FILES:
    if not os.path.exists(os.path.join(DATA, f)):
        print(f"skip: {f} not found")
        sys.exit(77)

failures = 0


def dump(task, shots=0, seed=1234, limit=0):
    out = subprocess.run([DUMP, os.path.join(ROOT, "tasks", task + ".yaml"), DATA, str(shots), str(seed), str(limit)],
                         check=True, capture_output=True).stdout
    return [json.loads(line) for line in out.decode("utf-8").splitlines()]


def expect(task, items, want):
    """want: list of dicts with the fields to compare (missing fields are not compared)."""
    global failures
    if len(items) != len(want):
        print(f"{task}: {len(items)} items, expected {len(want)}")
        failures += 1
        return
    bad = 0
    for i, (got, exp) in enumerate(zip(items, want)):
        for k, v in exp.items():
            if got[k] != v:
                if bad < 3:
                    print(f"{task} item {i} {k}:\n  got  {got[k]!r:.300}\n  want {v!r:.300}")
                bad += 1
    failures += bad > 0
    print(f"{task}: {len(items)} items, {bad} mismatches")


def jsonl(rel):
    with open(os.path.join(DATA, rel), encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


# ---------------------------------------------------------------- lm-evaluation-harness's rules
def hellaswag_preprocess(text):
    text = text.strip()
    text = text.replace(" [title]", ". ")
    text = re.sub("\\[.*?\\]", "", text)
    text = text.replace("  ", " ")
    return text


def wikitext_detokenizer(string_):
    s = string_
    s = s.replace("s '", "s'")
    s = re.sub(r"/' [0-9]/", r"/'[0-9]/", s)
    s = s.replace(" @-@ ", "-")
    s = s.replace(" @,@ ", ",")
    s = s.replace(" @.@ ", ".")
    s = s.replace(" : ", ": ")
    s = s.replace(" ; ", "; ")
    s = s.replace(" . ", ". ")
    s = s.replace(" ! ", "! ")
    s = s.replace(" ? ", "? ")
    s = s.replace(" , ", ", ")
    s = re.sub(r"\(\s*([^\)]*?)\s*\)", r"(\1)", s)
    s = re.sub(r"\[\s*([^\]]*?)\s*\]", r"[\1]", s)
    s = re.sub(r"{\s*([^}]*?)\s*}", r"{\1}", s)
    s = re.sub(r"\"\s*([^\"]*?)\s*\"", r'"\1"', s)
    s = re.sub(r"'\s*([^']*?)\s*'", r"'\1'", s)
    s = s.replace("= = = =", "====")
    s = s.replace("= = =", "===")
    s = s.replace("= =", "==")
    s = s.replace(" " + chr(176) + " ", chr(176))
    s = s.replace(" \n", "\n")
    s = s.replace("\n ", "\n")
    s = s.replace(" N ", " 1 ")
    s = s.replace(" 's", "'s")
    return s


def wikitext_pages(path):
    """wikitext_document_level's _generate_examples (a final blank page is not kept)."""
    with open(path, encoding="utf-8") as f:
        data = f.read().split("\n")
    ret, pages = [], []
    for line in data:
        rline = line.replace("= = =", "===").replace("= =", "==").strip()
        if rline.startswith("= ") and rline.strip().endswith(" ="):
            page = "\n".join(ret)
            if page.strip():
                pages.append(page)
            ret = []
        ret.append(line)
    page = "\n".join(ret)
    if page.strip():
        pages.append(page)
    return pages


def regex_filter(pattern, resp, group_select=0, fallback="[invalid]"):
    match = re.findall(pattern, resp)
    if match:
        match = match[group_select]
        if isinstance(match, tuple):
            match = [m for m in match if m][0]
        return match.strip()
    return fallback


def exact_match(pred, ref, regexes_to_ignore, ignore_case, ignore_punctuation):
    for s in regexes_to_ignore:
        pred = re.sub(s, "", pred)
        ref = re.sub(s, "", ref)
    if ignore_case:
        pred, ref = pred.lower(), ref.lower()
    if ignore_punctuation:
        table = str.maketrans("", "", string.punctuation)
        pred, ref = pred.translate(table), ref.translate(table)
    return int(pred == ref)


# ---------------------------------------------------------------- tasks
docs = jsonl("eval/hellaswag/hellaswag_val.subset.jsonl")
want = []
for d in docs:
    query = hellaswag_preprocess(d["activity_label"] + ": " + d["ctx_a"] + " " + d["ctx_b"].capitalize())
    want.append({"id": f"hellaswag/{d['ind']}", "context": query,
                 "choices": [" " + hellaswag_preprocess(e) for e in d["endings"]], "label": int(d["label"])})
expect("hellaswag", dump("hellaswag"), want)
# 2-shot: the first 100 records are the pool; each example is query + " " + gold ending + "\n\n"
pool = {w["context"] + w["choices"][w["label"]] + "\n\n" for w in want[:100]}
items = dump("hellaswag", 2, 77)
ok = len(items) == len(want) - 100
for it, w in zip(items, want[100:]):
    ctx = it["context"]
    assert ctx.endswith(w["context"]), it["id"]
    shots = ctx[: len(ctx) - len(w["context"])]
    found = [p for p in pool if shots.startswith(p) and shots[len(p):] in pool and shots[len(p):] != p]
    ok = ok and len(found) == 1 and it["choices"] == w["choices"]
print(f"hellaswag 2-shot: {'ok' if ok else 'MISMATCH'}")
failures += not ok

docs = jsonl("eval/lambada/lambada_test.jsonl")
expect("lambada_openai", dump("lambada_openai"),
       [{"id": f"lambada/{i}", "context": " ".join(d["text"].split(" ")[:-1]),
         "choices": [" " + d["text"].split(" ")[-1]], "target": None} for i, d in enumerate(docs)])

docs = jsonl("eval/piqa/valid.jsonl")
with open(os.path.join(DATA, "eval/piqa/valid-labels.lst")) as f:
    labels = [int(x) for x in f.read().split()]
expect("piqa", dump("piqa"),
       [{"id": f"piqa/{i}", "context": f"Question: {d['goal']}\nAnswer:", "choices": [" " + d["sol1"], " " + d["sol2"]],
         "label": labels[i]} for i, d in enumerate(docs)])

docs = jsonl("eval/gsm8k/test.jsonl")
expect("gsm8k", dump("gsm8k"),
       [{"id": f"gsm8k/{i}", "context": f"Question: {d['question']}\nAnswer:", "choices": [], "target": d["answer"]}
        for i, d in enumerate(docs)])
train = {f"Question: {d['question']}\nAnswer: {d['answer']}\n\n" for d in jsonl("eval/gsm8k/train.jsonl")}
items = dump("gsm8k", 5, 1234, 30)
ok = len(items) == 30
for it, d in zip(items, docs):
    ctx, text = it["context"], f"Question: {d['question']}\nAnswer:"
    parts = ctx[: len(ctx) - len(text)].split("\n\nQuestion: ")
    exs = [(p if i == 0 else "Question: " + p) + ("\n\n" if i < len(parts) - 1 else "") for i, p in enumerate(parts)]
    ok = ok and ctx.endswith(text) and len(exs) == 5 and all(e in train for e in exs) and len(set(exs)) == 5
print(f"gsm8k 5-shot: {'ok' if ok else 'MISMATCH'}")
failures += not ok

with open(os.path.join(DATA, "bias/crows-pairs/crows_pairs_anonymized.csv"), newline="", encoding="utf-8") as f:
    rows = list(csv.DictReader(f))
expect("crows_pairs_english", dump("crows_pairs_english"),
       [{"id": f"crows_pairs/{i}", "context": "", "choices": [r["sent_more"], r["sent_less"]], "group": r["bias_type"],
         "label": -1} for i, r in enumerate(rows)])

pages = wikitext_pages(os.path.join(DATA, "pretrain/wikitext-2-raw/wiki.test.raw"))
expect("wikitext", dump("wikitext"),
       [{"id": f"wikitext/{i}", "context": "", "choices": [wikitext_detokenizer(p)], "target": p}
        for i, p in enumerate(pages)])

# ---------------------------------------------------------------- GSM8K answer filters and exact_match
rnd = random.Random(5)
pieces = ["####", "#### ", " ", "\n", "$", ",", ".", "-", "The answer is", "12", "3", "1,234", "0.5", "x", "é",
          "١٢", "\t", "(", ")", "--", "$$", "....", "####-7"]
cases = []
for d in docs[:40]:
    cases.append({"gen": d["answer"], "target": d["answer"]})
    cases.append({"gen": d["answer"].split("####")[0], "target": d["answer"]})
for _ in range(2000):
    gen = "".join(rnd.choice(pieces) for _ in range(rnd.randint(0, 12)))
    tgt = rnd.choice(docs[:40])["answer"] if rnd.random() < 0.5 else "#### " + "".join(
        rnd.choice(["1", "2", ",", ".", "$", "3"]) for _ in range(rnd.randint(1, 5)))
    cases.append({"gen": gen, "target": tgt})
out = subprocess.run([DUMP, "--filters", os.path.join(ROOT, "tasks", "gsm8k.yaml"), DATA],
                     input="".join(json.dumps(c) + "\n" for c in cases).encode(), check=True,
                     capture_output=True).stdout.decode("utf-8").splitlines()
ignore = [",", "\\$", "(?s).*#### ", "\\.$"]
bad = 0
for c, line in zip(cases, out):
    got = json.loads(line)
    for name, pat, gs in [("strict-match", r"#### (\-?[0-9\.\,]+)", 0),
                          ("flexible-extract", r"(-?[$0-9.,]{2,})|(-?[0-9]+)", -1)]:
        p = regex_filter(pat, c["gen"], gs)
        em = exact_match(p, c["target"], ignore, True, False)
        if got[name] != [p, em]:
            if bad < 5:
                print(f"{name} on {c['gen']!r} / {c['target']!r}: got {got[name]}, want {[p, em]}")
            bad += 1
if len(out) != len(cases):
    bad += 1
print(f"gsm8k filters: {len(cases)} cases, {bad} mismatches")
failures += bad > 0

sys.exit(1 if failures else 0)
