#!/usr/bin/env node
// Self-check of the reference side (no kiln code involved):
//   1. shared/data/tokenizers rank files == the tiktoken package's built-in
//      encoders: same bytes for every id, same pat_str and special tokens, and
//      the same ids on every corpus sample (encode_ordinary and encode "all");
//   2. tiktoken round trip: decode(encode(sample)) == the sample's bytes;
//   3. with --hf-dir DIR: HF tokenizers with DIR/ENCODING.json (written by
//      make_hf_gpt2.py) gives the same ids as tiktoken encode(text, "all").
//
//   node check_reference.mjs CORPUS_DIR [--ranks-dir DIR] [--hf-dir DIR] [--encodings a,b,...]
//
// CORPUS_DIR is make_corpus.py's output.  Samples with "utf8": false are
// skipped.  Exit 0 all equal, 1 mismatch, 2 usage, 77 corpus or rank files absent.

import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.dirname(path.dirname(HERE));

const args = process.argv.slice(2);
let corpus = null;
let ranksDir = path.join(path.dirname(REPO), "shared", "data", "tokenizers");
let hfDir = null;
let encodings = ["gpt2", "r50k_base", "p50k_base", "cl100k_base", "o200k_base"];
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--ranks-dir") ranksDir = args[++i];
  else if (args[i] === "--hf-dir") hfDir = args[++i];
  else if (args[i] === "--encodings") encodings = args[++i].split(",");
  else if (args[i].startsWith("--") || corpus) {
    console.error(`check_reference: bad argument ${args[i]}`);
    process.exit(2);
  } else corpus = args[i];
}
if (!corpus) {
  console.error("usage: node check_reference.mjs CORPUS_DIR [--ranks-dir DIR] [--hf-dir DIR] [--encodings a,b]");
  process.exit(2);
}
const skip = (m) => {
  console.log(`check_reference: SKIP: ${m}`);
  process.exit(77);
};
if (!fs.existsSync(path.join(corpus, "index.jsonl"))) skip(`${corpus}/index.jsonl not found (run make_corpus.py)`);
if (!fs.existsSync(ranksDir)) skip(`rank files folder ${ranksDir} not found`);

const tk = require("tiktoken");
const strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const samples = fs
  .readFileSync(path.join(corpus, "index.jsonl"), "utf8")
  .split("\n")
  .filter((l) => l.trim())
  .map((l) => JSON.parse(l))
  .filter((e) => e.utf8)
  .map((e) => {
    const bytes = fs.readFileSync(path.join(corpus, e.file));
    return { name: e.name, bytes, text: strict.decode(bytes) };
  });
const totalBytes = samples.reduce((a, s) => a + s.bytes.length, 0);
console.log(`check_reference: ${samples.length} samples, ${totalBytes} bytes`);

let failures = 0;
const fail = (m) => {
  failures++;
  if (failures <= 40) console.log(`FAIL ${m}`);
};
const eq = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
const firstDiff = (a, b) => {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
};

let HF = null;
if (hfDir) HF = require("tokenizers");

