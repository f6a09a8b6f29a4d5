// cmd_tokenizer.c: `kiln tokenizer encode|decode|encode-corpus`.
#include "cli/cli.h"

#include "core/parse.h"
#include "core/rundir.h"
#include "kiln/corpus.h"
#include "kiln/tokenizer.h"

#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

// Reads a file, or stdin for "-", into a malloc'd buffer.
static int read_input(const char *path, char **data, size_t *len, KilnErr *err) {
    if (strcmp(path, "-")) return kiln_read_file(path, data, len, err);
    KilnBuf b = {0};
    char chunk[1 << 16];
    int rc = kbuf_reserve(&b, 0);  // empty input is "", not NULL
    for (size_t got; !rc && (got = fread(chunk, 1, sizeof chunk, stdin)) > 0;) rc = kbuf_append(&b, chunk, got);
    if (rc) {
        kbuf_free(&b);
        return kiln_fail(err, "out of memory reading stdin");
    }
    *data = b.data;
    *len = b.len;
    return 0;
}

typedef struct {
    const char *tok_path, *input, *output, *pattern;
    int vocab_size;
    long long min_frequency;
    const char **specials, **allowed;
    int n_special, n_allowed;
    KilnSpecialMode mode;
    int json, bytes;
    double val_fraction;
    const char *field;
    char **files;
    int nfiles;
} Args;

static void args_free(Args *a) {
    free(a->files);
    free(a->specials);
    free(a->allowed);
}

// The lists borrow argv's strings; run() frees them with args_free whatever
// the subcommand returns.
static int parse_args(int argc, char **argv, Args *a) {
    memset(a, 0, sizeof *a);
    a->mode = KILN_SPECIAL_ERROR;
    a->val_fraction = 0.1;
    a->field = "text";
    a->files = calloc((size_t)argc + 1, sizeof *a->files);
    a->specials = calloc((size_t)argc + 1, sizeof *a->specials);
    a->allowed = calloc((size_t)argc + 1, sizeof *a->allowed);
    if (!a->files || !a->specials || !a->allowed) return cli_error("out of memory");
    a->pattern = "gpt2";
    a->min_frequency = 2;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        int more = i + 1 < argc;
        if ((!strcmp(o, "-t") || !strcmp(o, "--tokenizer")) && more) {
            a->tok_path = argv[++i];
        } else if ((!strcmp(o, "-o") || !strcmp(o, "--output")) && more) {
            a->output = argv[++i];
        } else if (!strcmp(o, "--vocab-size") && more) {
            long v;
            if (kiln_parse_long(argv[++i], 1, INT_MAX, &v))
                return cli_error("--vocab-size wants a positive integer, got '%s'", argv[i]);
            a->vocab_size = (int)v;
        } else if (!strcmp(o, "--min-frequency") && more) {
            long v;
            if (kiln_parse_long(argv[++i], 0, LONG_MAX, &v))
                return cli_error("--min-frequency wants a count, got '%s'", argv[i]);
            a->min_frequency = v;
        } else if (!strcmp(o, "--pattern") && more) {
            a->pattern = argv[++i];
        } else if (!strcmp(o, "--special") && more) {
            a->specials[a->n_special++] = argv[++i];
        } else if (!strcmp(o, "--field") && more) {
            a->field = argv[++i];
        } else if (!strcmp(o, "--val-fraction") && more) {
            if (kiln_parse_double(argv[++i], &a->val_fraction) || a->val_fraction < 0 || a->val_fraction >= 1)
                return cli_error("--val-fraction must be in [0, 1), got '%s'", argv[i]);
        } else if (!strcmp(o, "--json")) {
            a->json = 1;
        } else if (!strcmp(o, "--bytes")) {
            a->bytes = 1;
        } else if (!strcmp(o, "--allowed-special") && more) {
            a->allowed[a->n_allowed++] = argv[++i];
        } else if (!strcmp(o, "--allow-special")) {
            a->mode = KILN_SPECIAL_ALLOW;
        } else if (!strcmp(o, "--special-as-text")) {
            a->mode = KILN_SPECIAL_TEXT;
        } else if (o[0] == '-' && o[1]) {
            return cli_error("tokenizer: unknown option '%s' (or it needs a value)", o);
        } else {
            a->files[a->nfiles++] = argv[i];
        }
    }
    return 0;
}

