#!/usr/bin/python3
"""Tokenizer speed, kiln against tiktoken and HF tokenizers (npm), in one run.

    /usr/bin/python3 bench/bench_tokenizer.py [--repeats 3]

Encoding: the ~11 MB of shared text that tests/tokenizer/bench.mjs uses, one
thread (kiln also on all threads, documents of 64 KiB), gpt2 / cl100k / o200k;
HF runs kiln's tokenizer.json conversion of each rank file (identical ids).
Training: a 30k vocabulary (HF's default BpeTrainer; kiln --vocab-size 30000,
gpt2 pattern) on ~21 MB and on ~107 MB (the 21 MB five times), alternating
kiln and HF; wall time and peak RSS of each process. Medians of --repeats.
"""
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

import machine  # bench/machine.py: lscpu model and flags

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DATA = os.path.join(os.path.dirname(ROOT), "shared", "data")
BUILD = os.path.join(ROOT, "build")
ENCODE_FILES = ["pretrain/tinyshakespeare/input.txt", "pretrain/wikitext-2-raw/wiki.test.raw",
                "pretrain/wikitext-2/valid.txt", "pretrain/wikitext-2/test.txt",
                "pretrain/tinystories/TinyStories-train.head-part1.txt", "pretrain/code/linux-kernel.txt",
                "sft/alpaca/alpaca_5000.json"]
TRAIN_EXTRA = ["eval/gsm8k/train.jsonl", "eval/lambada/lambada_test.jsonl", "sft/codealpaca/code_alpaca_2k.json",
               "toxicity/davidson-hate-offensive/labeled_data.csv", "bias/crows-pairs/crows_pairs_anonymized.csv",
               "eval/piqa/valid.jsonl", "sft/oasst/en_100_tree.jsonl"]


def timed(cmd, env=None):
    """Runs cmd under /usr/bin/time; returns (stdout, peak RSS in MB)."""
    r = subprocess.run(["/usr/bin/time", "-f", "MAXRSS %M"] + cmd, capture_output=True, text=True, env=env, check=True)
    rss = int(re.search(r"MAXRSS (\d+)", r.stderr).group(1)) / 1024
    return r.stdout, rss


def main():
    repeats = int(sys.argv[sys.argv.index("--repeats") + 1]) if "--repeats" in sys.argv else 3
    w = tempfile.mkdtemp()
    enc_file = os.path.join(w, "encode.txt")
    with open(enc_file, "wb") as f:
        for p in ENCODE_FILES:
            f.write(open(os.path.join(DATA, p), "rb").read())
    mb = os.path.getsize(enc_file) / 1e6
    print("\n".join(machine.lscpu_lines()))
    cpu = machine.cpu_model()
    print(f"# {time.strftime('%Y-%m-%d')} | {cpu} | {os.cpu_count()} cores")
    print(f"## encoding {mb:.1f} MB, MB/s (median of {repeats})")
    print(f"{'encoding':<12} {'kiln 1 thr':>10} {'kiln all':>9} {'tiktoken':>9} {'HF':>7} {'kiln/tiktoken':>14} {'kiln/HF':>8}")
    env1 = dict(os.environ, RAYON_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    for enc in ("gpt2", "cl100k_base", "o200k_base"):
        rank = os.path.join(DATA, "tokenizers", enc + ".tiktoken")
        hfdir = os.path.join(w, "hf")
        os.makedirs(hfdir, exist_ok=True)
        subprocess.run([os.path.join(BUILD, "kiln"), "tokenizer", "convert", "-t", rank, "-o",
                        os.path.join(hfdir, enc + ".json")], check=True, capture_output=True)
        k1, ka, tk, hf = [], [], [], []
        for _ in range(repeats):
            out = subprocess.run([os.path.join(BUILD, "bench", "bench_tokenizer"), "encode", rank, enc_file, "3"],
                                 check=True, capture_output=True, text=True).stdout
            j = json.loads(out)
            k1.append(j["mb_per_s_1thread"])
            ka.append(j["mb_per_s_all_threads"])
            out = subprocess.run(["node", os.path.join(ROOT, "tests", "tokenizer", "bench.mjs"), "--encodings", enc,
                                  "--hf-dir", hfdir, "--repeat", "1", enc_file], check=True, capture_output=True,
                                 text=True, env=env1).stdout
            nums = re.findall(r"([0-9.]+) MB/s", out)
            tk.append(float(nums[0]))
            hf.append(float(nums[1]) if len(nums) > 1 else float("nan"))
        m = {k: statistics.median(v) for k, v in (("k1", k1), ("ka", ka), ("tk", tk), ("hf", hf))}
        print(f"{enc:<12} {m['k1']:10.1f} {m['ka']:9.1f} {m['tk']:9.1f} {m['hf']:7.1f} {m['k1'] / m['tk']:13.1f}x "
              f"{m['k1'] / m['hf']:7.1f}x")
    # training corpora
    small = os.path.join(w, "train21.txt")
    with open(small, "wb") as f:
        for p in ENCODE_FILES + TRAIN_EXTRA:
            f.write(open(os.path.join(DATA, p), "rb").read())
    big = os.path.join(w, "train107.txt")
    with open(big, "wb") as f:
        data = open(small, "rb").read()
        for _ in range(5):
            f.write(data)
    print(f"## training a 30k vocabulary, 2 threads, seconds and peak MB (median of {repeats})")
    print(f"{'corpus':<10} {'kiln s':>7} {'kiln MB':>8} {'HF s':>7} {'HF MB':>7} {'HF/kiln time':>13}")
    for path in (small, big):
        ks, km, hs, hm = [], [], [], []
        for _ in range(repeats):
            out, rss = timed([os.path.join(BUILD, "bench", "bench_tokenizer"), "train", "30000", "gpt2", path])
            ks.append(json.loads(out)["seconds"])
            km.append(rss)
            out, rss = timed(["node", os.path.join(HERE, "hf_train.mjs"), path])
            hs.append(json.loads(out.strip().splitlines()[-1])["seconds"])
            hm.append(rss)
        m = [statistics.median(v) for v in (ks, km, hs, hm)]
        print(f"{os.path.getsize(path) / 1e6:6.1f} MB {m[0]:7.2f} {m[1]:8.0f} {m[2]:7.2f} {m[3]:7.0f} {m[2] / m[0]:12.1f}x")


if __name__ == "__main__":
    main()
