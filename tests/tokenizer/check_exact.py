#!/usr/bin/python3
"""Exactness of kiln's tokenizer against the real tiktoken and HF tokenizers (npm).

    check_exact.py KILN [--work DIR] [--big]

1. make_corpus.py writes the corpus (real text from ../shared/data plus CJK,
   emoji, code, whitespace runs, digits, contractions, Unicode spaces, special
   token text, random Unicode); its valid-UTF-8 samples go into one JSONL.
2. For gpt2, r50k_base, p50k_base, cl100k_base and o200k_base, kiln's ids
   (`kiln tokenizer encode -t RANKFILE texts.jsonl`) must equal tiktoken's,
   for encode_ordinary (kiln --special-as-text) and encode(text, "all")
   (kiln --allow-special).
3. HF tokenizers must give kiln's ids for tokenizer.json files kiln writes:
   cl100k and gpt2 converted from their rank files, and a tokenizer kiln trains.
Invalid UTF-8 has no reference (both libraries take Unicode strings); kiln's
lossless handling of it is tested in test_tokenizer.
Prints a line per check and "N passed, M failed"; exit 77 when node, the npm
packages or the shared data are missing.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DATA = os.path.join(os.path.dirname(REPO), "shared", "data")
RANKS = os.path.join(DATA, "tokenizers")
ENCODINGS = ["gpt2", "r50k_base", "p50k_base", "cl100k_base", "o200k_base"]


def skip(msg):
    print(f"SKIP: {msg}")
    sys.exit(77)


def lines(cmd, **kw):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout
    return out.splitlines()


def compare(name, ours, theirs, texts):
    if len(ours) != len(theirs):
        return f"{name}: {len(ours)} results from kiln, {len(theirs)} from the reference"
    for i, (a, b) in enumerate(zip(ours, theirs)):
        if json.loads(a) != json.loads(b):
            x, y = json.loads(a), json.loads(b)
            k = next((j for j in range(min(len(x), len(y))) if x[j] != y[j]), min(len(x), len(y)))
            return (f"{name}: sample {i} ({texts[i][:60]!r}...) differs at token {k}: "
                    f"kiln {x[max(0, k - 2):k + 3]} reference {y[max(0, k - 2):k + 3]}")
    return None


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: check_exact.py KILN [--work DIR]")
    kiln = sys.argv[1]
    if not shutil.which("node"):
        skip("node not found")
    if not os.path.isdir(os.path.join(HERE, "node_modules", "tiktoken")):
        skip("tests/tokenizer/node_modules missing (scripts/install-deps.sh installs it)")
    if not os.path.isfile(os.path.join(RANKS, "gpt2.tiktoken")):
        skip(f"{RANKS} not found (the shared data folder is absent)")
    work = sys.argv[sys.argv.index("--work") + 1] if "--work" in sys.argv else tempfile.mkdtemp()
    ref = [shutil.which("node"), os.path.join(HERE, "reference.mjs")]
    try:
        big = ["--big"] if "--big" in sys.argv else []  # + ~17 MB of whole files
        subprocess.run([sys.executable, os.path.join(HERE, "make_corpus.py"), os.path.join(work, "corpus")] + big,
                       check=True, capture_output=True)
        texts = []
        with open(os.path.join(work, "corpus", "index.jsonl")) as f:
            for line in f:
                s = json.loads(line)
                if s["utf8"]:
                    with open(os.path.join(work, "corpus", s["file"]), "rb") as g:
                        texts.append(g.read().decode("utf-8"))
        jl = os.path.join(work, "texts.jsonl")
        with open(jl, "w", encoding="utf-8") as f:
            for t in texts:
                f.write(json.dumps({"text": t}, ensure_ascii=False) + "\n")
        print(f"{len(texts)} samples, {sum(len(t.encode()) for t in texts)} bytes")
        passed = failed = 0

        def report(name, problem):
            nonlocal passed, failed
            if problem:
                failed += 1
                print(f"FAIL {problem}")
            else:
                passed += 1
                print(f"ok   {name}")

        for enc in ENCODINGS:
            rank = os.path.join(RANKS, enc + ".tiktoken")
            for kflag, rflag in (("--special-as-text", "none"), ("--allow-special", "all")):
                ours = lines([kiln, "tokenizer", "encode", "-t", rank, kflag, jl])
                theirs = lines(ref + ["tiktoken-batch", enc, jl, "--allowed-special", rflag])
                report(f"{enc} {kflag} == tiktoken", compare(f"{enc} {kflag}", ours, theirs, texts))
        # HF tokenizers on tokenizer.json files that kiln writes
        hf = {}
        for enc in ("gpt2", "cl100k_base"):
            hf[enc] = os.path.join(work, enc + ".json")
            subprocess.run([kiln, "tokenizer", "convert", "-t", os.path.join(RANKS, enc + ".tiktoken"), "-o", hf[enc]],
                           check=True, capture_output=True)
        hf["trained"] = os.path.join(work, "trained.json")
        subprocess.run([kiln, "tokenizer", "train", "--vocab-size", "3000", "--pattern", "cl100k", "--special",
                        "<|endoftext|>", "--output", hf["trained"], jl], check=True, capture_output=True)
        for name, path in hf.items():
            ours = lines([kiln, "tokenizer", "encode", "-t", path, "--allow-special", jl])
            theirs = lines(ref + ["hf-batch", path, jl])
            report(f"HF tokenizers on kiln's {name} tokenizer.json == kiln", compare(f"hf {name}", ours, theirs, texts))
        print(f"{passed} passed, {failed} failed")
        sys.exit(1 if failed else 0)
    finally:
        if "--work" not in sys.argv:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