static int load(const Args *a, KilnTokenizer **tok) {
    KilnErr err;
    if (!a->tok_path) return cli_error("tokenizer: -t TOKENIZER is required (a .tiktoken rank file)");
    if (tokenizer_load(tok, a->tok_path, &err)) return cli_error("%s", err.msg);
    return 0;
}

static int cmd_decode(const Args *a) {
    KilnTokenizer *tok;
    KilnErr err;
    if (load(a, &tok)) return 1;
    char *text = NULL, *out = NULL;
    size_t len, n;
    KilnIds ids = {0};
    int rc = 1;
    const char *src = a->nfiles ? a->files[0] : "stdin";
    if (read_input(a->nfiles ? a->files[0] : "-", &text, &len, &err)) {
        cli_error("%s", err.msg);
        goto done;
    }
    // ids separated by spaces, commas or newlines, optionally inside [ ]
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)text[i];
        if (isspace(c) || c == ',' || c == '[' || c == ']') {
            i++;
            continue;
        }
        if (!isdigit(c)) {
            cli_error("%s: byte %zu: expected a token id, got '%c'", src, i, c);
            goto done;
        }
        unsigned long v = 0;
        while (i < len && isdigit((unsigned char)text[i]) && v <= UINT32_MAX) v = v * 10 + (unsigned long)(text[i++] - '0');
        if (v > UINT32_MAX) {
            cli_error("%s: byte %zu: id too large", src, i);
            goto done;
        }
        ids_push(&ids, (uint32_t)v);
    }
    if (tokenizer_decode(tok, ids.ids, ids.n, &out, &n, &err)) {
        cli_error("%s: %s", src, err.msg);
        goto done;
    }
    fwrite(out, 1, n, stdout);
    rc = 0;
done:
    free(out);
    ids_free(&ids);
    free(text);
    tokenizer_free(tok);
    return rc;
}

// Documents of a file: the whole file, or one per line of a JSONL file (its text field).
typedef struct {
    char **text;
    size_t *len;
    int n, cap;
} Docs;

static int add_doc(Docs *d, char *text, size_t len) {
    if (d->n == d->cap) {
        int cap = d->cap ? 2 * d->cap : 1024;
        char **text2 = realloc(d->text, sizeof(char *) * cap);
        if (text2) d->text = text2;
        size_t *len2 = text2 ? realloc(d->len, sizeof(size_t) * cap) : NULL;
        if (len2) d->len = len2;
        if (!text2 || !len2) return -1;
        d->cap = cap;
    }
    d->text[d->n] = text;
    d->len[d->n++] = len;
    return 0;
}

static void docs_free(Docs *d) {
    for (int i = 0; i < d->n; i++) free(d->text[i]);
    free(d->text);
    free(d->len);
    *d = (Docs){0};
}

// A JSONL file (plain, gzip or zstd) is read by KilnDocReader: lines that are
// not documents are skipped and reported on stderr.
static int read_docs(const char *path, const char *field, Docs *docs, KilnErr *err) {
    if (!doc_is_jsonl_path(path)) {
        char *data;
        size_t len;
        if (kiln_read_file(path, &data, &len, err)) return -1;
        return add_doc(docs, data, len) ? kiln_fail(err, "out of memory") : 0;
    }
    KilnDocReader *r;
    if (docreader_open(&r, path, field, NULL, err)) return -1;
    KilnDoc doc = {0};
    int rc;
    while ((rc = docreader_next(r, &doc, err)) == 1) {
        KilnBuf text = {0};  // the document's text is handed over, not copied
        kbuf_swap(&doc.text, &text);
        if ((!text.data && kbuf_reserve(&text, 0)) || add_doc(docs, text.data, text.len)) {
            kbuf_free(&text);
            rc = kiln_fail(err, "out of memory");
            break;
        }
    }
    cli_print_skips(path, docreader_skips(r));
    docreader_close(r);
    doc_free(&doc);
    return rc < 0 ? -1 : 0;
}

