#!/usr/bin/python3
"""Write kiln's tokenizer exactness corpus: real text slices + synthetic hard cases.

usage: make_corpus.py OUTDIR [--data DIR] [--big] [--seed N] [--require-data]

OUTDIR/samples/NNNN-GROUP-NAME.txt   one sample per file, its exact bytes (no
                                     trailing newline is added)
OUTDIR/index.jsonl                   one JSON object per sample, in file order:
    {"name", "file" (relative to OUTDIR), "kind": "real"|"synthetic"|"invalid",
     "group", "bytes", "utf8" (bool: valid UTF-8), "sha256", "source"}

Samples with "kind": "invalid" are deliberately not valid UTF-8 (they have
"utf8": false); tiktoken and HF tokenizers take Unicode strings, so there is
no reference for them unless you choose a repair policy (reference.mjs --lossy
repairs the WHATWG way, U+FFFD per maximal invalid subpart).

Real text comes from DATA (default: $REPO/../shared/data, i.e. the folder next
to the repository); if it is absent the real samples are skipped with a
warning and only synthetic ones are written (exit status still 0; with
--require-data it exits 77 instead, writing nothing).  --big also
writes whole files (about 10 MB more), for timing.

Standard library only; the output depends only on the data files and --seed.
"""
import gzip
import hashlib
import json
import os
import random
import sys
import unicodedata

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


class Corpus:
    def __init__(self, outdir):
        self.outdir = outdir
        self.sdir = os.path.join(outdir, "samples")
        os.makedirs(self.sdir, exist_ok=True)
        for f in os.listdir(self.sdir):          # stale samples from an older run
            if f.endswith(".txt"):
                os.unlink(os.path.join(self.sdir, f))
        self.index = []
        self.names = set()

    def add(self, group, name, data, kind="synthetic", source=None):
        if isinstance(data, str):
            data = data.encode("utf-8")          # raises on lone surrogates: intended
        name = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in name)
        full = "%s-%s" % (group, name)
        assert full not in self.names, full
        self.names.add(full)
        fn = "samples/%04d-%s.txt" % (len(self.index), full)
        with open(os.path.join(self.outdir, fn), "wb") as f:
            f.write(data)
        try:
            data.decode("utf-8")
            ok = True
        except UnicodeDecodeError:
            ok = False
        if kind != "invalid":
            assert ok, full
        self.index.append({"name": full, "file": fn, "kind": kind, "group": group,
                           "bytes": len(data), "utf8": ok,
                           "sha256": hashlib.sha256(data).hexdigest(), "source": source})

    def finish(self):
        with open(os.path.join(self.outdir, "index.jsonl"), "w", encoding="utf-8") as f:
            for e in self.index:
                f.write(json.dumps(e, ensure_ascii=True, sort_keys=True) + "\n")


# ---------------------------------------------------------------- real text

def read_text(path):
    with open(path, "rb") as f:
        b = f.read()
    if path.endswith(".gz"):
        b = gzip.decompress(b)
    return b.decode("utf-8")


def slices(text, n, size):
    """n slices of `size` characters at evenly spaced character offsets."""
    out = []
    if len(text) <= size:
        return [(0, text)]
    for k in range(n):
        off = (len(text) - size) * k // max(1, n - 1)
        out.append((off, text[off:off + size]))
    return out


