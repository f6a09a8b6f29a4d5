#!/usr/bin/env node
// Throughput of the reference encoders, one thread, whole files at a time.
//
//   RAYON_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false \
//     node bench.mjs [--encodings a,b] [--hf-dir DIR] [--repeat N] [FILE...]
//
// Without FILEs: about 11 MB of shared/data text (Shakespeare, WikiText-2 raw +
// tokenized, TinyStories, Linux C source, Alpaca JSON); exits 77 if absent.
// Reports, per encoding, MB/s of tiktoken encode_ordinary and (with --hf-dir,
// where DIR/ENCODING.json exists, see make_hf_gpt2.py) of HF tokenizers'
// encode; the best of N repeats (default 2).  MB = 10^6 bytes of UTF-8 input.

import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const HERE = path.dirname(fileURLToPath(import.meta.url));
const DATA = path.join(path.dirname(path.dirname(path.dirname(HERE))), "shared", "data");
const DEFAULT_FILES = [
  "pretrain/tinyshakespeare/input.txt",
  "pretrain/wikitext-2-raw/wiki.test.raw",
  "pretrain/wikitext-2/valid.txt",
  "pretrain/wikitext-2/test.txt",
  "pretrain/tinystories/TinyStories-train.head-part1.txt",
  "pretrain/code/linux-kernel.txt",
  "sft/alpaca/alpaca_5000.json",
].map((f) => path.join(DATA, f));

const args = process.argv.slice(2);
let encodings = ["gpt2", "r50k_base", "p50k_base", "cl100k_base", "o200k_base"];
let hfDir = null;
let repeat = 2;
let files = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--encodings") encodings = args[++i].split(",");
  else if (args[i] === "--hf-dir") hfDir = args[++i];
  else if (args[i] === "--repeat") repeat = Number(args[++i]);
  else if (args[i].startsWith("--")) {
    console.error(`bench: unknown option ${args[i]}`);
    process.exit(2);
  } else files.push(args[i]);
}
if (!files.length) {
  files = DEFAULT_FILES;
  const missing = files.filter((f) => !fs.existsSync(f));
  if (missing.length) {
    console.log(`bench: SKIP: ${missing[0]} not found`);
    process.exit(77);
  }
}
const dec = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const texts = files.map((f) => dec.decode(fs.readFileSync(f)));
const mb = files.reduce((a, f) => a + fs.statSync(f).size, 0) / 1e6;
console.log(`bench: ${files.length} files, ${mb.toFixed(2)} MB; node ${process.versions.node}; ` +
  `RAYON_NUM_THREADS=${process.env.RAYON_NUM_THREADS ?? "(unset)"}`);

const tk = require("tiktoken");
const HF = hfDir ? require("tokenizers") : null;
const now = () => Number(process.hrtime.bigint()) / 1e9;

for (const name of encodings) {
  const enc = tk.get_encoding(name);
  let best = Infinity, ntok = 0;
  for (let r = 0; r < repeat; r++) {
    const t0 = now();
    ntok = 0;
    for (const t of texts) ntok += enc.encode_ordinary(t).length;
    best = Math.min(best, now() - t0);
  }
  let line = `${name.padEnd(12)} tiktoken ${(mb / best).toFixed(2)} MB/s (${best.toFixed(2)} s, ${ntok} tokens)`;
  const f = hfDir && path.join(hfDir, `${name}.json`);
  if (f && fs.existsSync(f)) {
    const tok = HF.Tokenizer.fromFile(f);
    let bestH = Infinity, nh = 0;
    for (let r = 0; r < repeat; r++) {
      const t0 = now();
      nh = 0;
      for (const t of texts) nh += (await tok.encode(t, null, { addSpecialTokens: false })).getLength();
      bestH = Math.min(bestH, now() - t0);
    }
    line += `; HF tokenizers ${(mb / bestH).toFixed(2)} MB/s (${bestH.toFixed(2)} s, ${nh} tokens)`;
  }
  console.log(line);
  enc.free();
}