static void print_ids(const KilnIds *ids, int json) {
    if (json) putchar('[');
    for (long i = 0; i < ids->n; i++) printf(i ? (json ? ",%u" : " %u") : "%u", ids->ids[i]);
    puts(json ? "]" : "");
}

// A .jsonl input is one document per line: one JSON id array per line comes out,
// encoded on all threads.
static int encode_jsonl(const KilnTokenizer *tok, const Args *a) {
    KilnErr err;
    Docs docs = {0};
    KilnIds *ids = NULL;
    int rc = 1, failed = 0;
    if (read_docs(a->files[0], a->field, &docs, &err)) cli_error("%s", err.msg);
    else if (!(ids = calloc((size_t)docs.n + 1, sizeof *ids))) cli_error("out of memory");
    else if (tokenizer_encode_batch(tok, (const char *const *)docs.text, docs.len, docs.n, a->mode, ids, &failed, &err))
        cli_error("%s: document %d: %s", a->files[0], failed + 1, err.msg);
    else {
        for (int d = 0; d < docs.n; d++) print_ids(&ids[d], 1);
        rc = 0;
    }
    for (int d = 0; ids && d < docs.n; d++) ids_free(&ids[d]);
    free(ids);
    docs_free(&docs);
    return rc;
}

static int cmd_encode(const Args *a) {
    KilnTokenizer *tok;
    KilnErr err;
    if (load(a, &tok)) return 1;
    if (a->nfiles && doc_is_jsonl_path(a->files[0])) {
        int rc = encode_jsonl(tok, a);
        tokenizer_free(tok);
        return rc;
    }
    char *text = NULL;
    size_t len;
    KilnIds ids = {0};
    int rc = 1;
    if (read_input(a->nfiles ? a->files[0] : "-", &text, &len, &err)) cli_error("%s", err.msg);
    else if (a->n_allowed ? tokenizer_encode_allowed(tok, text, len, a->allowed, a->n_allowed, &ids, &err)
                          : tokenizer_encode(tok, text, len, a->mode, &ids, &err))
        cli_error("%s: %s", a->nfiles ? a->files[0] : "stdin", err.msg);
    else {
        print_ids(&ids, a->json);
        rc = 0;
    }
    ids_free(&ids);
    free(text);
    tokenizer_free(tok);
    return rc;
}

// The documents into DIR's shards through the corpus writer: train_000000.bin
// and val_000000.bin, the last val_fraction of the tokens; documents are named in
// manifest.json by their file and their number in it. tok NULL: bytes, one after
// another with nothing between them.
static int write_corpus(const Args *a, const KilnTokenizer *tok, const Docs *docs, const int *file_end) {
    KilnErr err;
    KilnCorpusOptions o = {.out_dir = a->output, .tok = tok, .tok_name = tok ? a->tok_path : "bytes",
                           .shard_tokens = KILN_CORPUS_ONE_SHARD, .val_fraction = a->val_fraction,
                           .special = a->mode, .val_last_tokens = 1, .no_doc_start = !tok, .log = stdout};
    KilnDoc *d = calloc((size_t)docs->n + 1, sizeof *d);
    if (!d) return cli_error("out of memory");
    int rc = 0;
    for (int f = 0, i = 0; f < a->nfiles && !rc; f++)
        for (int first = i; i < file_end[f] && !rc; i++) {
            d[i].source = (KilnBuf){a->files[f], strlen(a->files[f]), 0};  // borrowed, like the text
            d[i].text = (KilnBuf){docs->text[i], docs->len[i], 0};
            if (kbuf_printf(&d[i].id, "%d", i - first + 1)) rc = kiln_fail(&err, "out of memory");
        }
    KilnCorpusWriter *w = NULL;
    int lock = -1;  // one writer per corpus directory: a second would replace the first one's shards
    if (!rc) rc = kiln_mkdirs(a->output, &err) || rundir_lock(a->output, "kiln tokenizer encode-corpus", &lock, &err);
    if (!rc) rc = corpus_writer_open(&w, &o, &err);
    if (!rc && docs->n && corpus_writer_add(w, d, docs->n, &err)) corpus_writer_abort(w), rc = -1;
    if (!rc) rc = corpus_writer_finish(w, NULL, &err);
    rundir_unlock(lock);
    for (int i = 0; i < docs->n; i++) kbuf_free(&d[i].id);
    free(d);
    return rc ? cli_error("%s", err.msg) : 0;
}