def add_real(c, data, big):
    def src(rel):
        return os.path.join(data, rel)

    plain = [
        ("shakespeare", "pretrain/tinyshakespeare/input.txt"),
        ("wikitext_raw", "pretrain/wikitext-2-raw/wiki.test.raw"),     # CRLF
        ("wikitext_tok", "pretrain/wikitext-2/valid.txt"),             # " @-@ ", <unk>
        ("tinystories", "pretrain/tinystories/TinyStories-train.head-part1.txt"),  # <|endoftext|>
        ("linux", "pretrain/code/linux-kernel.txt"),
        ("wet", "web/commoncrawl-whirlwind/whirlwind.warc.wet"),
        ("alpaca", "sft/alpaca/alpaca_5000.json"),
        ("codealpaca", "sft/codealpaca/code_alpaca_2k.json"),
        ("oasst", "sft/oasst/en_100_tree.jsonl"),
        ("selfinstruct", "sft/self-instruct/user_oriented_instructions.jsonl"),
        ("gsm8k", "eval/gsm8k/test.jsonl"),
        ("lambada", "eval/lambada/lambada_test.jsonl"),
        ("hellaswag", "eval/hellaswag/hellaswag_val.subset.jsonl"),
        ("piqa", "eval/piqa/valid.jsonl"),
        ("hh_helpful", "preference/hh-rlhf/helpful-base/test.jsonl.gz"),
    ]
    texts = {}
    for key, rel in plain:
        p = src(rel)
        if not os.path.exists(p):
            print("make_corpus: warning: %s missing, skipped" % p, file=sys.stderr)
            continue
        t = read_text(p)
        texts[key] = (rel, t)
        for off, s in slices(t, 4, 16384):
            c.add("real", "%s@%d" % (key, off), s, "real", "%s chars %d+%d" % (rel, off, len(s)))

    # Decoded gsm8k / oasst fields: real text without JSON escaping (curly quotes, math, code).
    if "gsm8k" in texts:
        recs = [json.loads(l) for l in texts["gsm8k"][1].splitlines()[:120]]
        s = "\n\n".join(r["question"] + "\n" + r["answer"] for r in recs)
        c.add("real", "gsm8k_fields", s, "real", "eval/gsm8k/test.jsonl records 0-119, question+answer")
    if "oasst" in texts:
        out = []

        def walk(m):
            out.append(m["text"])
            for r in m.get("replies", []):
                walk(r)
        for l in texts["oasst"][1].splitlines()[:8]:
            walk(json.loads(l)["prompt"])
        c.add("real", "oasst_fields", "\n\n".join(out), "real", "sft/oasst/en_100_tree.jsonl trees 0-7, message texts")

    # HTML pages (the most non-ASCII ones: Korean, Portuguese, ...) and article bodies.
    hdir = src("web/article-extraction-benchmark/html")
    pages = []
    if os.path.isdir(hdir):
        for f in sorted(os.listdir(hdir)):
            if f.endswith(".html.gz"):
                t = read_text(os.path.join(hdir, f))
                pages.append((-sum(1 for ch in t if ord(ch) > 127), f, t))
        pages.sort()
        for _, f, t in pages[:6]:
            for off, s in slices(t, 2, 16384):
                c.add("real", "html_%s@%d" % (f[:12], off), s, "real",
                      "web/article-extraction-benchmark/html/%s chars %d+%d" % (f, off, len(s)))
    else:
        print("make_corpus: warning: %s missing, skipped" % hdir, file=sys.stderr)
    gt = src("web/article-extraction-benchmark/ground-truth.json")
    if os.path.exists(gt):
        g = json.loads(read_text(gt))
        keys = sorted(g)
        byna = sorted(keys, key=lambda k: (-sum(1 for ch in g[k]["articleBody"] if ord(ch) > 127), k))
        for k in byna[:8]:
            c.add("real", "article_%s" % k[:12], g[k]["articleBody"], "real",
                  "web/article-extraction-benchmark/ground-truth.json [%s].articleBody" % k)

    if big:
        for key in ("shakespeare", "wikitext_raw", "wikitext_tok", "tinystories", "linux", "alpaca", "hh_helpful"):
            if key in texts:
                rel, t = texts[key]
                c.add("big", key, t, "real", "%s (whole)" % rel)
        for i, (_, f, t) in enumerate(pages[:12]):
            c.add("big", "html_%s" % f[:12], t, "real", "web/article-extraction-benchmark/html/%s (whole)" % f)


# ----------------------------------------------------------- synthetic cases

CJK = {
    "zh": "机器学习是人工智能的一个分支。人工智能的研究历史有着一条从以“推理”为重点，到以“知识”为重点，"
          "再到以“学习”为重点的自然、清晰的脉络。显然，机器学习是实现人工智能的一个途径。2023年，模型参数达到1750亿个！"
          "繁體中文：臺灣的資訊科學與電腦工程，語言模型與詞彙表。",
    "ja": "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。何でも薄暗いじめじめした所で"
          "ニャーニャー泣いていた事だけは記憶している。ｶﾀｶﾅ（半角）とカタカナ（全角）、ひらがな、漢字、"
          "ローマ字ＡＢＣ１２３、「括弧」『二重』〜ー・。東京都渋谷区１－２－３",
    "ko": "대한민국은 민주공화국이다. 대한민국의 주권은 국민에게 있고, 모든 권력은 국민으로부터 나온다. "
          "한글 자모: ㄱㄴㄷㄹ ㅏㅑㅓㅕ; 옛한글 조합형: \u1100\u1161\u11a8 \u1112\u1161\u11ab; 2024년 3월 1일, 값은 ₩12,000원.",
}

