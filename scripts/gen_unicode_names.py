#!/usr/bin/env python3
"""Writes src/data/stage/unicode_names.h: the names the `clean` stage's `symbols: names`
option gives to symbols and emoji.

Sources (Debian's unicode-data package, /usr/share/unicode):
  UnicodeData.txt                 names of single code points: every symbol of
                                  category So, the emoji modifiers, and the
                                  characters that take an emoji presentation
                                  selector (FE0F) or are Extended_Pictographic
  emoji/emoji-sequences.txt       keycap, flag and tag sequences (CLDR names)
  emoji/emoji-zwj-sequences.txt   ZWJ sequences (CLDR names)

Sequence keys have their variation selectors (FE0E/FE0F) and skin-tone modifiers
removed: tones are put back at run time by the rule CLDR mostly uses ("base: tone"
or "base, tone", each distinct tone once, in order). Sequences whose CLDR name
does not follow that rule ("woman: light skin tone, blond hair") are also stored
under their full key, tones included; the run time tries that key first.
Modifier sequences (thumbs up + tone) are not stored: single code point + tones.

Usage: python3 scripts/gen_unicode_names.py [UNICODE_DIR] [OUT]
"""
import os
import re
import sys
import unicodedata

TONES = {0x1F3FB: "light skin tone", 0x1F3FC: "medium-light skin tone", 0x1F3FD: "medium skin tone",
         0x1F3FE: "medium-dark skin tone", 0x1F3FF: "dark skin tone"}
VS = (0xFE0E, 0xFE0F)


def data_lines(path):
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                yield [x.strip() for x in line.split(";")]


def cps(field):
    return [int(x, 16) for x in field.split()]


def with_tones(name, tones):
    """The CLDR name of a sequence with skin tones, from its tone-free name."""
    uniq = []
    for t in tones:
        if TONES[t] not in uniq:
            uniq.append(TONES[t])
    if not uniq:
        return name
    return name + (", " if ":" in name else ": ") + ", ".join(uniq)


def strip_tone_names(name):
    for t in sorted(TONES.values(), key=len, reverse=True):  # "medium-light" before "light"
        for pat in (t + ", ", ", " + t, ": " + t):
            name = name.replace(pat, "")
    return name


