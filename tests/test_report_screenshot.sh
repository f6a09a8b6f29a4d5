#!/usr/bin/env bash
# test_report_screenshot.sh KILN: `kiln report` end to end on a synthetic run
# (3000 steps, val points, a loss spike with rollback, a supervisor restart):
# the CLI's outputs and exit codes, then headless Chromium screenshots the page
# and the PNG (decoded here with zlib) must show the loss line, the val points
# and the spike marker in their colours. Chromium is installed by
# scripts/install-deps.sh, so a missing one FAILS unless KILN_SKIP_BROWSER=1.
set -u
KILN=$1
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }

RUN="$W/gpt-tiny <demo>"
mkdir -p "$RUN"
/usr/bin/python3 - "$RUN" <<'EOF'
import json, math, random, sys
run = sys.argv[1]
random.seed(5)
t0, steps = 1732870000.0, 3000
lines = [{"step": 0, "time": t0, "event": "start", "detail": {"config": "gpt-tiny.yaml"}}]
for s in range(1, steps + 1):
    t = t0 + 0.31 * s + (600 if s > 2200 else 0)
    loss = 2.6 + 8.2 * math.exp(-s / 260) + 0.25 * math.exp(-s / 1500) + random.gauss(0, 0.05)
    if s == 1700: loss = 9.5  # the spike
    warm = min(1.0, s / 200)
    lr = 6e-4 * warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1, s / steps))))
    bt = min(16384, 4096 + 4096 * (s // 200))
    rec = {"step": s, "time": t, "loss": loss, "lr": lr, "grad_norm": 0.9 + 0.3 * random.random() +
           (6 if s == 1700 else 0), "batch_tokens": bt, "tokens": 16384 * s,
           "tokens_per_s": 51000 + random.gauss(0, 1500), "mfu": 0.31 + random.gauss(0, 0.01), "ms": 312.5}
    lines.append(rec)
    if s % 250 == 0:
        lines.append({"step": s, "time": t + 2, "val_loss": loss + 0.08})
    if s % 500 == 0:
        lines.append({"step": s, "time": t + 3, "event": "checkpoint", "detail": {"dir": "ckpt-%08d" % s}})
    if s == steps:
        lines.append({"step": s, "time": t + 4, "event": "end"})
    if s == 1700:
        lines.append({"step": s, "time": t, "event": "spike", "detail": {"loss": loss, "z": 14.2,
                      "docs": [{"source": "web", "id": "https://example.com/<b>%d" % i} for i in range(12)]}})
        lines.append({"step": s, "time": t, "event": "rollback", "detail": {"to": 1500, "lr_factor": 0.5}})
    if s == 2201:
        lines.append({"step": s, "time": t, "event": "resume", "detail": {"from": "ckpt-00002000"}})
with open(run + "/metrics.jsonl", "w") as f:
    for r in lines: f.write(json.dumps(r) + "\n")
with open(run + "/incidents.jsonl", "w") as f:
    # as supervise.c writes them: the hung trainer killed, then restarted
    f.write(json.dumps({"time": t0 + 0.31 * 2200 + 300, "kind": "hang", "detail": {"restart": 0, "exit_code": None,
                        "signal": 9, "step": 2200, "silent_s": 300.2}}) + "\n")
    f.write(json.dumps({"time": t0 + 0.31 * 2200 + 301, "kind": "restart", "detail": {"restart": 1,
                        "backoff_s": 1, "resume": "latest"}}) + "\n")
with open(run + "/config.yaml", "w") as f:
    f.write("model:\n  n_layer: 4\n  n_embd: 256\ntrain:\n  steps: 3000\n  lr: 0.0006\n  schedule: cosine\n"
            "data:\n  train: \"data/train_*.bin\"\nout_dir: \"runs/gpt-tiny\"\n")
with open(run + "/env.json", "w") as f:
    json.dump({"kiln_version": "0.1.0", "git_commit": "24b0982abcde",
               "command_line": ["kiln", "pretrain", "gpt-tiny.yaml"], "hostname": "trainbox",
               "os": {"sysname": "Linux", "release": "6.1.0-26-amd64", "machine": "x86_64"},
               "cpu": {"model": "AMD EPYC 7B13", "cores": 16}, "threads": 16, "compiler": "gcc 12.2.0",
               "libraries": {"libyaml": "0.2.5", "cjson": "1.7.15", "zlib": "1.2.13", "zstd": "1.5.4"},
               "openblas": {"config": "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Zen MAX_THREADS=64", "threads": 16},
               "start_time": t0, "start_time_utc": "2024-11-29T08:46:40Z"}, f)
EOF

# the CLI: default output path, stdout, exit codes
if "$KILN" report "$RUN" 2>"$W/err" && [ -s "$RUN/report.html" ]; then ok "report writes RUN/report.html"
else bad "report: $(cat "$W/err")"; fi
"$KILN" report "$RUN" -o - >"$W/stdout.html" 2>"$W/err" && cmp -s <(grep -v '<footer>' "$W/stdout.html") \
  <(grep -v '<footer>' "$RUN/report.html") && ok "-o - writes the same page to stdout" || bad "-o -: $(cat "$W/err")"
grep -qE '(src|href)="?(https?:)?//' "$RUN/report.html" && bad "page loads external resources" || ok "self-contained"
[ "$(grep -o '<svg' "$RUN/report.html" | wc -l)" -ge 6 ] && ok "charts present" || bad "charts present"
mkdir "$W/bad" && printf '{"step":1,"loss":2}\n{"step":2,"loss":\n{"step":3,"loss":1}\n' >"$W/bad/metrics.jsonl"
"$KILN" report "$W/bad" 2>"$W/err"
rc=$?
[ $rc -eq 2 ] && grep -q 'metrics.jsonl:2' "$W/err" && ok "malformed line: exit 2, file:line" \
  || bad "malformed line: rc $rc, $(cat "$W/err")"
[ ! -e "$W/bad/report.html" ] && ok "nothing written on error" || bad "report.html written on error"
"$KILN" report "$W/nonexistent" 2>/dev/null; [ $? -eq 2 ] && ok "missing run: exit 2" || bad "missing run: exit 2"
"$KILN" report 2>/dev/null; [ $? -eq 2 ] && ok "no RUN: exit 2" || bad "no RUN: exit 2"
mkdir "$W/empty" && "$KILN" report "$W/empty" 2>/dev/null && grep -q 'metrics.jsonl is missing' "$W/empty/report.html" \
  && ok "run without metrics: a page that says so" || bad "run without metrics"

# the screenshot
if ! command -v chromium >/dev/null 2>&1; then
  if [ "${KILN_SKIP_BROWSER:-0}" = 1 ]; then echo "skip screenshot: chromium not installed (KILN_SKIP_BROWSER=1)"
  else bad "chromium not found (scripts/install-deps.sh installs it; KILN_SKIP_BROWSER=1 to skip)"; fi
else
  PNG=${KILN_REPORT_PNG:-$W/report.png}
  mkdir -p "$W/home"
  HOME="$W/home" timeout 60 chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
    --user-data-dir="$W/home/profile" --no-first-run --disable-extensions --window-size=1200,1600 \
    --screenshot="$PNG" "file://$RUN/report.html" >"$W/chromium.log" 2>&1
  if [ -s "$PNG" ]; then
    ok "chromium screenshot"
    # colours: loss #3b5bdb, val #f76707, spike/rollback #e03131; counts of pixels within 12 per channel
    if /usr/bin/python3 - "$PNG" <<'EOF'
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
pos, idat, w = 8, b"", 0
while pos < len(data):
    n, kind = struct.unpack(">I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    if kind == b"IHDR":
        w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
        assert depth == 8 and ctype in (2, 6) and not interlace, (depth, ctype, interlace)
        bpp = 3 if ctype == 2 else 4
    elif kind == b"IDAT":
        idat += body
    pos += 12 + n
raw, stride = zlib.decompress(idat), w * bpp
rows, prev = [], bytearray(stride)
for y in range(h):  # undo the PNG row filters
    f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
    for i in range(stride):
        a = line[i - bpp] if i >= bpp else 0
        b, c = prev[i], prev[i - bpp] if i >= bpp else 0
        if f == 1: line[i] = (line[i] + a) & 255
        elif f == 2: line[i] = (line[i] + b) & 255
        elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    rows.append(bytes(line))
    prev = line
def count(rgb, tol=12):
    n = 0
    for line in rows:
        for x in range(0, stride, bpp):
            if all(abs(line[x + k] - rgb[k]) <= tol for k in range(3)): n += 1
    return n
loss, val, spike = count((0x3b, 0x5b, 0xdb)), count((0xf7, 0x67, 0x07)), count((0xe0, 0x31, 0x31))
white = count((255, 255, 255), 0)
print(f"pixels: loss {loss}, val {val}, spike {spike}, white {white} of {w * h}")
assert loss > 200, "loss line not visible"  # ~450 with it, 0 without
assert val > 100, "val points not visible"
assert spike > 100, "spike marker not visible"
assert white < 0.9 * w * h, "page mostly blank"
EOF
    then ok "plots visible in the screenshot"; else bad "plots visible in the screenshot"; fi
  else
    bad "chromium made no screenshot: $(tail -5 "$W/chromium.log")"
  fi
fi

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