EMOJI = {
    "basic": "I ❤ tokenizers 😀😃😄😁😆 🚀🔥💯 ✅❌ ☺ ☺️ ✌🏻 ⌚⌛ ©® ™ ↔ 🀄 🃏 🆗",
    "zwj": "👨\u200d👩\u200d👧\u200d👦 family, 🏳️\u200d🌈 flag, 🧑\u200d💻 coder, 👩🏽\u200d🚀 astronaut, "
           "🏴\u200d☠️, 🐻\u200d❄️, ❤️\u200d🔥, 👁️\u200d🗨️, 👨\u200d👨\u200d👦\u200d👦👩\u200d❤️\u200d💋\u200d👨",
    "flags": "🇺🇸🇯🇵🇰🇷🇩🇪🇫🇷🇧🇷 🇺🇳 odd count: 🇺🇸🇯 and lone 🇦 then text 🇿🇿🇿, "
             "subdivision 🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f Scotland",
    "skin": "👍👍🏻👍🏼👍🏽👍🏾👍🏿 👋🏿hello 🤝🏽 🧑🏾\u200d🤝\u200d🧑🏻 lone modifiers 🏻🏼 a🏽b",
    "keycap": "1️⃣ 2️⃣ #️⃣ *️⃣ 0\u20e3 #\u20e3 keycaps 10️⃣0️⃣",
    "vs": "text style ☎\ufe0e emoji style ☎\ufe0f; ↩\ufe0f; 漢\ufe00 (IVS \U000e0100 葛\U000e0101)",
    "dense": "😀" * 200 + " " + "👨\u200d👩\u200d👧" * 50 + "\n" + "🇺🇸" * 60,
}

COMBINING = {
    "latin": "e\u0301 é café cafe\u0301 n\u0303o ñ A\u030a Å \u212b Ω\u0301 ǅ ǆ ﬁ ﬀ ß ẞ ı İ ŉ",
    "zalgo": "Z\u0351\u0352\u0353\u0336\u0334\u0335a\u0300\u0301\u0302\u0303\u0304\u0305\u0306\u0307l\u0308\u0309\u030a\u030b\u030cg\u030d\u030e\u030f\u0310o\u0311\u0312\u0313",
    "orphan": "\u0301 starts; after space \u0301x; after digit 1\u0301 2\u0308; after apostrophe '\u0301s; "
              "after newline\n\u0301; after punct !\u0301?; \u20dd\u20de; \u0345\u0345",
    "indic": "हिन्दी भाषा, नमस्ते क्षत्रिय श्री; বাংলা ভাষা; தமிழ் மொழி; ಕನ್ನಡ; ગુજરાતી ૧૨૩ ४५६",
    "se_asian": "ภาษาไทยเป็นภาษาที่มีวรรณยุกต์ ก่ ก้ ก๊ ก๋; ພາສາລາວ; ភាសាខ្មែរ; မြန်မာဘာသာ; Tiếng Việt có dấu: ở đây, người, ước, Ự",
    "nfd": unicodedata.normalize("NFD", "Über Straße, résumé, naïve coöperate, Ångström, Việt Nam, 한국어 조합"),
}

RTL = {
    "arabic": "اللغة العربية هي أكثر اللغات السامية تحدثًا. مَرْحَبًا بِكُمْ! الأرقام: ٠١٢٣٤٥٦٧٨٩ و ۱۲۳ و 2024؛ ﷺ ﻻ",
    "hebrew": "עִבְרִית היא שפה שמית. שָׁלוֹם עוֹלָם! מספרים 123 ו־456, גרש: צ׳ גרשיים: צה״ל",
    "mixed": "The word \u200fשלום\u200f means peace; \u202bمرحبا abc 123\u202c and \u2067isolate\u2069 \u200eLRM\u200e. "
             "Persian: فارسی ‌نیم‌فاصله; Urdu: اردو; Syriac: ܠܫܢܐ; Thaana: ދިވެހި",
}