static int cmd_encode_corpus(const Args *a) {
    KilnErr err;
    if (!a->output) return cli_error("encode-corpus: -o DIR is required");
    if (!a->nfiles) return cli_error("encode-corpus: no input files");
    if (!a->bytes && !a->tok_path) return cli_error("encode-corpus: give -t TOKENIZER, or --bytes for one token per byte");
    if (a->n_allowed)  // the corpus writer takes one mode for all special tokens
        return cli_error("encode-corpus: --allowed-special is for encode; use --allow-special or --special-as-text");
    Docs docs = {0};
    KilnTokenizer *tok = NULL;
    int rc = 1;
    int *file_end = calloc((size_t)a->nfiles, sizeof *file_end);
    if (!file_end) {
        cli_error("out of memory");
        goto done;
    }
    for (int i = 0; i < a->nfiles; i++) {
        if (read_docs(a->files[i], a->field, &docs, &err)) {
            cli_error("%s", err.msg);
            goto done;
        }
        file_end[i] = docs.n;
    }
    if (!a->bytes && load(a, &tok)) goto done;
    rc = write_corpus(a, tok, &docs, file_end);
done:
    if (tok) tokenizer_free(tok);
    docs_free(&docs);
    free(file_end);
    return rc;
}

static int cmd_train(const Args *a) {
    KilnErr err;
    if (!a->output) return cli_error("train: --output FILE.json is required");
    if (!a->vocab_size) return cli_error("train: --vocab-size N is required");
    if (!a->nfiles) return cli_error("train: no input files");
    const char *pattern = tokenizer_pattern_by_name(a->pattern);
    if (!pattern) {
        // a bare word is meant as a name; anything else is a regex of its own
        if (strspn(a->pattern, "abcdefghijklmnopqrstuvwxyz0123456789_-") == strlen(a->pattern))
            return cli_error("train: unknown pattern name '%s' (gpt2, cl100k, o200k, or a regex)", a->pattern);
        pattern = a->pattern;
    }
    KilnSkips skips = {0};
    KilnBpeTrainOptions o = {a->vocab_size, pattern, a->specials, a->n_special, a->min_frequency, a->field, stderr, &skips};
    KilnTokenizer *tok;
    if (tokenizer_train(&tok, (const char *const *)a->files, a->nfiles, &o, &err)) return cli_error("train: %s", err.msg);
    cli_print_skips("train", &skips);
    int rc = tokenizer_save_json(tok, a->output, &err);
    if (rc) cli_error("%s", err.msg);
    else fprintf(stderr, "wrote %s (%d tokens)\n", a->output, tokenizer_vocab_size(tok));
    tokenizer_free(tok);
    return rc ? 1 : 0;
}

// Rewrites any tokenizer kiln reads as a tokenizer.json (e.g. tiktoken -> HF).
static int cmd_convert(const Args *a) {
    KilnTokenizer *tok;
    KilnErr err;
    if (!a->output) return cli_error("convert: -o FILE.json is required");
    if (load(a, &tok)) return 1;
    int rc = tokenizer_save_json(tok, a->output, &err);
    if (rc) cli_error("%s", err.msg);
    else fprintf(stderr, "wrote %s (%d tokens)\n", a->output, tokenizer_vocab_size(tok));
    tokenizer_free(tok);
    return rc ? 1 : 0;
}

