#!/usr/bin/python3
# check_events.py: decodes the TensorBoard files and metrics.jsonl of the fixed
# two-session run that `test_track --write-events DIR` writes, independently of
# kiln: TFRecord framing with our own CRC-32C, each Event through
# `protoc --decode=tensorflow.Event event.proto`, metrics.jsonl through json.
# Usage: check_events.py TEST_TRACK   (exit 77 = skipped: protoc missing)
import json
import math
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c ^= b
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    return c ^ 0xFFFFFFFF


def masked(data):
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def records(path):
    data = open(path, "rb").read()
    pos, out = 0, []
    while pos < len(data):
        assert len(data) - pos >= 16, f"{path}: {len(data) - pos} trailing bytes"
        (n,) = struct.unpack_from("<Q", data, pos)
        (hcrc,) = struct.unpack_from("<I", data, pos + 8)
        assert hcrc == masked(data[pos:pos + 8]), f"{path}@{pos}: length CRC"
        payload = data[pos + 12:pos + 12 + n]
        assert len(payload) == n, f"{path}@{pos}: short payload"
        (pcrc,) = struct.unpack_from("<I", data, pos + 12 + n)
        assert pcrc == masked(payload), f"{path}@{pos}: payload CRC"
        out.append(payload)
        pos += 16 + n
    return out


FIELD = re.compile(r'^\s*(wall_time|step|file_version|tag|simple_value|status): (.*)$')
STRUCT = re.compile(r'^\s*(summary|value|session_log) \{$|^\s*\}$')


def decode(payload):
    """One Event as a dict of the fields protoc printed (proto3 omits zeros)."""
    text = subprocess.run(["protoc", "--decode=tensorflow.Event", f"--proto_path={HERE}", "event.proto"],
                          input=payload, capture_output=True, check=True).stdout.decode()
    ev = {"wall_time": 0.0, "step": 0}
    for line in text.splitlines():
        m = FIELD.match(line)
        if not m:
            assert STRUCT.match(line), f"unexpected field (wrong number or wire type?): {line!r}"
            continue
        k, v = m.groups()
        if k == "wall_time":
            v = float(v)
        elif k == "simple_value":
            v = f32(float(v))  # protoc prints a float's shortest decimal
        elif k == "step":
            v = int(v)
        elif k in ("file_version", "tag"):
            v = json.loads(v)
        ev[k] = v
    return ev


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def scalars(rows):
    return [{"wall_time": w, "step": s, "tag": t, "simple_value": f32(v)} for w, s, t, v in rows]


T0, T1 = 1732870000.0, 1732870100.5
EXPECT = [
    # session 1: fresh (START at 0), steps 1..3; grad_norm at step 2 is NaN and left out
    [{"wall_time": T0, "step": 0, "file_version": "brain.Event:2"},
     {"wall_time": T0, "step": 0, "status": "START"}]
    + scalars([(T0 + 0.25, 1, "train/loss", 3.5), (T0 + 0.25, 1, "train/lr", 1e-3),
               (T0 + 0.25, 1, "train/grad_norm", 0.25),
               (T0 + 0.5, 2, "train/loss", 3.0), (T0 + 0.5, 2, "train/lr", 2e-3),
               (T0 + 0.75, 3, "train/loss", 2.5), (T0 + 0.75, 3, "train/lr", 3e-3),
               (T0 + 0.75, 3, "train/grad_norm", 0.75), (T0 + 1.0, 3, "val/loss", 3.125)]),
    # session 2: resumed at step 2, so START at 3 drops session 1's points from step 3 on
    [{"wall_time": T1, "step": 0, "file_version": "brain.Event:2"},
     {"wall_time": T1, "step": 3, "status": "START"}]
    + scalars([(T1 + 3, 3, "train/loss", 13.0), (T1 + 3, 3, "train/lr", 6e-3), (T1 + 3, 3, "train/grad_norm", 4.5),
               (T1 + 4, 4, "train/loss", 14.0), (T1 + 4, 4, "train/lr", 8e-3), (T1 + 4, 4, "train/grad_norm", 6.0)]),
]

METRICS = [
    {"step": 1, "time": 1732870000.25, "loss": 3.5, "lr": 0.001, "grad_norm": 0.25},
    {"step": 2, "time": 1732870000.5, "loss": 3.0, "lr": 0.002, "grad_norm": None},
    {"step": 3, "time": 1732870001.0, "event": "checkpoint", "detail": {"dir": "ckpt-00000003"}},
    {"step": 3, "time": 1732870103.5, "loss": 13.0, "lr": 0.006, "grad_norm": 4.5},
    {"step": 4, "time": 1732870104.5, "loss": 14.0, "lr": 0.008, "grad_norm": 6.0},
    {"step": 4, "time": 1732870105.0, "event": "stop"},
]


def main():
    assert crc32c(b"123456789") == 0xE3069283
    tmp = tempfile.mkdtemp(prefix="kiln_track_")
    try:
        run = os.path.join(tmp, "run")
        subprocess.run([sys.argv[1], "--write-events", run], check=True)
        tb = os.path.join(run, "tb")
        files = sorted(os.listdir(tb))
        assert len(files) == 2 and all(re.fullmatch(r"events\.out\.tfevents\.\d{10}\.[^/]+", f) for f in files), files
        assert files[0].startswith("events.out.tfevents.1732870000.")
        assert files[1].startswith("events.out.tfevents.1732870100.")
        payloads = [records(os.path.join(tb, f)) for f in files]
        print(f"framing and CRCs: {sum(map(len, payloads))} records in {len(files)} files")

        lines = open(os.path.join(run, "metrics.jsonl")).read().splitlines()
        got = [json.loads(line) for line in lines]
        for g, e in zip(got, METRICS):
            assert g.keys() == e.keys(), (g, e)
            for k in e:
                same = g[k] == e[k] or (isinstance(e[k], float) and math.isclose(g[k], e[k], rel_tol=1e-7))
                assert same, (k, g, e)
        assert len(got) == len(METRICS), got
        print(f"metrics.jsonl: {len(got)} records")

        if shutil.which("protoc") is None:
            print("skip: protoc not found (apt-get install protobuf-compiler)")
            return 77
        for f, recs, want in zip(files, payloads, EXPECT):
            events = [decode(p) for p in recs]
            assert len(events) == len(want), (f, events)
            for i, (g, e) in enumerate(zip(events, want)):
                assert g == e, f"{f} record {i}: got {g}, want {e}"
        print(f"protoc: {sum(map(len, EXPECT))} events decoded as expected")

        try:  # TensorBoard's own reader, where it is installed (not a Debian package)
            from tensorboard.backend.event_processing import event_file_loader
        except ImportError:
            print("tensorboard not installed: its EventFileLoader check skipped")
        else:
            for f, want in zip(files, EXPECT):
                evs = list(event_file_loader.LegacyEventFileLoader(os.path.join(tb, f)).Load())
                assert [e.step for e in evs] == [w["step"] for w in want], f
            print("tensorboard EventFileLoader: steps match")
        return 0
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    sys.exit(main())