def whitespace_cases():
    d = {}
    d["spaces_1_70"] = "".join("x" + " " * n for n in range(1, 71)) + "y"
    d["spaces_then_words"] = "\n".join(" " * n + "word" for n in range(0, 40))
    d["trailing_spaces"] = "".join("line%d%s\n" % (n, " " * n) for n in range(0, 20)) + "end   "
    d["tabs"] = "\tindent\n\t\tdouble\n\t \t mixed\t\t\n" + "\t" * 37 + "x\n" + "a\tb\t\tc \t d"
    d["crlf_mix"] = "a\r\nb\n\rc\r\rd\n\ne\r\n\r\nf \r\n g\t\r\n\th  \r\n\r\n  i\r"
    d["newline_runs"] = "".join("p" + "\n" * n for n in range(1, 30)) + " \n \n  \n\n   x"
    d["space_newline_mix"] = " \n" * 30 + "\n " * 30 + "  \n\n  " * 10 + "z"
    d["vt_ff"] = "a\x0bb\x0cc \x0b\x0c d\x0b\x0b\n\x0cpage"
    d["only_spaces"] = " " * 257
    d["only_newlines"] = "\n" * 100
    d["only_mixed_ws"] = " \t\n\r\x0b\x0c" * 40
    d["ws_at_end"] = "end with spaces     "
    d["ws_before_punct"] = "a  !  b   ?\n  .  c     ,,,  d\t;"
    return d


UWS = {
    "nbsp": "a\u00a0b\u00a0\u00a0c \u00a0d\u00a0 e 100\u00a0km Mr.\u00a0Smith\u00a0",
    "em_space": "a\u2003b\u2003\u2003c \u2003d\u2002e\u2009f\u200ag\u2000h\u2001i\u2004\u2005\u2006\u2007\u2008j",
    "ideographic": "日本\u3000語\u3000\u3000テスト　全角スペース　ok",
    "nel": "a\u0085b\u0085\u0085c \u0085d\u0085 e\r\u0085f\n\u0085g \u0085\u0085 h\u0085",
    "line_sep": "a\u2028b\u2029c \u2028 d\u2028\u2028e\n\u2029f",
    "misc": "a\u1680b\u202fc\u205fd\u180ee\u200bf\u200cg\u200dh\ufeffi\u2060j\u00adk",
    "bom_start": "\ufeffBOM at start of text",
    "fs_gs_rs_us": "a\x1cb\x1dc\x1ed\x1fe \x1c f\x1f\n",
    "all_in_runs": "x" + "\u00a0\u2003\u3000\u0085\u2028 \t" * 10 + "y " + "\u0085" * 20 + "z" + " \u00a0" * 10,
    "nel_word_starts": "\u0085word \u0085123 \u0085!! \u0085's \u0085\u0085\u0085\n\u0085",
}


def digits_cases():
    d = {}
    d["runs_1_40"] = " ".join("".join(str((i + k) % 10) for k in range(n)) for i, n in enumerate(range(1, 41)))
    d["runs_nospace"] = "x".join("9" * n for n in range(1, 41))
    pi = "31415926535897932384626433832795028841971"
    d["runs_lines"] = "\n".join(pi[:n] for n in range(1, 41))
    d["numbers_formats"] = "3.14159 1,000,000 1e-10 -42 +7 0x1F 0b1010 1_000 12:30:45 2024-01-31 $19.99 €5 50% #1 v1.2.3 192.168.0.1"
    d["unicode_digits"] = "١٢٣ ۴۵۶ ४५६ ১২৩ ๑๒๓ １２３ ²³¹ ⁴⁵ ₁₂ ½ ¾ ⅓ Ⅻ ⅻ ① ⑳ 𝟏𝟐𝟑 🄁 ፲ 〇 一二三"
    d["digit_letter_mix"] = "abc123def4567ghi89 A1B2C3 x1y22z333 4th 21st 1990s 3D H2O COVID19"
    d["long_number"] = "".join(str(i % 10) for i in range(3000))
    return d


def contraction_cases():
    return {
        "mixed_case": "DON'T I'M YOU'RE WE'VE SHE'LL HE'D IT'S don't i'm you're we've she'll he'd it's "
                      "Don'T I'm You'Re We'VE She'lL He'D It'S dOn't",
        "bare": "'s 's 'S 't 'T 're 'RE 've 'VE 'm 'M 'll 'LL 'd 'D ' '' ''' 'x 'sa 'sS 'st",
        "edges": "'s'", "edges2": "x'sy ''s 'ss''ll don't've 'lll rock'n'roll o'clock y'all ma'am",
        "curly": "don’t it’s I’M ‘quoted’ ’s ʼs ＇s",
        "after_space": " 's  'll\n've\t'd 1's 's1 -'s 's- 's's's",
        "unicode_letters": "L'École c'est Ça; 'ñ 'é 'ö 'Σ 'я 'ש 'ك 'ㄱ '日 'ǅs 'ß",
        "possessive": "James's cats' the children's Jones'. OK'd, RSVP'd, 90's, '90s, rock 'n' roll",
    }


