// corpus.c: documents -> token shards + manifest.json (see corpus.h).
#include "kiln/corpus.h"
#include "core/shard.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

enum { TRAIN, VAL };

// One split's shard being filled, and the manifest entries of finished shards.
typedef struct {
    const char *name;  // "train" / "val"
    KilnIds cur;       // tokens of the shard being filled
    KilnBuf cur_docs;  // its documents as JSON arrays ["source","id",start,ntokens],...
    int nshards;
    long tokens, docs;
} Split;

// With val_last_tokens the split is known only at the end: every document's
// tokens wait here, with its manifest name, until corpus_writer_finish.
typedef struct {
    KilnIds ids;
    KilnBuf names;     // each document's `"source","id"` (JSON), one after another
    size_t *name_end;  // document i's name ends at names.data + name_end[i]
    long *ntok;        // its token count
    long n, cap;
} Held;

struct KilnCorpusWriter {
    KilnCorpusOptions o;
    char *out_dir;
    char stage[4096];  // out_dir/.corpus-<random>.tmp: shards and manifest until they all are written
    int vocab, eot;
    Split split[2];
    Held held;
    KilnBuf shards_json;  // finished shards' manifest entries
    KilnBuf tmp;
    // per-source totals: names and counts, small and linear
    char **src_names;
    long *src_docs, *src_tokens;
    int nsrc;
};

static int is_shard_name(const char *n) {
    size_t l = strlen(n);
    return (!strncmp(n, "train_", 6) || !strncmp(n, "val_", 4)) && l > 4 && !strcmp(n + l - 4, ".bin");
}

