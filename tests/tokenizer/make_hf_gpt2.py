#!/usr/bin/python3
"""Build a Hugging Face tokenizer.json from a tiktoken rank file.

usage: make_hf_gpt2.py OUT.json [--encoding NAME] [--ranks-dir DIR] [--no-special]
                       [--merges-format strings|pairs]

NAME: gpt2 (default), r50k_base, p50k_base, cl100k_base or o200k_base; reads
DIR/NAME.tiktoken and DIR/NAME.json (default DIR: $REPO/../shared/data/tokenizers).
Exits 77 if they are absent.

What is written (the layout of GPT-2's own tokenizer.json on the HF Hub):
  model: BPE, vocab = each token's bytes mapped through GPT-2's byte->unicode
    table ("Ġ" for space, ...) -> its rank; merges recovered from the ranks:
    the merge that creates token T (rank r) is the pair of parts that
    tiktoken's BPE, restricted to ranks < r, leaves when run on T's bytes.
    Merges are ordered by r, so HF's merge priority equals tiktoken's rank.
  pre_tokenizer: gpt2/r50k/p50k: ByteLevel(add_prefix_space=false,
    use_regex=true) - HF's built-in GPT-2 regex, the same as these encodings'
    pat_str; cl100k/o200k: Sequence[Split(Regex pat_str, Isolated),
    ByteLevel(use_regex=false)].
  decoder: ByteLevel.  No normalizer, no post-processor.
  added_tokens: the encoding's special tokens (special=true, normalized=false),
    unless --no-special.  HF matches added tokens in any input even with
    add_special_tokens=false, so compare against tiktoken's
    encode(text, "all"); with --no-special compare against encode_ordinary.
--merges-format: "strings" (default, "Ġ t" as in GPT-2's file; byte-level
  tokens never contain a space) or "pairs" (["Ġ", "t"], tokenizers >= 0.20).

Standard library only; output is deterministic (about 2 s for gpt2, 15 s for o200k).
"""
import base64
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
GPT2_REGEX_ENCODINGS = ("gpt2", "r50k_base", "p50k_base")


def bytes_to_unicode():
    """GPT-2's reversible byte -> printable unicode char table (encoder.py)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def load_ranks(path):
    ranks = {}
    with open(path, "rb") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            tok, rank = line.split()
            ranks[base64.b64decode(tok)] = int(rank)
    return ranks


def bpe_parts(ranks, token, max_rank):
    """tiktoken's byte-pair merge of `token`, using only ranks < max_rank."""
    parts = [token[i:i + 1] for i in range(len(token))]
    while True:
        best = None
        best_i = -1
        for i in range(len(parts) - 1):
            r = ranks.get(parts[i] + parts[i + 1])
            if r is not None and r < max_rank and (best is None or r < best):
                best, best_i = r, i
        if best is None:
            return parts
        parts[best_i:best_i + 2] = [parts[best_i] + parts[best_i + 1]]


def build(name, rank_dir, special=True, merges_format="strings"):
    ranks = load_ranks(os.path.join(rank_dir, name + ".tiktoken"))
    with open(os.path.join(rank_dir, name + ".json"), encoding="utf-8") as f:
        meta = json.load(f)
    b2u = bytes_to_unicode()

    def u(b):
        return "".join(b2u[x] for x in b)

    vocab = {}
    merges = []
    for tok, r in sorted(ranks.items(), key=lambda kv: kv[1]):
        vocab[u(tok)] = r
        if len(tok) == 1:
            continue
        parts = bpe_parts(ranks, tok, r)
        if len(parts) != 2:
            raise SystemExit("make_hf_gpt2: token rank %d %r does not split into 2 parts below its rank: %r"
                             % (r, tok, parts))
        a, b = u(parts[0]), u(parts[1])
        merges.append("%s %s" % (a, b) if merges_format == "strings" else [a, b])
    # The special tokens go into the model vocab too (as in OpenAI-derived
    # tokenizer.json files on the Hub): HF ignores an added token's "id" when
    # its content is not in the model vocab and numbers it vocab_size + k
    # instead, which is wrong wherever ids have holes (p50k: 50256 is
    # <|endoftext|> inside the ranks; cl100k: 100257.., 100276).  No merge
    # yields them, so BPE never produces them from text.
    for content, i in sorted(meta["special_tokens"].items(), key=lambda kv: kv[1]):
        if content in vocab:
            raise SystemExit("make_hf_gpt2: special token %r collides with a byte-level token" % content)
        vocab[content] = i
    if len(set(vocab.values())) != len(vocab):
        raise SystemExit("make_hf_gpt2: duplicate ids")

    if name in GPT2_REGEX_ENCODINGS:
        pre = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    else:
        pre = {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": meta["pat_str"]}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False},
        ]}
    added = []
    if special:
        for content, i in sorted(meta["special_tokens"].items(), key=lambda kv: kv[1]):
            added.append({"id": i, "content": content, "single_word": False, "lstrip": False,
                          "rstrip": False, "normalized": False, "special": True})
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": pre,
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                  "ignore_merges": False, "vocab": vocab, "merges": merges},
    }


def main(argv):
    args = argv[1:]
    if not args or args[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if args else 2
    out = None
    name = "gpt2"
    rank_dir = os.path.join(os.path.dirname(REPO), "shared", "data", "tokenizers")
    special = True
    mf = "strings"
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--encoding":
            name = args[i + 1]; i += 2
        elif a == "--ranks-dir":
            rank_dir = args[i + 1]; i += 2
        elif a == "--no-special":
            special = False; i += 1
        elif a == "--merges-format":
            mf = args[i + 1]; i += 2
            if mf not in ("strings", "pairs"):
                print("make_hf_gpt2: --merges-format takes strings or pairs", file=sys.stderr)
                return 2
        elif a.startswith("--") or out is not None:
            print("make_hf_gpt2: unexpected argument %r" % a, file=sys.stderr)
            return 2
        else:
            out = a; i += 1
    if out is None:
        print("make_hf_gpt2: missing OUT.json", file=sys.stderr)
        return 2
    if not os.path.exists(os.path.join(rank_dir, name + ".tiktoken")):
        print("make_hf_gpt2: SKIP: %s/%s.tiktoken not found" % (rank_dir, name), file=sys.stderr)
        return 77
    tj = build(name, rank_dir, special, mf)
    tmp = out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(tj, f, ensure_ascii=False, indent=None, separators=(",", ":"))
        f.write("\n")
    os.replace(tmp, out)
    print("make_hf_gpt2: %s: %d vocab entries, %d merges, %d added tokens -> %s"
          % (name, len(tj["model"]["vocab"]), len(tj["model"]["merges"]), len(tj["added_tokens"]), out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
