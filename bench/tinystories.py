"""TinyStories encoded with GPT-2's tokenizer: the data of the training benchmarks
that run `kiln pretrain` (bench_precision.py, bench_dp.py), from ../shared/data."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "..", "shared", "data")


def gpt2_shards(kiln, work):
    """Encodes the stories into work/data and returns that folder; exits when the
    shared data folder is absent."""
    text = os.path.join(DATA, "pretrain", "tinystories", "TinyStories-train.head-part1.txt")
    tok = os.path.join(DATA, "tokenizers", "gpt2.tiktoken")
    for f in (text, tok):
        if not os.path.exists(f):
            sys.exit(f"{f} not found (the shared data folder is absent)")
    data = os.path.join(work, "data")
    subprocess.run([kiln, "tokenizer", "encode-corpus", "--allow-special", "-t", tok, "-o", data, text], check=True,
                   stdout=subprocess.DEVNULL)
    return data