// The figures one compares tokenizers by, per input file.
static int cmd_stats(const Args *a) {
    KilnTokenizer *tok;
    KilnErr err;
    if (!a->nfiles) return cli_error("stats: no input files");
    if (load(a, &tok)) return 1;
    int V = tokenizer_vocab_size(tok), rc = 1;
    uint8_t *used_all = calloc((size_t)V, 1), *used = NULL;
    Docs docs = {0};
    KilnIds ids = {0};
    if (!used_all) {
        cli_error("out of memory");
        goto done;
    }
    if (a->json) printf("[");
    else printf("%-40s %12s %11s %11s %9s %10s %10s\n", "source", "bytes", "tokens", "bytes/tok", "tok/word", "split-utf8", "vocab use");
    for (int f = 0; f < a->nfiles; f++) {
        if (read_docs(a->files[f], a->field, &docs, &err)) {
            cli_error("%s", err.msg);
            goto done;
        }
        if (!(used = calloc((size_t)V, 1))) {
            cli_error("out of memory");
            goto done;
        }
        long long bytes = 0, tokens = 0, words = 0, split = 0, distinct = 0;
        for (int d = 0; d < docs.n; d++) {
            if (tokenizer_encode(tok, docs.text[d], docs.len[d], KILN_SPECIAL_TEXT, &ids, &err)) {
                cli_error("%s: %s", a->files[f], err.msg);
                goto done;
            }
            bytes += (long long)docs.len[d];
            tokens += ids.n;
            for (size_t i = 0; i < docs.len[d]; i++)  // words: runs of non-space bytes
                words += !isspace((unsigned char)docs.text[d][i]) && (i == 0 || isspace((unsigned char)docs.text[d][i - 1]));
            for (long i = 0; i < ids.n; i++) {
                int len;
                const uint8_t *b = tokenizer_token_bytes(tok, (int)ids.ids[i], &len);
                // a token that is not whole UTF-8 characters: byte-level fallback
                int lead = b[0] < 0x80 || b[0] >= 0xC0, bad = !lead;
                for (int k = 0, need = 0; k < len && !bad; k++) {
                    uint8_t c = b[k];
                    if (need) { bad = (c & 0xC0) != 0x80; need--; }
                    else need = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : 0;
                    if (k == len - 1 && need) bad = 1;
                }
                split += bad;
                if (!used[ids.ids[i]]) { used[ids.ids[i]] = 1; distinct++; }
                used_all[ids.ids[i]] = 1;
            }
            ids_free(&ids);
        }
        docs_free(&docs);
        free(used);
        used = NULL;
        double bpt = tokens ? (double)bytes / tokens : 0, fert = words ? (double)tokens / words : 0;
        double sr = tokens ? (double)split / tokens : 0, use = (double)distinct / V;
        if (a->json)
            printf("%s{\"source\": \"%s\", \"bytes\": %lld, \"tokens\": %lld, \"words\": %lld, \"bytes_per_token\": %.4f, "
                   "\"tokens_per_word\": %.4f, \"split_utf8_rate\": %.6f, \"distinct_tokens\": %lld, \"vocab_use\": %.6f}",
                   f ? ", " : "", a->files[f], bytes, tokens, words, bpt, fert, sr, distinct, use);
        else
        {
            size_t n = strlen(a->files[f]);  // long paths: keep their end
            printf("%s%-*s %12lld %11lld %11.3f %9.3f %9.4f%% %9.2f%%\n", n > 40 ? "..." : "", n > 40 ? 37 : 40,
                   n > 40 ? a->files[f] + n - 37 : a->files[f], bytes, tokens, bpt, fert, 100 * sr, 100 * use);
        }
    }
    long long all = 0;
    for (int i = 0; i < V; i++) all += used_all[i];
    if (a->json) printf("]\n");
    else printf("all sources use %lld of %d tokens (%.2f%%)\n", all, V, 100.0 * all / V);
    rc = 0;
done:
    ids_free(&ids);
    docs_free(&docs);
    free(used);
    free(used_all);
    tokenizer_free(tok);
    return rc;
}

