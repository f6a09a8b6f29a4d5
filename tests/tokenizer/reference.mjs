#!/usr/bin/env node
// Reference token ids for kiln's tokenizer exactness tests, from the real
// npm packages `tiktoken` (OpenAI's Rust tiktoken compiled to WASM) and
// `tokenizers` (Hugging Face's Rust tokenizers, native N-API binding).
//
//   node reference.mjs tiktoken ENCODING FILE [--allowed-special all|none] [--lossy]
//   node reference.mjs tiktoken-batch ENCODING JSONL_IN [--allowed-special all|none] [--lossy]
//   node reference.mjs hf TOKENIZER_JSON FILE [--lossy]
//   node reference.mjs hf-batch TOKENIZER_JSON JSONL_IN [--lossy]
//   node reference.mjs decode-tiktoken ENCODING IDS_JSON_FILE
//   node reference.mjs decode-hf TOKENIZER_JSON IDS_JSON_FILE
//   node reference.mjs versions
//
// ENCODING: a tiktoken built-in name (gpt2, r50k_base, p50k_base, p50k_edit,
//   cl100k_base, o200k_base), or a path to a rank file X.tiktoken with its
//   X.json (pat_str, special_tokens) beside it, as in shared/data/tokenizers.
// FILE / IDS_JSON_FILE / JSONL_IN: a path, or "-" for stdin.
// Encoding prints one JSON array of ids (and a newline).  tiktoken uses
//   encode_ordinary(text) by default (special-token text is plain text);
//   --allowed-special all uses encode(text, "all").  hf encodes with
//   add_special_tokens=false (added tokens in tokenizer.json still match).
// Batch: each input line is {"text": STRING} or {"file": PATH} (PATH relative
//   to the JSONL file's folder, e.g. make_corpus.py's index.jsonl); each output
//   line is the id array of that input, or {"error": MESSAGE} for an input
//   that cannot be encoded (invalid UTF-8 or lone surrogates, see below).
// decode-*: IDS_JSON_FILE holds a JSON array of ids; prints the decoded bytes
//   as base64.  decode-hf gets a JS string from HF (lossy for partial UTF-8
//   sequences: U+FFFD), so it prints the UTF-8 of that string.
//
// Input must be valid UTF-8 (a text file's bytes) and texts must be well-formed
// UTF-16 (no lone surrogates).  Both packages take JS strings, and the
// JS->Rust string conversion silently turns invalid input into U+FFFD, so such
// inputs have no exact reference: they are refused (exit 3; in batch an
// {"error"} line) unless --lossy, which repairs them the WHATWG way (U+FFFD per
// maximal invalid subsequence; lone surrogates -> U+FFFD) before encoding.
// A leading BOM (U+FEFF) is kept as text.
//
// Exit status: 0 ok, 2 usage, 3 invalid input, 1 other errors.

import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);

function die(code, msg) {
  process.stderr.write(`reference.mjs: ${msg}\n`);
  process.exit(code);
}

class InvalidInput extends Error {}

const strictDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const lossyDecoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });

function readBytes(p) {
  return p === "-" ? fs.readFileSync(0) : fs.readFileSync(p);
}

function bytesToText(buf, lossy) {
  if (lossy) return lossyDecoder.decode(buf);
  try {
    return strictDecoder.decode(buf);
  } catch {
    throw new InvalidInput("input is not valid UTF-8 (use --lossy to replace invalid bytes with U+FFFD)");
  }
}

// With the u flag a surrogate class matches only unpaired surrogates
// (String.prototype.isWellFormed needs Node 20; Debian 12 has Node 18).
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

function checkText(s, lossy) {
  if (!LONE_SURROGATE.test(s)) return s;
  if (lossy) return s.replace(/[\uD800-\uDFFF]/gu, "\uFFFD");
  throw new InvalidInput("text has lone surrogates (use --lossy to replace them with U+FFFD)");
}

// ------------------------------------------------------------------ tiktoken

function loadTiktoken(name) {
  const tk = require("tiktoken");
  if (name.endsWith(".tiktoken")) {
    const metaPath = name.slice(0, -".tiktoken".length) + ".json";
    if (!fs.existsSync(name)) die(1, `rank file ${name} not found`);
    if (!fs.existsSync(metaPath)) die(1, `${metaPath} (pat_str, special_tokens) not found`);
    const meta = JSON.parse(fs.readFileSync(metaPath, "utf8"));
    return new tk.Tiktoken(fs.readFileSync(name, "utf8"), meta.special_tokens, meta.pat_str);
  }
  try {
    return tk.get_encoding(name);
  } catch (e) {
    die(2, `unknown tiktoken encoding ${JSON.stringify(name)} (${e.message ?? e})`);
  }
}

function tiktokenEncoder(enc, allowed) {
  if (allowed === "all") return (s) => enc.encode(s, "all");
  return (s) => enc.encode_ordinary(s);
}

// ------------------------------------------------------------- HF tokenizers

function loadHF(file) {
  const { Tokenizer } = require("tokenizers");
  if (!fs.existsSync(file)) die(1, `tokenizer file ${file} not found`);
  return Tokenizer.fromFile(file);
}

async function hfEncode(tok, s) {
  const e = await tok.encode(s, null, { addSpecialTokens: false });
  return e.getIds();
}

// ---------------------------------------------------------------------- main