SPECIAL = {
    "eot": "<|endoftext|>",
    "eot_in_text": "Hello<|endoftext|>World <|endoftext|> x\n<|endoftext|>\n",
    "eot_repeated": "<|endoftext|><|endoftext|><|endoftext|>",
    "eot_partial": "<|endoftext| <|endoftext <endoftext|> |endoftext|> <||endoftext|> <|<|endoftext|>|> <|ENDOFTEXT|>",
    "fim": "<|fim_prefix|>def f():<|fim_suffix|>    return 1<|fim_middle|>pass<|endofprompt|>",
    "chat_like": "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<|endoftext|>",
    "near_specials": "<| endoftext |> <|endoftext|>! !<|endoftext|> 's<|endoftext|>'s \u0085<|endoftext|>\u0085",
}


def controls_cases():
    return {
        "c0": "".join(chr(i) for i in range(0, 32)) + "x" + "".join(chr(i) + "a" for i in range(0, 32)),
        "nul": "before\x00after \x00 \x00\x00 x\x00",
        "del_c1": "\x7f" + "".join(chr(i) for i in range(0x80, 0xa0)) + " a\x7fb\x80c\x9fd",
        "ascii_all": "".join(chr(i) for i in range(128)),
        "latin1_all": "".join(chr(i) for i in range(0xa0, 0x100)),
        "bidi_controls": "a\u200eb\u200fc\u202ad\u202be\u202cf\u202dg\u202eh\u2066i\u2067j\u2068k\u2069",
    }


def long_cases(rnd):
    letters = "abcdefghijklmnopqrstuvwxyz"
    return {
        "a_1000": "a" * 1000,
        "random_word_10000": "".join(rnd.choice(letters) for _ in range(10000)),
        "cap_word": "".join(rnd.choice(letters.upper()) for _ in range(2000)),
        "punct_run": "!" * 500 + " " + "-=" * 300 + " " + ".,;:" * 100,
        "base64": "".join(rnd.choice(letters + letters.upper() + "0123456789+/") for _ in range(4000)) + "==",
        "hex": "".join(rnd.choice("0123456789abcdef") for _ in range(4096)),
        "url": "https://example.com/a/very/long/path/" + "segment/" * 100 + "?q=" + "x" * 300 + "&utm_source=kiln#frag",
        "cjk_run": "".join(chr(rnd.randrange(0x4e00, 0x9fff)) for _ in range(3000)),
        "hangul_run": "".join(chr(rnd.randrange(0xac00, 0xd7a4)) for _ in range(3000)),
        "emoji_letters": "".join(rnd.choice(["a", "😀", "é", "日", "'", " ", "1"]) for _ in range(5000)),
        "german_compound": "Donaudampfschifffahrtsgesellschaftskapitänswitwe Rindfleischetikettierungsüberwachungsaufgabenübertragungsgesetz",
        "long_line": " ".join(rnd.choice(["the", "cat", "sat", "on", "mat", "Zebra", "don't", "42"]) for _ in range(20000)),
    }