// Removes the staging directories a killed writer left in out_dir (one writer
// at a time per out_dir: two would replace each other's manifest anyway).
static void remove_stale_stages(const char *out_dir) {
    DIR *d = opendir(out_dir);
    struct dirent *e;
    char p[4096];
    while (d && (e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (!strncmp(e->d_name, ".corpus-", 8) && l > 4 && !strcmp(e->d_name + l - 4, ".tmp") &&
            snprintf(p, sizeof p, "%s/%s", out_dir, e->d_name) < (int)sizeof p)
            kiln_remove_tree(p);
    }
    if (d) closedir(d);
}

// Moves the staged shards and manifest into out_dir: every new shard renamed
// over its name, then the earlier corpus's other shards removed, the manifest
// last. Only a failure in these renames (not in writing) leaves a mix, which
// the manifest's sha256 of each shard then refuses.
static int install(KilnCorpusWriter *w, KilnErr *err) {
    char a[4096 + 256], b[4096 + 256];
    DIR *d = opendir(w->stage);
    if (!d) return kiln_fail(err, "%s: %s", w->stage, strerror(errno));
    struct dirent *e;
    int rc = 0;
    while (!rc && (e = readdir(d))) {
        if (!is_shard_name(e->d_name)) continue;
        snprintf(a, sizeof a, "%s/%s", w->stage, e->d_name);
        snprintf(b, sizeof b, "%s/%s", w->out_dir, e->d_name);
        if (rename(a, b)) rc = kiln_fail(err, "%s: cannot move into place: %s", b, strerror(errno));
    }
    closedir(d);
    if (rc) return -1;
    // shards of the earlier corpus that the new one does not have
    if ((d = opendir(w->out_dir))) {
        while ((e = readdir(d))) {
            if (!is_shard_name(e->d_name)) continue;
            char want[80];
            int k;
            if (sscanf(e->d_name, "%*[a-z]_%d.bin", &k) != 1) continue;
            Split *s = &w->split[e->d_name[0] == 't' ? TRAIN : VAL];
            snprintf(want, sizeof want, "%s_%06d.bin", s->name, k);
            if (k >= s->nshards || strcmp(want, e->d_name)) {
                snprintf(b, sizeof b, "%s/%s", w->out_dir, e->d_name);
                unlink(b);
            }
        }
        closedir(d);
    }
    snprintf(a, sizeof a, "%s/manifest.json", w->stage);
    snprintf(b, sizeof b, "%s/manifest.json", w->out_dir);
    if (rename(a, b)) return kiln_fail(err, "%s: cannot move into place: %s", b, strerror(errno));
    rmdir(w->stage);
    w->stage[0] = 0;
    return kiln_fsync_dir(w->out_dir, err);
}

int corpus_writer_open(KilnCorpusWriter **wp, const KilnCorpusOptions *o, KilnErr *err) {
    if (o->shard_tokens < 1024) return kiln_fail(err, "shard_tokens must be at least 1024, got %ld", o->shard_tokens);
    if (o->val_fraction < 0 || o->val_fraction >= 1)
        return kiln_fail(err, "val_fraction must be in [0, 1), got %g", o->val_fraction);
    if (kiln_mkdirs(o->out_dir, err)) return -1;
    remove_stale_stages(o->out_dir);
    KilnCorpusWriter *w = calloc(1, sizeof *w);
    if (!w) return kiln_fail(err, "out of memory");
    w->o = *o;
    w->out_dir = strdup(o->out_dir);
    w->o.out_dir = w->out_dir;
    if (!w->out_dir) {
        free(w);
        return kiln_fail(err, "out of memory");
    }
    // the shards and manifest are written in a directory of their own and moved
    // into out_dir only once all are written and synced: a full disk, an I/O
    // error or a kill meanwhile leaves out_dir's earlier corpus as it was
    if (kiln_temp_create(w->stage, sizeof w->stage, w->out_dir, "corpus", 1) != 0) {
        int e = errno;
        free(w->out_dir);
        free(w);
        return kiln_fail(err, "%s: cannot create a temp directory: %s", o->out_dir, strerror(e));
    }
    w->vocab = o->tok ? tokenizer_vocab_size(o->tok) : 256;
    w->eot = o->no_doc_start ? -1 : o->tok ? tokenizer_special_id(o->tok, "<|endoftext|>") : 0;
    w->split[TRAIN].name = "train";
    w->split[VAL].name = "val";
    *wp = w;
    return 0;
}

long corpus_writer_tokens(const KilnCorpusWriter *w) { return w->split[0].tokens + w->split[1].tokens + w->held.ids.n; }
long corpus_writer_docs(const KilnCorpusWriter *w) { return w->split[0].docs + w->split[1].docs + w->held.n; }

// Writes the split's current shard (an empty one only when asked) and records
// it in the manifest.
static int flush_shard(KilnCorpusWriter *w, Split *s, int even_empty, KilnErr *err) {
    if (s->cur.n == 0 && !even_empty) return 0;
    char name[64], path[4096], hex[65];
    snprintf(name, sizeof name, "%s_%06d.bin", s->name, s->nshards);
    snprintf(path, sizeof path, "%s/%s", w->stage, name);
    if (shard_write(path, s->cur.ids, s->cur.n, w->vocab, err) || kiln_sha256_file(path, hex, err)) {
        // name the shard by where it goes, not by the staging directory
        char final[4096 + 64];
        snprintf(final, sizeof final, "%s/%s", w->out_dir, name);
        return kiln_wrap(err, "%s", final);
    }
    if (w->o.log) fprintf(w->o.log, "wrote %s/%s (%ld tokens)\n", w->out_dir, name, s->cur.n);
    if (kbuf_printf(&w->shards_json,
                    "%s\n    {\"path\":\"%s\",\"split\":\"%s\",\"tokens\":%ld,\"sha256\":\"%s\",\"docs\":[",
                    w->shards_json.len ? "," : "", name, s->name, s->cur.n, hex) ||
        kbuf_append(&w->shards_json, s->cur_docs.data, s->cur_docs.len) ||
        kbuf_puts(&w->shards_json, "]}"))
        return kiln_fail(err, "out of memory");
    s->nshards++;
    s->cur.n = 0;
    kbuf_clear(&s->cur_docs);
    return 0;
}

static int count_source(KilnCorpusWriter *w, const KilnDoc *d, long ntok) {
    int i = 0;
    while (i < w->nsrc && strcmp(w->src_names[i], d->source.data)) i++;
    if (i == w->nsrc) {
        char **nn = realloc(w->src_names, (size_t)(i + 1) * sizeof *nn);
        long *nd = realloc(w->src_docs, (size_t)(i + 1) * sizeof *nd);
        if (nn) w->src_names = nn;
        if (nd) w->src_docs = nd;
        long *nt = realloc(w->src_tokens, (size_t)(i + 1) * sizeof *nt);
        if (nt) w->src_tokens = nt;
        if (!nn || !nd || !nt || !(w->src_names[i] = strdup(d->source.data))) return -1;
        w->src_docs[i] = w->src_tokens[i] = 0;
        w->nsrc++;
    }
    w->src_docs[i]++;
    w->src_tokens[i] += ntok;
    return 0;
}

// A document's name in the manifest: `"source","id"` (JSON), into out.
static int doc_name(KilnBuf *out, const KilnDoc *d) {
    return kbuf_putc(out, '"') || kbuf_json_escape(out, d->source.data, d->source.len) || kbuf_puts(out, "\",\"") ||
           kbuf_json_escape(out, d->id.data, d->id.len) || kbuf_putc(out, '"');
}

// Appends n tokens of a document (named as doc_name does) to split s, cutting
// shards at shard_tokens. A document may span two shards; each part is listed
// with its range. The caller counts the document.
static int split_append(KilnCorpusWriter *w, Split *s, const char *name, size_t name_len, const uint32_t *ids, long n,
                        KilnErr *err) {
    s->tokens += n;
    for (long done = 0; done < n;) {
        long room = w->o.shard_tokens - s->cur.n, k = n - done < room ? n - done : room;
        KilnBuf *b = &s->cur_docs;
        if (kbuf_puts(b, b->len ? ",[" : "[") || kbuf_append(b, name, name_len) ||
            kbuf_printf(b, ",%ld,%ld]", s->cur.n, k))
            return kiln_fail(err, "out of memory");
        if (ids_append(&s->cur, ids + done, k)) return kiln_fail(err, "out of memory");
        done += k;
        if (s->cur.n == w->o.shard_tokens && flush_shard(w, s, 0, err)) return -1;
    }
    return 0;
}

// Keeps a document for the split at the end (val_last_tokens).
static int hold_doc(Held *h, const KilnDoc *d, const uint32_t *ids, long n) {
    if (h->n == h->cap) {
        long cap = h->cap ? 2 * h->cap : 1024;
        size_t *ends = realloc(h->name_end, (size_t)cap * sizeof *ends);
        if (ends) h->name_end = ends;
        long *nt = realloc(h->ntok, (size_t)cap * sizeof *nt);
        if (nt) h->ntok = nt;
        if (!ends || !nt) return -1;
        h->cap = cap;
    }
    if (doc_name(&h->names, d) || ids_append(&h->ids, ids, n)) return -1;
    h->name_end[h->n] = h->names.len;
    h->ntok[h->n++] = n;
    return 0;
}

// val_last_tokens: the held documents into train up to the cut, the rest into val.
static int split_held(KilnCorpusWriter *w, KilnErr *err) {
    Held *h = &w->held;
    long total = h->ids.n, cut = total - (long)(total * w->o.val_fraction), pos = 0;
    size_t name = 0;
    int rc = 0;
    for (long i = 0; i < h->n && !rc; i++) {
        const char *nm = h->names.data + name;
        size_t len = h->name_end[i] - name;
        long n = h->ntok[i], k = pos + n <= cut ? n : pos < cut ? cut - pos : 0;  // k tokens before the cut
        w->split[pos < cut ? TRAIN : VAL].docs++;  // counted where it starts
        if (k) rc = split_append(w, &w->split[TRAIN], nm, len, h->ids.ids + pos, k, err);
        if (!rc && n > k) rc = split_append(w, &w->split[VAL], nm, len, h->ids.ids + pos + k, n - k, err);
        pos += n, name = h->name_end[i];
    }
    h->ids.n = h->n = 0;  // counted in the splits now
    return rc;
}

// Appends one encoded document to its split: chosen by a hash of (seed, source,
// id), or held for the cut at the end.
static int append_doc(KilnCorpusWriter *w, const KilnDoc *d, const uint32_t *ids, long n, KilnErr *err) {
    if (count_source(w, d, n)) return kiln_fail(err, "out of memory");
    if (w->o.val_last_tokens) return hold_doc(&w->held, d, ids, n) ? kiln_fail(err, "out of memory") : 0;
    uint64_t h = XXH3_64bits_withSeed(d->id.data, d->id.len, w->o.seed ^ XXH3_64bits(d->source.data, d->source.len));
    Split *s = &w->split[(double)(h >> 11) * 0x1.0p-53 < w->o.val_fraction ? VAL : TRAIN];
    s->docs++;
    kbuf_clear(&w->tmp);
    if (doc_name(&w->tmp, d)) return kiln_fail(err, "out of memory");
    return split_append(w, s, w->tmp.data, w->tmp.len, ids, n, err);
}

int corpus_writer_add(KilnCorpusWriter *w, const KilnDoc *docs, int n, KilnErr *err) {
    KilnIds *ids = calloc((size_t)n, sizeof *ids);
    if (!ids) return kiln_fail(err, "out of memory");
    int rc = 0;
    if (w->o.tok) {
        const char **texts = malloc(sizeof *texts * (size_t)n);
        size_t *lens = malloc(sizeof *lens * (size_t)n);
        if (!texts || !lens) rc = kiln_fail(err, "out of memory");
        for (int i = 0; !rc && i < n; i++) texts[i] = docs[i].text.data, lens[i] = docs[i].text.len;
        int bad = 0;
        if (!rc && tokenizer_encode_batch(w->o.tok, texts, lens, n, w->o.special, ids, &bad, err))
            rc = kiln_wrap(err, "%.*s, document %.*s", (int)docs[bad].source.len, docs[bad].source.data,
                           (int)docs[bad].id.len, docs[bad].id.data);
        free(texts);
        free(lens);
    }
    KilnIds one = {0};
    for (int i = 0; !rc && i < n; i++) {
        one.n = 0;
        if (w->eot >= 0 && ids_push(&one, (uint32_t)w->eot)) rc = kiln_fail(err, "out of memory");
        if (!rc && w->o.tok && ids_append(&one, ids[i].ids, ids[i].n)) rc = kiln_fail(err, "out of memory");
        if (!rc && !w->o.tok) {  // bytes are their own ids
            const unsigned char *t = (const unsigned char *)docs[i].text.data;
            for (size_t k = 0; !rc && k < docs[i].text.len; k++)
                if (ids_push(&one, t[k])) rc = kiln_fail(err, "out of memory");
        }
        if (!rc) rc = append_doc(w, &docs[i], one.ids, one.n, err);
    }
    for (int i = 0; i < n; i++) ids_free(&ids[i]);
    ids_free(&one);
    free(ids);
    return rc;
}

static void writer_free(KilnCorpusWriter *w) {
    for (int i = 0; i < 2; i++) {
        ids_free(&w->split[i].cur);
        kbuf_free(&w->split[i].cur_docs);
    }
    for (int i = 0; i < w->nsrc; i++) free(w->src_names[i]);
    free(w->src_names);
    free(w->src_docs);
    free(w->src_tokens);
    ids_free(&w->held.ids);
    kbuf_free(&w->held.names);
    free(w->held.name_end);
    free(w->held.ntok);
    kbuf_free(&w->shards_json);
    kbuf_free(&w->tmp);
    if (w->stage[0]) kiln_remove_tree(w->stage);  // what a failed writer staged
    free(w->out_dir);
    free(w);
}

void corpus_writer_abort(KilnCorpusWriter *w) {
    if (w) writer_free(w);
}

int corpus_writer_finish(KilnCorpusWriter *w, const char *extra_json, KilnErr *err) {
    // a split of the tokens always has a train shard, if need be an empty one
    int tail = w->o.val_last_tokens;
    int rc = (tail && split_held(w, err)) || flush_shard(w, &w->split[TRAIN], tail && !w->split[TRAIN].nshards, err) ||
                     flush_shard(w, &w->split[VAL], 0, err)
                 ? -1
                 : 0;
    // the tokenizer file as seen from the manifest's directory (readers resolve it from there)
    char tok_rel[4096];
    const char *tok_name = w->o.tok_name ? w->o.tok_name : w->o.tok ? "?" : "bytes";
    if (w->o.tok && w->o.tok_name &&
        !kiln_path_relative(w->o.tok_name, w->out_dir, tok_rel, sizeof tok_rel))
        tok_name = tok_rel;
    KilnBuf *m = &w->tmp;
    kbuf_clear(m);
    int bad = kbuf_printf(m, "{\n  \"format\":\"kiln-corpus-1\",\n  \"kiln\":\"%s\",\n  \"commit\":\"%s\",\n",
                          kiln_version(), kiln_git_commit()) |
              kbuf_puts(m, "  \"tokenizer\":") |
              kbuf_json_str(m, tok_name) |
              kbuf_printf(m,
                          ",\n  \"vocab_size\":%d,\n  \"doc_start_token\":%d,\n"
                          "  \"shard_tokens\":%ld,\n  \"val_fraction\":%g,\n  \"seed\":%llu,\n"
                          "  \"tokens\":{\"train\":%ld,\"val\":%ld},\n  \"docs\":{\"train\":%ld,\"val\":%ld},\n",
                          w->vocab, w->eot, w->o.shard_tokens, w->o.val_fraction, (unsigned long long)w->o.seed,
                          w->split[TRAIN].tokens, w->split[VAL].tokens, w->split[TRAIN].docs, w->split[VAL].docs);
    if (tail) bad |= kbuf_puts(m, "  \"val_split\":\"last_tokens\",\n");
    bad |= kbuf_puts(m, "  \"sources\":{");
    for (int i = 0; i < w->nsrc; i++)
        bad |= kbuf_puts(m, i ? "," : "") | kbuf_json_str(m, w->src_names[i]) |
               kbuf_printf(m, ":{\"docs\":%ld,\"tokens\":%ld}", w->src_docs[i], w->src_tokens[i]);
    bad |= kbuf_puts(m, "},\n");
    if (extra_json && *extra_json) bad |= kbuf_printf(m, "  %s,\n", extra_json);
    bad |= kbuf_puts(m, "  \"shards\":[") | kbuf_append(m, w->shards_json.data, w->shards_json.len) |
           kbuf_puts(m, "\n  ]\n}\n");
    if (bad && !rc) rc = kiln_fail(err, "out of memory");
    if (!rc) {
        char path[4096];
        snprintf(path, sizeof path, "%s/manifest.json", w->stage);
        KilnAtomicFile af;
        rc = kiln_atomic_open(&af, path, err) || kiln_atomic_write(&af, m->data, m->len, err) ||
                     kiln_atomic_commit(&af, err)
                 ? -1
                 : 0;
        if (rc) {
            snprintf(path, sizeof path, "%s/manifest.json", w->out_dir);
            kiln_wrap(err, "%s", path);
        }
    }
    if (!rc) rc = install(w, err);
    writer_free(w);
    return rc;
}
