// HF tokenizers' BPE trainer (npm `tokenizers`, default BpeTrainer: vocab 30000)
// with a ByteLevel pre-tokenizer, timed on the given files. Prints JSON.
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
const require = createRequire(path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "tests", "tokenizer", "x.js"));
const { Tokenizer, BPE, byteLevelPreTokenizer } = require("tokenizers");
const tok = new Tokenizer(BPE.empty());
tok.setPreTokenizer(byteLevelPreTokenizer(false, true));
const t0 = process.hrtime.bigint();
tok.train(process.argv.slice(2));
const s = Number(process.hrtime.bigint() - t0) / 1e9;
console.log(JSON.stringify({ impl: "hf", seconds: s, vocab: tok.getVocabSize(true) }));
