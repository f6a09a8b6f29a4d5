// codec.c: text <-> tokens for a model: its BPE tokenizer, or bytes.
#include "kiln/eval.h"
#include "kiln/manifest.h"

#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// The "tokenizer" named in the manifest.json beside the training shards,
// resolved from the manifest's directory.
static int tokenizer_from_manifest(const KilnConfig *cfg, char *spec, size_t n, KilnErr *err) {
    char dir[1024], path[1100];
    snprintf(dir, sizeof dir, "%s", cfg->data.train);
    snprintf(path, sizeof path, "%s/manifest.json", dirname(dir));
    if (access(path, F_OK) != 0)
        return kiln_fail(err, "no tokenizer given and no %s to name one (data.train = %s): pass --tokenizer FILE or "
                              "--tokenizer bytes", path, cfg->data.train);
    if (manifest_tokenizer(path, spec, n, err)) return -1;
    if (strcmp(spec, "bytes") && access(spec, F_OK) != 0)
        return kiln_fail(err, "%s names tokenizer %s, which does not exist (a relative path in a manifest is "
                              "relative to its directory): pass --tokenizer FILE", path, spec);
    return 0;
}

int codec_for_model(KilnCodec *c, KilnTokenizer **owned, const char *tok_spec, const KilnConfig *cfg,
                    KilnErr *err) {
    char spec[1024];
    *owned = NULL;
    memset(c, 0, sizeof *c);
    c->vocab_size = cfg->model.vocab_size;
    if (tok_spec) {
        snprintf(spec, sizeof spec, "%s", tok_spec);
    } else if (tokenizer_from_manifest(cfg, spec, sizeof spec, err)) {
        return -1;
    }
    if (!strcmp(spec, "bytes")) {
        if (cfg->model.vocab_size < 256)
            return kiln_fail(err, "byte tokens need model.vocab_size >= 256 (it is %d)", cfg->model.vocab_size);
        c->eot = 0;  // byte corpora start each document with NUL
        return 0;
    }
    if (tokenizer_load(owned, spec, err)) return kiln_wrap(err, "tokenizer");
    int v = tokenizer_vocab_size(*owned), eot = tokenizer_special_id(*owned, "<|endoftext|>");
    if (v > cfg->model.vocab_size) {
        tokenizer_free(*owned);
        *owned = NULL;
        return kiln_fail(err, "%s has %d tokens but the model's vocab_size is %d: not this model's tokenizer", spec, v,
                         cfg->model.vocab_size);
    }
    if (eot < 0) {
        tokenizer_free(*owned);
        *owned = NULL;
        return kiln_fail(err, "%s has no <|endoftext|> token to start a text with", spec);
    }
    c->tok = *owned;
    c->eot = eot;
    return 0;
}

int codec_encode(const KilnCodec *c, const char *text, size_t len, KilnIds *out, KilnErr *err) {
    if (c->tok) return tokenizer_encode(c->tok, text, len, KILN_SPECIAL_TEXT, out, err);
    for (size_t i = 0; i < len; i++)
        if (ids_push(out, (uint8_t)text[i])) return kiln_fail(err, "out of memory");
    return 0;
}

int codec_decode(const KilnCodec *c, const uint32_t *ids, long n, char **text, size_t *len, KilnErr *err) {
    if (c->tok) return tokenizer_decode(c->tok, ids, n, text, len, err);
    char *t = malloc((size_t)n + 1);
    if (!t) return kiln_fail(err, "out of memory");
    for (long i = 0; i < n; i++) {
        if (ids[i] > 255) {
            free(t);
            return kiln_fail(err, "token %u is not a byte", ids[i]);
        }
        t[i] = (char)ids[i];
    }
    t[n] = 0;
    *text = t;
    *len = (size_t)n;
    return 0;
}