def main():
    udir = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/unicode"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(root, "src/data/stage/unicode_names.h")

    uname, ucat = {}, {}
    for f in data_lines(os.path.join(udir, "UnicodeData.txt")):
        cp, name, cat = int(f[0], 16), f[1], f[2]
        if not name.startswith("<"):
            uname[cp], ucat[cp] = name.lower(), cat

    single = {cp for cp, c in ucat.items() if c == "So"}
    single |= set(TONES)
    for f in data_lines(os.path.join(udir, "emoji/emoji-variation-sequences.txt")):
        single.add(cps(f[0])[0])
    for f in data_lines(os.path.join(udir, "emoji/emoji-data.txt")):
        if f[1] != "Extended_Pictographic":
            continue
        lo, _, hi = f[0].partition("..")
        for cp in range(int(lo, 16), int(hi or lo, 16) + 1):
            if cp in uname:
                single.add(cp)
    single = sorted(cp for cp in single if cp in uname)

    # tone-free sequences first, so a tone variant finds its base's own name
    entries = []
    for fname in ("emoji-sequences.txt", "emoji-zwj-sequences.txt"):
        for f in data_lines(os.path.join(udir, "emoji", fname)):
            if f[1] != "Basic_Emoji":
                # the files write "#" as \x{23} (it starts a comment)
                name = re.sub(r"\\x\{([0-9A-Fa-f]+)\}", lambda m: chr(int(m.group(1), 16)), f[2])
                entries.append((cps(f[0]), name.lower()))
    entries.sort(key=lambda e: any(c in TONES for c in e[0]))
    seqs, exceptions = {}, 0
    for seq, name in entries:
        tones = [c for c in seq if c in TONES]
        key = tuple(c for c in seq if c not in TONES and c not in VS)
        if len(key) == 1:
            continue  # a modifier sequence: base name + tones at run time
        if key not in seqs:
            seqs[key] = strip_tone_names(name) if tones else name
        if tones and with_tones(seqs[key], tones) != name:
            # CLDR puts some tones elsewhere ("woman: light skin tone, blond hair"):
            # keep those under their full key, tones included
            seqs[tuple(c for c in seq if c not in VS)] = name
            exceptions += 1

    names = [uname[cp] for cp in single] + [seqs[k] for k in sorted(seqs)]
    for n in names:
        if unicodedata.normalize("NFKC", n) != n or "\n" in n or '"' in n or "\\" in n:
            sys.exit(f"gen_unicode_names: name {n!r} is not NFKC-stable plain text")

    blob, offs = bytearray(), {}
    for n in names:
        if n not in offs:
            offs[n] = len(blob)
            blob += n.encode("utf-8") + b"\0"

    lines = []
    w = lines.append
    w("// unicode_names.h: names of symbols and emoji for the clean stage (symbols: names).")
    w("// Generated by scripts/gen_unicode_names.py from Debian's unicode-data "
      f"({os.path.basename(udir)}: UnicodeData.txt, emoji/*.txt); do not edit.")
    w(f"// {len(single)} code points, {len(seqs)} emoji sequences (keys without FE0E/FE0F and skin tones).")
    w("#ifndef KILN_UNICODE_NAMES_H")
    w("#define KILN_UNICODE_NAMES_H")
    w("#include <stdint.h>")
    w("")
    w(f"#define UNAME_COUNT {len(single)}")
    w(f"#define USEQ_COUNT {len(seqs)}")
    w("// sorted code points and the offset of each one's name in UNAME_BLOB")
    w("static const uint32_t UNAME_CP[UNAME_COUNT] = {")
    for i in range(0, len(single), 10):
        w("    " + ", ".join("0x%X" % c for c in single[i:i + 10]) + ",")
    w("};")
    w("static const uint32_t UNAME_OFF[UNAME_COUNT] = {")
    offs_single = [offs[uname[cp]] for cp in single]
    for i in range(0, len(offs_single), 12):
        w("    " + ", ".join(str(o) for o in offs_single[i:i + 12]) + ",")
    w("};")
    w("// sequences, sorted by key: USEQ_CPS[USEQ_START[i] .. USEQ_START[i+1]) is key i")
    keys = sorted(seqs)
    flat, starts = [], []
    for k in keys:
        starts.append(len(flat))
        flat += k
    starts.append(len(flat))
    w(f"static const uint32_t USEQ_CPS[{len(flat)}] = {{")
    for i in range(0, len(flat), 10):
        w("    " + ", ".join("0x%X" % c for c in flat[i:i + 10]) + ",")
    w("};")
    w(f"static const uint16_t USEQ_START[USEQ_COUNT + 1] = {{")
    for i in range(0, len(starts), 14):
        w("    " + ", ".join(str(s) for s in starts[i:i + 14]) + ",")
    w("};")
    w("static const uint32_t USEQ_OFF[USEQ_COUNT] = {")
    so = [offs[seqs[k]] for k in keys]
    for i in range(0, len(so), 12):
        w("    " + ", ".join(str(o) for o in so[i:i + 12]) + ",")
    w("};")
    w("// NUL-separated names, lowercase")
    w("static const char UNAME_BLOB[] =")
    cur = bytearray()
    chunks = []
    for n in names:
        b = n.encode("utf-8") + b"\0"
        if offs[n] != sum(len(c) for c in chunks) + len(cur):
            continue  # a repeated name, stored once
        cur += b
        if len(cur) > 90:
            chunks.append(cur)
            cur = bytearray()
    if cur:
        chunks.append(cur)
    for c in chunks:
        # \0 followed by a digit would read as a longer octal escape: always 3 digits
        w('    "' + "".join(chr(x) if 32 <= x < 127 and x != 63 else "\\%03o" % x for x in c) + '"')
    w("    ;")
    w("")
    w("#endif")
    assert len(flat) < 65536
    with open(out + ".tmp", "w", encoding="ascii") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(out + ".tmp", out)
    print(f"gen_unicode_names: {out}: {len(single)} names, {len(seqs)} sequences "
          f"({exceptions} with tones in the key), {len(blob)} bytes of names")


if __name__ == "__main__":
    main()