static const char USAGE[] =
    "usage: kiln tokenizer train --vocab-size N --output TOK.json [--pattern gpt2|cl100k|o200k|REGEX]\n"
    "                             [--special TOKEN]... [--min-frequency K] [--field NAME] INPUT...\n"
    "       kiln tokenizer encode -t TOK [--json] [--allow-special | --allowed-special TOKEN... |\n"
    "                             --special-as-text] [FILE|-]\n"
    "       kiln tokenizer decode -t TOK [FILE|-]\n"
    "       kiln tokenizer encode-corpus (-t TOK | --bytes) -o DIR [--val-fraction F] [--field NAME]\n"
    "                             [--allow-special | --special-as-text] FILE...\n"
    "       kiln tokenizer stats -t TOK [--json] [--field NAME] FILE...\n"
    "       kiln tokenizer convert -t TOK -o OUT.json\n"
    "\n"
    "TOK is a Hugging Face tokenizer.json, or a tiktoken rank file (NAME.tiktoken,\n"
    "with NAME.json beside it holding pat_str and special_tokens, as\n"
    "../shared/data/tokenizers has them).\n"
    "\n"
    "JSONL inputs (.jsonl, .jsonl.gz, .jsonl.zst) are read as kiln data reads them: one\n"
    "document per line; a line that is not one is skipped and named on stderr.\n"
    "\n"
    "train          trains a byte-level BPE (ids 0-255 the bytes, then merges, then the\n"
    "               --special tokens) on text files (each a document) and .jsonl files\n"
    "               (one document per line, field --field, default \"text\"); counts on all\n"
    "               threads; pairs seen fewer than --min-frequency times (default 2) never\n"
    "               merge. Writes a tokenizer.json that HF tokenizers loads.\n"
    "encode         prints the ids of a file (or stdin), space separated or as a JSON\n"
    "               array; a .jsonl file gives one JSON array per line (its --field),\n"
    "               encoded on all threads. Special-token text is an error unless\n"
    "               --allow-special (it becomes the special id), --allowed-special TOKEN\n"
    "               (that one only; repeatable) or --special-as-text.\n"
    "decode         reads ids (space/comma separated or a JSON array) and writes the bytes.\n"
    "encode-corpus  turns text files (one document each) and .jsonl files (one document\n"
    "               per line, field --field, default \"text\") into token shards (llm.c\n"
    "               .bin): DIR/train_000000.bin and DIR/val_000000.bin (the last F of the\n"
    "               tokens, default 0.1), listed in DIR/manifest.json with the documents\n"
    "               behind each token range. With -t, each document starts with <|endoftext|>\n"
    "               if the tokenizer has it; encoding runs on all threads. Special-token\n"
    "               text in a document is an error naming it, unless --allow-special or\n"
    "               --special-as-text (as for encode). --bytes: one token per byte\n"
    "               (vocabulary 256).\n"
    "convert        writes TOK as a Hugging Face tokenizer.json (a tiktoken rank file\n"
    "               becomes merges with ignore_merges, which encodes identically).\n"
    "stats          per input: bytes, tokens, bytes per token, tokens per word (fertility),\n"
    "               the share of tokens that split a UTF-8 character (byte fallback) and\n"
    "               the share of the vocabulary used.\n";

static const struct {
    const char *name;
    int (*fn)(const Args *);
} SUBCOMMANDS[] = {{"train", cmd_train},   {"stats", cmd_stats},   {"convert", cmd_convert},
                   {"encode", cmd_encode}, {"decode", cmd_decode}, {"encode-corpus", cmd_encode_corpus}};

// Parses the subcommand's arguments once and frees them here, whatever it returns.
static int run(int argc, char **argv) {
    if (argc < 2) {
        fputs(USAGE, stderr);
        return 1;
    }
    for (size_t i = 0; i < sizeof SUBCOMMANDS / sizeof *SUBCOMMANDS; i++) {
        if (strcmp(argv[1], SUBCOMMANDS[i].name)) continue;
        Args a;
        int rc = parse_args(argc - 1, argv + 1, &a) ? 1 : SUBCOMMANDS[i].fn(&a);
        args_free(&a);
        return rc;
    }
    return cli_error("tokenizer: unknown subcommand '%s' (see `kiln tokenizer --help`)", argv[1]);
}

const KilnCommand CMD_TOKENIZER = {"tokenizer", run, "encode and decode text, make token shards", USAGE, 0};