UNICODE_VERSIONS = {
    # letters/symbols assigned in recent Unicode versions: regex engines with older
    # tables classify them as unassigned (not \p{L}).
    "u14": "Vithkuqi \U00010570\U00010571\U00010597 Toto \U0001e290\U0001e291 Tangsa \U00016a70\U00016a71 emoji \U0001fae0\U0001fae1 x\u0870\u0871",
    "u15": "Kawi \U00011f04\U00011f05 Nag Mundari \U0001e4d0\U0001e4d1 CJK-H \U00031350\U00031351 emoji \U0001fae8\U0001fa75 x",
    "u15_1": "CJK-I \U0002ebf0\U0002ebf1\U0002ebf2 ideographic desc \u2ffc\u2ffd\u31ef x",
    "u16": "Garay \U00010d4a\U00010d4b\U00010d50 Todhri \U000105c0\U000105c1 Kirat Rai \U00016d43\U00016d44 Sunuwar \U00011bc0\U00011bc1 "
           "Tulu \U00011380\U00011381 Ol Onal \U0001e5d0\U0001e5d1 digits \U00011bf0\U00011bf1\U00016d70\U00016d71 emoji \U0001fac8\U0001fadf x",
    "u17_candidates": "Sidetic \U00010940\U00010941 Tangut-supp \U00018d09 Beria \U00016ea0\U00016ea1 x",
    # New digits followed by ASCII digits: \p{N}{1,3} groups them only if the
    # regex engine knows the digit (tiktoken 1.0.22 knows Unicode 16.0 digits;
    # PCRE2 10.42 only Unicode 14), which changes the ids ("12","3" vs "123").
    "digits_then_ascii": "\U00016ac0123 \U00011f50123 \U0001e4f0123 \U00010d40123 \U00016d70123 "
                         "\U00011bf0123 \U0001e4fa123 \U00011f59\U00011f5812345 x\U00010d49\U00010d4812",
    # U+180E: White_Space before Unicode 6.3, Cf since; PCRE2's \s still matches it.
    "mvs_180e": "x \u180ey a\u180eb \u180e\u180e z\u180e \u180e\n",
    "unassigned": "\u0378 \u0379 \u05ff \U0001ffff \U0003ffff \U0004abcd \U000e0000 \ufdd0 \ufffe \uffff \U0010fffe \U0010ffff x",
    "private_use": "\ue000\uf8ff \U000f0000\U000ffffd \U00100000\U0010fffd pua text \ue001abc",
}


def random_unicode(rnd, n, mode):
    """Random valid scalars (no surrogates), deterministic for a given rnd state."""
    out = []
    for _ in range(n):
        if mode == "ascii":
            cp = rnd.randrange(0, 128)
        elif mode == "bmp":
            cp = rnd.randrange(0, 0xF800)
            if cp >= 0xD800:
                cp += 0x800                       # skip surrogates
        elif mode == "planes":
            plane = rnd.choice([0, 0, 0, 1, 1, 2, 3, 14, 15, 16, rnd.randrange(4, 14)])
            cp = plane * 0x10000 + rnd.randrange(0, 0x10000)
            if 0xD800 <= cp < 0xE000:
                cp = 0xE000 + (cp - 0xD800)
        else:                                     # "uniform" over all scalars
            cp = rnd.randrange(0, 0x10F800)
            if cp >= 0xD800:
                cp += 0x800
        out.append(chr(cp))
    return "".join(out)


SOUP = [
    " ", " ", "  ", "\t", "\n", "\r\n", "\r", "\n\n", " \n", "\u00a0", "\u3000", "\u0085", "\u2028", "\u2003",
    "a", "the", "The", "THE", "ÄÖÜ", "ß", "é", "e\u0301", "\u0301", "x\u0308", "Σ", "я", "日本", "한", "ｶ",
    "'", "'s", "'S", "'ll", "'LL", "'t", "’s", "\"", "`", "-", "--", ".", "...", "!", "?", ",", ";", ":", "/", "//",
    "\\", "(", ")", "[", "]", "{", "}", "<", ">", "<|endoftext|>", "<|", "|>", "=", "==", "+", "*", "#", "@", "$",
    "%", "^", "&", "_", "__", "~", "|",
    "0", "1", "12", "123", "1234", "12345", "١٢", "²", "½", "Ⅻ", "๑",
    "😀", "👍🏽", "👨\u200d👩\u200d👧", "🇺🇸", "\u200d", "\ufe0f", "\u200b", "\ufeff", "\x00", "\x01", "\x7f", "\x9f",
    "\U0001d400", "\U00020000", "\U000e0041", "\U0010ffff", "\ue000", "\u0378", "\U00010d4a", "ǅ", "ʼ", "ﬁ",
]