for (const name of encodings) {
  const builtin = tk.get_encoding(name);
  const rf = path.join(ranksDir, `${name}.tiktoken`);
  const meta = JSON.parse(fs.readFileSync(path.join(ranksDir, `${name}.json`), "utf8"));
  const pkgMeta = JSON.parse(fs.readFileSync(path.join(HERE, "node_modules", "tiktoken", "encoders", `${name}.json`), "utf8"));
  const shared = new tk.Tiktoken(fs.readFileSync(rf, "utf8"), meta.special_tokens, meta.pat_str);

  // 1a. metadata
  if (meta.pat_str !== pkgMeta.pat_str) fail(`${name}: pat_str differs from the package's`);
  if (JSON.stringify(meta.special_tokens) !== JSON.stringify(pkgMeta.special_tokens)) fail(`${name}: special_tokens differ`);
  // 1b. every id's bytes
  const lines = fs.readFileSync(rf, "utf8").split("\n").filter((l) => l);
  let maxId = 0;
  for (const l of lines) {
    const [b64, r] = l.split(" ");
    const id = Number(r);
    maxId = Math.max(maxId, id);
    const want = Buffer.from(b64, "base64");
    let got;
    try {
      got = Buffer.from(builtin.decode_single_token_bytes(id));
    } catch {
      got = null;
    }
    if (!got || !want.equals(got)) fail(`${name}: id ${id}: rank file ${want.toString("hex")} != package ${got && got.toString("hex")}`);
  }
  for (const [s, id] of Object.entries(meta.special_tokens)) {
    const got = Buffer.from(builtin.decode_single_token_bytes(id)).toString("utf8");
    if (got !== s) fail(`${name}: special ${s} id ${id} decodes to ${got}`);
  }
  // ids the package knows that neither the rank file nor the specials list
  const known = new Set(lines.map((l) => Number(l.split(" ")[1])));
  for (const id of Object.values(meta.special_tokens)) known.add(id);
  let top = maxId;
  for (const id of known) top = Math.max(top, id);
  for (let id = 0; id <= top + 1024; id++) {
    if (known.has(id)) continue;
    let ok = true;
    try {
      builtin.decode_single_token_bytes(id);
    } catch {
      ok = false;
    }
    if (ok) fail(`${name}: the package decodes id ${id}, which the rank file and specials lack`);
  }
  const nSpecial = Object.keys(meta.special_tokens).length;

  // 1c/2/3. corpus
  let hf = null;
  if (HF) {
    const f = path.join(hfDir, `${name}.json`);
    if (fs.existsSync(f)) hf = HF.Tokenizer.fromFile(f);
    else console.log(`check_reference: ${name}: no ${f}, HF comparison skipped`);
  }
  let tTik = 0, tHF = 0, nTok = 0, hfMismatch = 0;
  for (const s of samples) {
    const t0 = process.hrtime.bigint();
    const a = builtin.encode_ordinary(s.text);
    tTik += Number(process.hrtime.bigint() - t0) / 1e9;
    nTok += a.length;
    const b = shared.encode_ordinary(s.text);
    if (!eq(a, b)) fail(`${name}: ${s.name}: rank-file encoder differs at token ${firstDiff(a, b)}`);
    const aAll = builtin.encode(s.text, "all");
    const bAll = shared.encode(s.text, "all");
    if (!eq(aAll, bAll)) fail(`${name}: ${s.name}: rank-file encoder (all) differs at token ${firstDiff(aAll, bAll)}`);
    const back = Buffer.from(builtin.decode(a));
    if (!back.equals(s.bytes)) fail(`${name}: ${s.name}: decode(encode_ordinary(x)) != x`);
    const backAll = Buffer.from(builtin.decode(aAll));
    if (!backAll.equals(s.bytes)) fail(`${name}: ${s.name}: decode(encode(x, "all")) != x`);
    if (hf) {
      const t1 = process.hrtime.bigint();
      const e = await hf.encode(s.text, null, { addSpecialTokens: false });
      tHF += Number(process.hrtime.bigint() - t1) / 1e9;
      const h = e.getIds();
      if (!eq(Array.from(aAll), h)) {
        hfMismatch++;
        const i = firstDiff(Array.from(aAll), h);
        fail(`${name}: ${s.name}: HF differs from tiktoken(all) at token ${i}: tiktoken ${JSON.stringify(Array.from(aAll.slice(i, i + 6)))} hf ${JSON.stringify(h.slice(i, i + 6))}`);
      }
    }
  }
  shared.free();
  const mb = totalBytes / 1e6;
  console.log(
    `${name}: ${lines.length} ranks + ${nSpecial} special checked; corpus ${nTok} tokens; ` +
      `tiktoken encode_ordinary ${(mb / tTik).toFixed(2)} MB/s` +
      (hf ? `; HF ${hfMismatch ? hfMismatch + " samples DIFFER" : "identical"}, ${(mb / tHF).toFixed(2)} MB/s` : ""),
  );
}
if (failures) {
  console.log(`check_reference: ${failures} failures`);
  process.exit(1);
}
console.log("check_reference: OK");
