#!/usr/bin/env python3
"""Quick checks of `kiln data` around the edges (issue 12), on a few small
documents: --rejects of the corpus stages run alone, per-stage rejects in a
pipeline, checks made before any work, unknown source names, skipped lines in
the reports, the out_dir lock, and the manifest's tokenizer path.
Usage: test_pipeline_checks.py KILN SOURCE_ROOT
"""
import fcntl, json, os, shutil, subprocess, sys, tempfile

kiln, root = os.path.abspath(sys.argv[1]), sys.argv[2]
tmp = tempfile.mkdtemp(prefix="kiln_pipechecks_")
failures = []


def run(*args, cwd=tmp):
    return subprocess.run([kiln, *args], capture_output=True, text=True, cwd=cwd)


def check(cond, what, detail=""):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)
        if detail:
            print("     " + str(detail)[:2000])


def jsonl(path):
    return [json.loads(l) for l in open(path, encoding="utf-8") if l.strip()]


def write(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau".split()
story = lambda i: " ".join(words[(i * 7 + k * 3) % len(words)] + str(k % 5) for k in range(120))
boiler = "This text is free software licensed under the same terms as everything."
docs = [{"id": f"d{i}", "text": story(i)} for i in range(6)]
docs.append({"id": "dup", "text": docs[0]["text"]})  # an exact duplicate
docs.append({"id": "near", "text": docs[1]["text"].replace("alpha", "omega", 1)})  # a near duplicate
docs += [{"id": f"b{i}", "text": boiler + "\n" + story(10 + i)} for i in range(3)]  # a repeated line
write(os.path.join(tmp, "in.jsonl"), "".join(json.dumps(d) + "\n" for d in docs) + "not json\n")

# --- 1. --rejects for the corpus stages run alone
p = run("data", "exact_dedup", "--rejects", "r.jsonl", "-o", "o.jsonl", "--report", "rep.json", "in.jsonl")
rej = jsonl(os.path.join(tmp, "r.jsonl")) if p.returncode == 0 else []
check(p.returncode == 0 and [(r["id"], r["drop"]) for r in rej] == [("dup", "exact_dedup:duplicate")],
      "exact_dedup --rejects keeps the duplicate with its reason", (p.stderr, rej))
rep = json.load(open(os.path.join(tmp, "rep.json"))) if p.returncode == 0 else {}
check(rep.get("skipped") == 1 and "in.jsonl:12" in rep.get("skip_examples", [""])[0],
      "a corpus stage's report counts the skipped line", rep)
check("skipped input" in p.stderr, "the summary shows the skipped line", p.stderr)

p = run("data", "minhash_dedup", "--rejects", "r.jsonl", "-o", "o.jsonl", "in.jsonl")
rej = jsonl(os.path.join(tmp, "r.jsonl")) if p.returncode == 0 else []
check(p.returncode == 0 and {r["id"] for r in rej} >= {"dup", "near"} and
      all(r["drop"] == "minhash_dedup:near_duplicate" for r in rej), "minhash_dedup --rejects", (p.stderr, rej))

p = run("data", "line_dedup", "--min-words", "5", "--rejects", "r.jsonl", "-o", "o.jsonl", "in.jsonl")
rej = jsonl(os.path.join(tmp, "r.jsonl")) if p.returncode == 0 else []
check(p.returncode == 0 and [(r["id"], r["text"], r["drop"]) for r in rej] ==
      [("dup", docs[0]["text"], "line_dedup:too_short")] +  # its only line is d0's
      [(f"b{i}", boiler + "\n", "line_dedup:repeated_lines") for i in (1, 2)],
      "line_dedup --rejects keeps the removed lines under their document's id", (p.stderr, rej))
p = run("data", "line_dedup", "--min-words", "500", "--rejects", "r.jsonl", "-o", "o.jsonl", "in.jsonl")
rej = jsonl(os.path.join(tmp, "r.jsonl")) if p.returncode == 0 else []
check(p.returncode == 0 and [(r["id"], r["drop"]) for r in rej] == [("dup", "line_dedup:too_short"),
                                                                      ("b1", "line_dedup:too_short"),
                                                                      ("b2", "line_dedup:too_short")]
      and rej[1]["text"].startswith(boiler), "line_dedup --rejects keeps a dropped document whole", (p.stderr, rej))

two = [dict(d, source="a") for d in docs[:4]] + [dict(d, source="b") for d in docs[4:]]
write(os.path.join(tmp, "two.jsonl"), "".join(json.dumps(d) + "\n" for d in two))
p = run("data", "sample", "--weights", "a=1", "--weights", "b=0", "--rejects", "r.jsonl", "-o", "o.jsonl", "two.jsonl")
rej = jsonl(os.path.join(tmp, "r.jsonl")) if p.returncode == 0 else []
check(p.returncode == 0 and len(rej) == len(two) - 4 and all(r["drop"] == "sample:downsampled" and r["source"] == "b"
                                                             for r in rej), "sample --rejects", (p.stderr, rej))
p = run("data", "sample", "--weights", "typo=2", "-o", "o.jsonl", "two.jsonl")
check(p.returncode != 0 and "'typo'" in p.stderr and "a, b" in p.stderr,
      "sample alone: a weight for a source the input lacks is an error naming the ones it has", p.stderr)

# --- 2. a pipeline keeps each stage's rejects when asked
src = os.path.join(tmp, "in.jsonl")


def pipeline(name, stages, output="{tokenizer: bytes, shard_tokens: 1024, val_fraction: 0}", extra=""):
    path = os.path.join(tmp, name + ".yaml")
    write(path, f"out_dir: {name}\nsources:\n  - {{name: web, format: jsonl, paths: [{src}]}}\n"
                f"  - {{name: books, format: jsonl, paths: [{src}]}}\n"
                f"stages:\n{stages}output: {output}\n{extra}")
    return path


path = pipeline("rej", "  - clean\n  - gopher_quality: {rejects: true, min_doc_words: 100000}\n"
                       "  - exact_dedup: {rejects: true}\n  - line_dedup\n")
p = run("data", "run", path)
rd = os.path.join(tmp, "rej", "rejects")
names = sorted(os.listdir(rd)) if os.path.isdir(rd) else []
check(p.returncode == 0 and names == ["02-gopher_quality.jsonl", "03-exact_dedup.jsonl"],
      "rejects: true writes out_dir/rejects/NN-STAGE.jsonl for those stages only", (p.stderr, names))
if p.returncode == 0:
    g = jsonl(os.path.join(rd, "02-gopher_quality.jsonl"))
    check(len(g) == 2 * len(docs) and all(r["drop"].startswith("gopher_quality:") for r in g),
          "a per-document stage's rejects in a pipeline", g[:1])
    # gopher dropped everything, so exact_dedup saw nothing
    check(jsonl(os.path.join(rd, "03-exact_dedup.jsonl")) == [], "a corpus stage's rejects in a pipeline")
    report = json.load(open(os.path.join(tmp, "rej", "report.json")))
    steps = {s["stage"]: s for s in report["steps"]}
    check(steps["sources"]["skipped"] == 2 and all("skipped" in s for s in report["steps"]),
          "every step of report.json has its skipped count", [(s["stage"], s.get("skipped")) for s in report["steps"]])
    check("skipped input" in open(os.path.join(tmp, "rej", "report.txt")).read(), "report.txt shows skipped lines")
path = pipeline("rej2", "  - exact_dedup: {rejects: true}\n")
p = run("data", "run", path)
check(p.returncode == 0 and [r["id"] for r in jsonl(os.path.join(tmp, "rej2", "rejects", "01-exact_dedup.jsonl"))]
      == ["dup"] + [d["id"] for d in docs], "exact_dedup in a pipeline: the second source's copies are rejects",
      p.stderr)

# --- 3. checks before any work: nothing is read or written, the error names file:line
for name, stages, output, want in [
    ("c1", "  - clean\n", "{shard_tokens: 5}", "c1.yaml:7: output: shard_tokens must be at least 1024"),
    ("c2", "  - clean\n", "{val_fraction: 1.5}", "c2.yaml:7: output: val_fraction must be in [0, 1)"),
    ("c3", "  - clean\n", "{tokenizer: no/such/tokenizer.json}", "c3.yaml:7: output.tokenizer"),
    ("c4", "  - clean\n  - sample: {max_epochs: 0}\n", "{}", "max_epochs"),
    ("c5", "  - gopher_quality: {sources: [web, typo]}\n", "{}", "c5.yaml:6: gopher_quality: sources: unknown source 'typo' (the sources are: web, books)"),
    ("c6", "  - sample: {weights: [web=1, typo=2]}\n", "{}", "c6.yaml:6: sample: weights: unknown source 'typo' (the sources are: web, books)"),
]:
    path = pipeline(name, stages, output)
    p = run("data", "run", path)
    check(p.returncode == 1 and want in p.stderr and "reading" not in p.stderr and
          not os.path.exists(os.path.join(tmp, name)), f"{name}: {want}", p.stderr)

# a source's format option is checked before the first source is read
path = os.path.join(tmp, "c7.yaml")
write(path, f"out_dir: c7\nsources:\n  - {{name: web, format: jsonl, paths: [{src}]}}\n"
            f"  - {{name: b, format: text, paths: [{src}], splitt: blank}}\n")
p = run("data", "run", path)
check(p.returncode == 1 and "splitt" in p.stderr and "c7.yaml:4" in p.stderr and
      not os.path.exists(os.path.join(tmp, "c7")), "c7: a bad source option fails before any work", p.stderr)

# --- 4. one pipeline per out_dir
path = pipeline("locked", "  - clean\n")
os.makedirs(os.path.join(tmp, "locked"))
holder = open(os.path.join(tmp, "locked", "lock"), "w")
fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
p = run("data", "run", path)
check(p.returncode == 1 and f"in use by pid {os.getpid()}" in p.stderr and
      not os.path.exists(os.path.join(tmp, "locked", "work")), "a locked out_dir is refused, naming the holder",
      p.stderr)
holder.close()
p = run("data", "run", path)
check(p.returncode == 0, "and taken once free", p.stderr)

# one encode-corpus per corpus directory
write(os.path.join(tmp, "t0.txt"), story(2))
os.makedirs(os.path.join(tmp, "enc"))
holder = open(os.path.join(tmp, "enc", "lock"), "w")
fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
p = run("tokenizer", "encode-corpus", "--bytes", "-o", "enc", "t0.txt")
check(p.returncode != 0 and f"in use by pid {os.getpid()}" in p.stderr and
      not os.path.exists(os.path.join(tmp, "enc", "manifest.json")), "a locked encode-corpus directory is refused",
      p.stderr)
holder.close()
p = run("tokenizer", "encode-corpus", "--bytes", "-o", "enc", "t0.txt")
check(p.returncode == 0 and os.path.exists(os.path.join(tmp, "enc", "manifest.json")), "and written once free",
      p.stderr)

# --- 5. a document's id is its path, tidied: no "sub/.." in it
os.makedirs(os.path.join(tmp, "sub"))
write(os.path.join(tmp, "t.txt"), story(3))
path = os.path.join(tmp, "ids.yaml")
write(path, f"out_dir: ids\nsources:\n  - {{name: t, format: text, paths: [{tmp}/sub/../t.txt]}}\n"
            "output: {shard_tokens: 1024, val_fraction: 0}\n")
p = run("data", "run", path)
ids = [d[1] for sh in json.load(open(os.path.join(tmp, "ids", "manifest.json")))["shards"] for d in sh["docs"]] \
    if p.returncode == 0 else []
check(ids == [os.path.join(tmp, "t.txt")], "source paths are tidied in document ids", (p.stderr, ids))

# --- 6. the manifest's tokenizer path resolves from the manifest's directory
gpt2 = os.path.join(root, "..", "shared", "data", "tokenizers", "gpt2.tiktoken")
if os.path.exists(gpt2):
    os.makedirs(os.path.join(tmp, "tok"))
    shutil.copy(gpt2, os.path.join(tmp, "tok", "gpt2.tiktoken"))
    shutil.copy(gpt2[:-len(".tiktoken")] + ".json", os.path.join(tmp, "tok", "gpt2.json"))
    path = pipeline("bpe", "  - clean\n", "{tokenizer: tok/gpt2.tiktoken, shard_tokens: 1024, val_fraction: 0}")
    p = run("data", "run", path)
    m = json.load(open(os.path.join(tmp, "bpe", "manifest.json"))) if p.returncode == 0 else {}
    tok = m.get("tokenizer", "")
    check(p.returncode == 0 and os.path.isfile(os.path.join(tmp, "bpe", tok)) and not os.path.isabs(tok),
          "manifest.json names the tokenizer relative to its own directory", (p.stderr, tok))
else:
    print("skip: no gpt2.tiktoken in ../shared/data")

shutil.rmtree(tmp)
if failures:
    sys.exit(f"{len(failures)} check(s) failed")
print("pipeline checks: ok")