def add_synthetic(c, seed):
    rnd = random.Random(seed)
    c.add("edge", "empty", "")
    for name, s in [("space", " "), ("newline", "\n"), ("crlf", "\r\n"), ("a", "a"), ("apostrophe", "'"),
                    ("digit", "7"), ("emoji", "😀"), ("nbsp", "\u00a0"), ("nel", "\u0085"), ("nul", "\x00"),
                    ("max_scalar", "\U0010ffff"), ("combining", "\u0301"), ("space_a", " a"), ("a_space", "a "),
                    ("two_spaces_a", "  a"), ("tab_newline", "\t\n")]:
        c.add("edge", name, s)
    for k, v in CJK.items():
        c.add("cjk", k, v)
    c.add("cjk", "mixed", CJK["zh"][:40] + " hello " + CJK["ja"][:40] + " 123 " + CJK["ko"][:40] + " world")
    for k, v in EMOJI.items():
        c.add("emoji", k, v)
    for k, v in COMBINING.items():
        c.add("combining", k, v)
    for k, v in RTL.items():
        c.add("rtl", k, v)
    for k, v in whitespace_cases().items():
        c.add("ws", k, v)
    for k, v in UWS.items():
        c.add("uws", k, v)
    for k, v in digits_cases().items():
        c.add("digits", k, v)
    for k, v in contraction_cases().items():
        c.add("contraction", k, v)
    for k, v in SPECIAL.items():
        c.add("special", k, v)
    for k, v in controls_cases().items():
        c.add("control", k, v)
    for k, v in long_cases(rnd).items():
        c.add("long", k, v)
    for k, v in UNICODE_VERSIONS.items():
        c.add("univer", k, v)
    for mode, lens in (("ascii", (50, 2000)), ("bmp", (20, 200, 2000)), ("planes", (20, 200, 2000)),
                       ("uniform", (20, 200, 2000))):
        for n in lens:
            c.add("random", "%s_%d" % (mode, n), random_unicode(rnd, n, mode))
    # Planes mixed with ASCII words and spaces, so regex alternatives interact.
    for i in range(20):
        parts = []
        for _ in range(rnd.randrange(5, 60)):
            r = rnd.randrange(4)
            if r == 0:
                parts.append(random_unicode(rnd, rnd.randrange(1, 6), "planes"))
            elif r == 1:
                parts.append(rnd.choice([" ", "  ", "\n", " '", "'s", "1", "42", "\u0085"]))
            else:
                parts.append(rnd.choice(["word", "Hello", "x", "ÆØ", "и", "ع"]))
        c.add("random", "planes_mix_%02d" % i, "".join(parts))
    # "Soup": concatenations of fragments chosen to hit regex and merge boundaries.
    for i in range(300):
        n = rnd.randrange(1, 40)
        c.add("soup", "%03d" % i, "".join(rnd.choice(SOUP) for _ in range(n)))


def add_invalid(c):
    cases = {
        "lone_continuation": b"abc\x80def",
        "truncated_3byte": b"abc\xe6\x97",
        "truncated_mid": b"\xe6\x97 x",
        "overlong_slash": b"a\xc0\xafb",
        "surrogate_cesu": b"x\xed\xa0\x80y",              # lone U+D800 encoded as "UTF-8"
        "surrogate_pair_cesu": b"\xed\xa0\xbd\xed\xb8\x80",  # U+1F600 as CESU-8
        "ff_fe": b"\xff\xfe a \xfe",
        "above_max": b"\xf4\x90\x80\x80 z",
        "latin1_text": "café naïve".encode("latin-1"),
    }
    for k, v in cases.items():
        c.add("invalid", k, v, "invalid")


def main(argv):
    args = argv[1:]
    if not args or args[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if args else 2
    outdir = args[0]
    data = os.path.join(os.path.dirname(REPO), "shared", "data")
    big = False
    require = False
    seed = 20240601
    i = 1
    while i < len(args):
        if args[i] == "--data":
            data = args[i + 1]; i += 2
        elif args[i] == "--require-data":
            require = True; i += 1
        elif args[i] == "--big":
            big = True; i += 1
        elif args[i] == "--seed":
            seed = int(args[i + 1]); i += 2
        else:
            print("make_corpus: unknown argument %r" % args[i], file=sys.stderr)
            return 2
    if require and not os.path.isdir(data):
        print("make_corpus: SKIP: data folder %s not found" % data, file=sys.stderr)
        return 77
    c = Corpus(outdir)
    if os.path.isdir(data):
        add_real(c, data, big)
    else:
        print("make_corpus: warning: data folder %s absent; writing synthetic samples only" % data,
              file=sys.stderr)
    add_synthetic(c, seed)
    add_invalid(c)
    c.finish()
    tot = sum(e["bytes"] for e in c.index)
    print("make_corpus: %d samples, %d bytes -> %s" % (len(c.index), tot, outdir))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