function parseOpts(args) {
  const pos = [];
  const o = { allowed: "none", lossy: false };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--allowed-special") {
      o.allowed = args[++i];
      if (o.allowed !== "all" && o.allowed !== "none") die(2, "--allowed-special takes all or none");
    } else if (a.startsWith("--allowed-special=")) {
      o.allowed = a.split("=")[1];
      if (o.allowed !== "all" && o.allowed !== "none") die(2, "--allowed-special takes all or none");
    } else if (a === "--lossy") {
      o.lossy = true;
    } else if (a.startsWith("--")) {
      die(2, `unknown option ${a}`);
    } else {
      pos.push(a);
    }
  }
  return [pos, o];
}

function ids2json(ids) {
  return JSON.stringify(Array.from(ids));
}

async function runBatch(jsonlPath, lossy, encodeText) {
  const base = jsonlPath === "-" ? process.cwd() : path.dirname(path.resolve(jsonlPath));
  const lines = readBytes(jsonlPath).toString("utf8").split("\n");
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n];
    if (line.trim() === "") continue;
    let rec;
    try {
      rec = JSON.parse(line);
    } catch (e) {
      die(2, `${jsonlPath}:${n + 1}: bad JSON: ${e.message}`);
    }
    let res;
    try {
      let text;
      if (typeof rec.text === "string") text = checkText(rec.text, lossy);
      else if (typeof rec.file === "string") text = bytesToText(fs.readFileSync(path.resolve(base, rec.file)), lossy);
      else die(2, `${jsonlPath}:${n + 1}: needs "text" (string) or "file"`);
      res = ids2json(await encodeText(text));
    } catch (e) {
      if (!(e instanceof InvalidInput)) throw e;
      res = JSON.stringify({ error: e.message });
    }
    process.stdout.write(res + "\n");
  }
}

function readIds(p) {
  const ids = JSON.parse(readBytes(p).toString("utf8"));
  if (!Array.isArray(ids) || !ids.every((x) => Number.isInteger(x) && x >= 0)) die(2, `${p}: not a JSON array of ids`);
  return ids;
}

async function main() {
  const [cmd, ...rest] = process.argv.slice(2);
  const [pos, o] = parseOpts(rest);
  const need = (n, usage) => {
    if (pos.length !== n) die(2, `usage: node reference.mjs ${cmd} ${usage}`);
  };
  switch (cmd) {
    case "tiktoken": {
      need(2, "ENCODING FILE [--allowed-special all|none] [--lossy]");
      const enc = tiktokenEncoder(loadTiktoken(pos[0]), o.allowed);
      const text = bytesToText(readBytes(pos[1]), o.lossy);
      process.stdout.write(ids2json(enc(text)) + "\n");
      break;
    }
    case "tiktoken-batch": {
      need(2, "ENCODING JSONL_IN [--allowed-special all|none] [--lossy]");
      const enc = tiktokenEncoder(loadTiktoken(pos[0]), o.allowed);
      await runBatch(pos[1], o.lossy, async (s) => enc(s));
      break;
    }
    case "hf": {
      need(2, "TOKENIZER_JSON FILE [--lossy]");
      if (o.allowed !== "none") die(2, "--allowed-special is tiktoken-only (HF always matches added tokens)");
      const tok = loadHF(pos[0]);
      const text = bytesToText(readBytes(pos[1]), o.lossy);
      process.stdout.write(ids2json(await hfEncode(tok, text)) + "\n");
      break;
    }
    case "hf-batch": {
      need(2, "TOKENIZER_JSON JSONL_IN [--lossy]");
      if (o.allowed !== "none") die(2, "--allowed-special is tiktoken-only (HF always matches added tokens)");
      const tok = loadHF(pos[0]);
      await runBatch(pos[1], o.lossy, (s) => hfEncode(tok, s));
      break;
    }
    case "decode-tiktoken": {
      need(2, "ENCODING IDS_JSON_FILE");
      const enc = loadTiktoken(pos[0]);
      const bytes = enc.decode(Uint32Array.from(readIds(pos[1])));
      process.stdout.write(Buffer.from(bytes).toString("base64") + "\n");
      break;
    }
    case "decode-hf": {
      need(2, "TOKENIZER_JSON IDS_JSON_FILE");
      const tok = loadHF(pos[0]);
      const s = await tok.decode(readIds(pos[1]), false);
      process.stdout.write(Buffer.from(s, "utf8").toString("base64") + "\n");
      break;
    }
    case "versions": {
      const v = (p) => {
        // package.json is not in tiktoken's "exports": find it above the main module.
        let d = path.dirname(require.resolve(p));
        while (!fs.existsSync(path.join(d, "package.json"))) d = path.dirname(d);
        return JSON.parse(fs.readFileSync(path.join(d, "package.json"), "utf8")).version;
      };
      process.stdout.write(JSON.stringify({ node: process.versions.node, tiktoken: v("tiktoken"), tokenizers: v("tokenizers") }) + "\n");
      break;
    }
    default:
      die(2, "usage: node reference.mjs tiktoken|tiktoken-batch|hf|hf-batch|decode-tiktoken|decode-hf|versions ... (see the header of reference.mjs)");
  }
}

main().catch((e) => {
  if (e instanceof InvalidInput) die(3, e.message);
  if (e && e.code === "ENOENT") die(1, e.message);
  die(1, e && e.stack ? e.stack : String(e));
});
