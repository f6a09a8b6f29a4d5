#!/usr/bin/env python3
"""Data pipeline throughput on the Debian corpus (kiln data gather debian).

For every stage run alone (`kiln data STAGE IN -o /dev/null`) on 1 and 2
threads: wall-clock MB/s of input (JSONL read + stage + JSONL write), the
stage's own MB/s per core (thread-seconds inside the stage, from --report),
and peak RSS; then the end-to-end `kiln data run configs/debian-pipeline.yaml`.
Prints a markdown table for docs/benchmarks.md. Medians of --reps runs.

With --baseline (another kiln binary, e.g. a build of an earlier commit) every
run alternates the two, and the table gains the baseline's wall MB/s and the
ratio: a refactor's no-slowdown check.

Usage: bench_data.py [--kiln build/kiln] [--baseline OTHER] [--reps 3] [--max-mb 16]
"""
import argparse, json, os, shutil, statistics, subprocess, sys, tempfile, time

import machine  # bench/machine.py: lscpu model and flags

ap = argparse.ArgumentParser()
ap.add_argument("--kiln", default="build/kiln")
ap.add_argument("--reps", type=int, default=3)
ap.add_argument("--max-mb", type=float, default=16)
ap.add_argument("--baseline")
args = ap.parse_args()
kiln = os.path.abspath(args.kiln)
base = os.path.abspath(args.baseline) if args.baseline else None
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
shared = os.path.join(root, "..", "shared", "data")
tmp = tempfile.mkdtemp(prefix="kiln_bench_data_")


def run(cmd, threads, **kw):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    err = p.stderr.read().decode()
    if status != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{err}")
    return wall, ru.ru_maxrss / 1024


raw = os.path.join(tmp, "raw")
subprocess.run([kiln, "data", "gather", "debian", "-o", raw, "--max-mb", str(args.max_mb)], check=True,
               stderr=subprocess.DEVNULL)
corpus = os.path.join(tmp, "corpus.jsonl")
with open(corpus, "wb") as out:
    for name in sorted(os.listdir(raw)):
        out.write(open(os.path.join(raw, name), "rb").read())
size = os.path.getsize(corpus)
text_mb = None

stages = [("clean", []), ("pii", []), ("gopher_quality", []), ("gopher_repetition", []), ("c4", []),
          ("augment_gender", []), ("exact_dedup", []), ("minhash_dedup", []), ("line_dedup", [])]
ldnoobw = os.path.join(shared, "toxicity", "ldnoobw", "en")
if os.path.exists(ldnoobw):
    stages.append(("wordlist", ["--words", ldnoobw]))
evals = [f"{t}={os.path.join(shared, 'eval', p)}" for t, p in
         [("hellaswag", "hellaswag/hellaswag_val.subset.jsonl"), ("lambada", "lambada/lambada_test.jsonl"),
          ("gsm8k", "gsm8k/test.jsonl")]]
if all(os.path.exists(e.split("=", 1)[1]) for e in evals):
    stages.append(("decontaminate", sum((["--eval", e] for e in evals), [])))

t0 = time.perf_counter()
run(["cat", corpus], 1)
cat_s = time.perf_counter() - t0
print("\n".join(machine.lscpu_lines()))
print(f"# corpus: {size / 1e6:.1f} MB of JSONL ({len(os.listdir(raw))} sources); "
      f"cat (page cache) {size / 1e6 / cat_s:.0f} MB/s; {args.reps} reps, medians\n")
head = "| stage | MB/s, 1 thread (wall) | MB/s, 2 threads (wall) | stage MB/s per core | peak RSS MB |"
if base:
    head += " baseline MB/s, 1 / 2 threads (wall) | kiln / baseline, 1 / 2 threads |"
print(head)
print("|---" + "|---:" * (head.count("|") - 2) + "|")
for name, extra in stages:
    row, brow = [], []
    for threads in (1, 2):
        walls, bwalls, rss, core = [], [], 0, []
        for _ in range(args.reps):  # alternate, so drift on a shared machine hits both
            rep = os.path.join(tmp, "rep.json")
            w, m = run([kiln, "data", name, *extra, "--report", rep, "--work-dir", tmp, "-o", "/dev/null", corpus],
                       threads)
            walls.append(w)
            rss = max(rss, m)
            r = json.load(open(rep))
            if r["seconds"] > 0:
                core.append(r["bytes_in"] / r["seconds"] / 1e6)
            if base:
                bwalls.append(run([base, "data", name, *extra, "--work-dir", tmp, "-o", "/dev/null", corpus],
                                  threads)[0])
        row.append((size / 1e6 / statistics.median(walls), rss, statistics.median(core) if core else 0))
        if base:
            brow.append(size / 1e6 / statistics.median(bwalls))
    line = f"| {name} | {row[0][0]:.1f} | {row[1][0]:.1f} | {row[0][2]:.1f} | {max(row[0][1], row[1][1]):.0f} |"
    if base:
        line += f" {brow[0]:.1f} / {brow[1]:.1f} | {row[0][0] / brow[0]:.2f} / {row[1][0] / brow[1]:.2f} |"
    print(line, flush=True)

# end to end: the README's pipeline on the same corpus
pipe = os.path.join(tmp, "pipe.yaml")
text = open(os.path.join(root, "configs", "debian-pipeline.yaml")).read()
text = text.replace("runs/corpus/raw", raw).replace("runs/corpus/tokens", os.path.join(tmp, "tokens"))
open(pipe, "w").write(text)
for threads in (1, 2):
    walls, bwalls, rss = [], [], 0
    for _ in range(args.reps):
        shutil.rmtree(os.path.join(tmp, "tokens"), ignore_errors=True)
        w, m = run([kiln, "data", "run", pipe], threads)
        walls.append(w)
        rss = max(rss, m)
        if base:
            shutil.rmtree(os.path.join(tmp, "tokens"), ignore_errors=True)
            bwalls.append(run([base, "data", "run", pipe], threads)[0])
    line = (f"\nend to end (configs/debian-pipeline.yaml, {threads} thread(s)): {statistics.median(walls):.1f} s, "
            f"{size / 1e6 / statistics.median(walls):.1f} MB/s, peak RSS {rss:.0f} MB")
    if base:
        line += f"; baseline {statistics.median(bwalls):.1f} s"
    print(line)
shutil.rmtree(tmp)
