#!/usr/bin/env python3
"""Fails when a file of the library includes a header of a room above its own.

Rooms and what each may include (docs/architecture.md draws the same picture):
a room includes only itself and the rooms listed for it. Public headers in
include/kiln/ belong to the room named in PUBLIC. Usage: check_floors.py [ROOT]
"""
import os
import re
import sys

MAY_INCLUDE = {
    "core": [],
    "backend": ["core"],
    "model": ["backend", "core"],
    "train": ["model", "backend", "core"],
    "tokenizer": ["core"],
    "classifier": ["core"],
    "task": ["core"],
    "data": ["tokenizer", "classifier", "task", "core"],
    "eval": ["model", "tokenizer", "classifier", "task", "data", "core"],
    "run": ["eval", "data", "task", "classifier", "tokenizer", "train", "model", "backend", "dist", "core"],
    "report": ["core"],
    "dist": ["core"],
    "cli": ["run", "report", "eval", "data", "task", "classifier", "tokenizer", "train", "model",
            "backend", "dist", "core"],
}

# include/kiln/<name>.h -> the room whose sources implement it
PUBLIC = {
    "core": "core", "config": "core", "doc": "core", "manifest": "core",
    "model": "model", "infer": "model",
    "tokenizer": "tokenizer",
    "classifier": "classifier",
    "task": "task",
    "data": "data", "pipeline": "data", "corpus": "data", "gather": "data", "wordlist": "data",
    "eval": "eval", "toxicity": "eval",
    "train": "run", "checkpoint": "run", "guard": "run", "supervise": "run",
    "report": "report",
}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def room_of_header(inc):
    """The room of an included header, or None for a same-folder or unknown one."""
    if inc.startswith("kiln/"):
        name = inc[len("kiln/"):-len(".h")]
        return PUBLIC.get(name, "?" + name)
    head = inc.split("/", 1)[0]
    return head if head in MAY_INCLUDE and "/" in inc else None


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
    bad = []
    files = []
    for base in ("src", "include/kiln"):
        for d, _, names in os.walk(os.path.join(root, base)):
            files += [os.path.join(d, n) for n in names if n.endswith((".c", ".h"))]
    for path in sorted(files):
        rel = os.path.relpath(path, root)
        parts = rel.split(os.sep)
        if parts[0] == "include":
            room = PUBLIC.get(parts[-1][:-2])
            if room is None:
                bad.append(f"{rel}: a public header no room owns (add it to PUBLIC in {__file__})")
                continue
        else:
            room = parts[1]
            if room not in MAY_INCLUDE:
                bad.append(f"{rel}: room '{room}' is not in the floor plan")
                continue
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                m = INCLUDE.match(line)
                if not m:
                    continue
                inc = m.group(1)
                other = room_of_header(inc)
                if other is None or other == room:
                    continue
                if other.startswith("?"):
                    bad.append(f"{rel}:{lineno}: includes {inc}, a public header no room owns")
                elif other not in MAY_INCLUDE[room]:
                    bad.append(f"{rel}:{lineno}: {room} includes {inc} from {other}, a floor above it")
    for b in bad:
        print(b)
    print(f"check_floors: {len(files)} files, {len(bad)} upward includes")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
