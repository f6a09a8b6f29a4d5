// hf_json.c: Hugging Face tokenizer.json files holding a byte-level BPE.
//
// Reading accepts the layouts byte-level BPE tokenizers are saved in: model BPE
// with vocab and merges ("a b" strings, or [a, b] arrays as tokenizers >= 0.20
// writes them), added_tokens, and a ByteLevel pre-tokenizer, either alone (its
// built-in GPT-2 regex) or after one regex Split (Sequence[Split, ByteLevel
// use_regex=false], as cl100k and Llama 3 conversions have it). Anything that
// would make HF encode differently from kiln (a normalizer, add_prefix_space,
// dropout, byte fallback, more than one regex) is refused with its key named.
//
// Writing produces a file HF tokenizers loads and encodes with exactly as kiln
// does; tokenizers from tiktoken rank files need their merges derived, see
// canonical_merges.
#include "tokenizer/tokenizer_internal.h"

#include "core/utf8.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

// HF's ByteLevel pre-tokenizer regex (use_regex=true); it is GPT-2's pat_str.
static const char GPT2_PATTERN[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
// ByteLevel with use_regex=false and nothing before it: the text is one piece.
// Invalid UTF-8 still falls between matches, as with every kiln pattern.
static const char WHOLE_TEXT_PATTERN[] = "[\\s\\S]+";
enum { MAX_ID = 100000000 };  // the bound tiktoken_file.c uses: keeps a bad id from sizing huge tables

// ---- GPT-2's byte alphabet ----

// bytes_to_unicode: the 188 printable Latin-1 bytes stand for themselves and the
// other 68 take U+0100.. in byte order, so every token is printable text.
enum { ALPHABET_CPS = 0x144 };  // code points U+0000..U+0143
typedef struct {
    uint16_t cp[256];             // byte -> code point
    int16_t byte[ALPHABET_CPS];   // code point -> byte, -1 outside the alphabet
} ByteAlphabet;

static int printable_latin1(int b) {
    return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

static void alphabet_init(ByteAlphabet *a) {
    int next = 0x100;
    for (int c = 0; c < ALPHABET_CPS; c++) a->byte[c] = -1;
    for (int b = 0; b < 256; b++) {
        a->cp[b] = (uint16_t)(printable_latin1(b) ? b : next++);
        a->byte[a->cp[b]] = (int16_t)b;
    }
}

// The bytes the token text s[0..n) stands for, into out (n bytes suffice);
// returns their count, or -1 if a character is outside the alphabet.
static int token_from_text(const ByteAlphabet *a, const char *s, size_t n, uint8_t *out) {
    int len = 0;
    uint32_t cp;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_decode(s + i, n - i, &cp);
        if (!k || cp >= ALPHABET_CPS || a->byte[cp] < 0) return -1;
        out[len++] = (uint8_t)a->byte[cp];
        i += k;
    }
    return len;
}

// ---- reading ----

static const cJSON *get(const cJSON *o, const char *key) { return cJSON_GetObjectItemCaseSensitive(o, key); }
static int absent(const cJSON *x) { return !x || cJSON_IsNull(x); }
static int absent_or_false(const cJSON *x) { return absent(x) || cJSON_IsFalse(x); }

// A whole-number id in 0..MAX_ID, or -1.
static long json_id(const cJSON *x) {
    if (!cJSON_IsNumber(x) || !(x->valuedouble >= 0 && x->valuedouble <= MAX_ID)) return -1;
    return x->valuedouble == (double)(long)x->valuedouble ? (long)x->valuedouble : -1;
}

static const char *type_of(const cJSON *o) {
    const cJSON *ty = get(o, "type");
    return cJSON_IsString(ty) ? ty->valuestring : NULL;
}

// The model options that change how BPE encodes; fails on those kiln lacks.
// unk_token is allowed: a byte-level vocabulary (every byte a token, which
// tok_finish checks) never needs it.
static int check_model(const cJSON *model, const char *path, int *ignore_merges, KilnErr *err) {
    const char *ty = type_of(model);
    if (get(model, "type") && (!ty || strcmp(ty, "BPE")))
        return kiln_fail(err, "%s: model.type '%s' is not supported (only \"BPE\")", path, ty ? ty : "?");
    const cJSON *dropout = get(model, "dropout");
    if (!absent(dropout) && !(cJSON_IsNumber(dropout) && dropout->valuedouble == 0))
        return kiln_fail(err, "%s: model.dropout is set: BPE dropout (random merges) is not supported", path);
    if (!absent_or_false(get(model, "byte_fallback")))
        return kiln_fail(err, "%s: model.byte_fallback is true: a SentencePiece-style vocabulary with <0xNN> tokens, not byte-level BPE", path);
    const char *affixes[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int i = 0; i < 2; i++) {
        const cJSON *x = get(model, affixes[i]);
        if (!absent(x) && !(cJSON_IsString(x) && x->valuestring[0] == 0))
            return kiln_fail(err, "%s: model.%s is set: subword affixes are not supported", path, affixes[i]);
    }
    const cJSON *im = get(model, "ignore_merges");
    if (!absent(im) && !cJSON_IsBool(im)) return kiln_fail(err, "%s: model.ignore_merges must be true or false", path);
    *ignore_merges = cJSON_IsTrue(im);
    return 0;
}

// Only a normalizer that changes nothing: null, or an empty Sequence.
static int check_normalizer(const cJSON *norm, const char *path, KilnErr *err) {
    if (absent(norm)) return 0;
    const char *ty = type_of(norm);
    const cJSON *list = get(norm, "normalizers");
    if (ty && !strcmp(ty, "Sequence") && cJSON_IsArray(list) && cJSON_GetArraySize(list) == 0) return 0;
    return kiln_fail(err, "%s: normalizer '%s' is not supported (only null)", path, ty ? ty : "?");
}

// ByteLevel's options; key names it in messages. use_regex defaults to true as in HF.
static int byte_level_options(const cJSON *bl, const char *key, const char *path, int *use_regex, KilnErr *err) {
    if (!absent_or_false(get(bl, "add_prefix_space")))
        return kiln_fail(err, "%s: %s.add_prefix_space is true: HF's added leading space is not supported", path, key);
    const cJSON *ur = get(bl, "use_regex");
    if (!absent(ur) && !cJSON_IsBool(ur)) return kiln_fail(err, "%s: %s.use_regex must be true or false", path, key);
    *use_regex = absent(ur) || cJSON_IsTrue(ur);
    return 0;
}

// A literal as a regex: every ASCII punctuation character escaped (a backslash
// before a non-alphanumeric is always literal in PCRE2).
static char *escape_literal(const char *s) {
    char *out = malloc(2 * strlen(s) + 1), *o = out;
    if (!out) return NULL;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x80 && !(c >= '0' && c <= '9') && !(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z')) *o++ = '\\';
        *o++ = (char)c;
    }
    *o = 0;
    return out;
}

// A Split that isolates each match of one regex (or literal), as a malloc'd regex.
static int split_pattern(const cJSON *split, const char *key, const char *path, char **pattern, KilnErr *err) {
    const cJSON *pat = get(split, "pattern"), *re = get(pat, "Regex"), *lit = get(pat, "String");
    const cJSON *behavior = get(split, "behavior");
    if (!cJSON_IsString(behavior) || strcmp(behavior->valuestring, "Isolated"))
        return kiln_fail(err, "%s: %s.behavior must be \"Isolated\" (each match its own piece)", path, key);
    if (!absent_or_false(get(split, "invert")))
        return kiln_fail(err, "%s: %s.invert is true: not supported", path, key);
    if (cJSON_IsString(re))
        *pattern = strdup(re->valuestring);
    else if (cJSON_IsString(lit))
        *pattern = escape_literal(lit->valuestring);
    else
        return kiln_fail(err, "%s: %s.pattern must be {\"Regex\": ...} or {\"String\": ...}", path, key);
    return *pattern ? 0 : kiln_fail(err, "out of memory");
}

// The pre-tokenizer as one regex (malloc'd in *pattern).
static int pre_tokenizer_pattern(const cJSON *pre, const char *path, char **pattern, KilnErr *err) {
    const char *ty = type_of(pre);
    int use_regex;
    if (absent(pre)) return kiln_fail(err, "%s: pre_tokenizer is null: byte-level BPE needs a ByteLevel pre-tokenizer", path);
    if (ty && !strcmp(ty, "ByteLevel")) {
        if (byte_level_options(pre, "pre_tokenizer", path, &use_regex, err)) return -1;
        *pattern = strdup(use_regex ? GPT2_PATTERN : WHOLE_TEXT_PATTERN);
        return *pattern ? 0 : kiln_fail(err, "out of memory");
    }
    if (!ty || strcmp(ty, "Sequence"))
        return kiln_fail(err, "%s: pre_tokenizer.type '%s' is not supported (ByteLevel, or Sequence[Split, ByteLevel])",
                         path, ty ? ty : "?");
    const cJSON *list = get(pre, "pretokenizers");
    int n = cJSON_IsArray(list) ? cJSON_GetArraySize(list) : 0;
    const cJSON *last = n ? cJSON_GetArrayItem(list, n - 1) : NULL;
    const char *last_ty = type_of(last);
    if (!last_ty || strcmp(last_ty, "ByteLevel"))
        return kiln_fail(err, "%s: pre_tokenizer.pretokenizers must end with ByteLevel", path);
    char key[64];
    snprintf(key, sizeof key, "pre_tokenizer.pretokenizers[%d]", n - 1);
    if (byte_level_options(last, key, path, &use_regex, err)) return -1;
    if (n == 1) {
        *pattern = strdup(use_regex ? GPT2_PATTERN : WHOLE_TEXT_PATTERN);
        return *pattern ? 0 : kiln_fail(err, "out of memory");
    }
    const cJSON *first = cJSON_GetArrayItem(list, 0);
    const char *first_ty = type_of(first);
    if (n > 2 || !first_ty || strcmp(first_ty, "Split"))
        return kiln_fail(err, "%s: pre_tokenizer.pretokenizers[0] is '%s': only one Split before ByteLevel is supported",
                         path, n > 2 ? "a chain of more than two" : first_ty ? first_ty : "?");
    if (use_regex)
        return kiln_fail(err, "%s: %s.use_regex is true after a Split: two regex passes are not supported", path, key);
    return split_pattern(first, "pre_tokenizer.pretokenizers[0]", path, pattern, err);
}

// The id HF tokenizers gives an added token, whatever its "id" says: its id
// in the vocab if its text is a vocab key, else the vocab's size plus the count
// of earlier added tokens missing from the vocab (observed with tokenizers
// 0.23). *fresh counts those.
static long hf_added_id(const cJSON *vocab, const char *content, int *fresh) {
    const cJSON *v = get(vocab, content);
    return v ? json_id(v) : (long)cJSON_GetArraySize(vocab) + (*fresh)++;
}

// added_tokens: each becomes a kiln special token. HF splits every added token
// out of the text before pre-tokenizing (special or not), which is what kiln
// does with specials under KILN_SPECIAL_ALLOW. added_at[id] = index + 1 of the
// added token with that id. A file whose ids HF would not honour is refused.
static int load_added(KilnTokenizer *t, const cJSON *added, const cJSON *vocab, const char *path, int *added_at,
                      KilnErr *err) {
    int i = 0, fresh = 0;
    const cJSON *a;
    cJSON_ArrayForEach(a, added) {
        const cJSON *content = get(a, "content");
        long id = json_id(get(a, "id"));  // both checked by measure_vocab
        const char *text = content->valuestring;
        const char *opts[] = {"single_word", "lstrip", "rstrip"};
        for (int k = 0; k < 3; k++)
            if (!absent_or_false(get(a, opts[k])))
                return kiln_fail(err, "%s: added_tokens[%d] ('%s'): %s is true: not supported", path, i, text, opts[k]);
        if (!utf8_valid(text, strlen(text)))
            return kiln_fail(err, "%s: added_tokens[%d]: content is not valid UTF-8", path, i);
        if (tokenizer_special_id(t, text) >= 0)
            return kiln_fail(err, "%s: added_tokens[%d]: '%s' is listed twice", path, i, text);
        long hf_id = hf_added_id(vocab, text, &fresh);
        if (hf_id != id)
            return kiln_fail(err, "%s: added_tokens[%d] ('%s') has id %ld but HF tokenizers would give it %ld (%s)", path, i,
                             text, id, hf_id,
                             get(vocab, text) ? "its id in model.vocab"
                                              : "added tokens missing from model.vocab are numbered from the vocab's size on");
        if (tok_add_special(t, text, (int)id, err)) return kiln_wrap(err, "%s: added_tokens[%d]", path, i);
        added_at[id] = ++i;
    }
    return 0;
}

// vocab: text -> id. An added token listed here too (as HF files do for
// specials) is skipped; any other entry sharing an added token's id is an error.
static int load_vocab(KilnTokenizer *t, const cJSON *vocab, const cJSON *added, const ByteAlphabet *a,
                      const char *path, const int *added_at, uint8_t *scratch, KilnErr *err) {
    const cJSON *v;
    cJSON_ArrayForEach(v, vocab) {
        long id = json_id(v);  // checked by measure_vocab
        if (added_at[id]) {
            const char *text = get(cJSON_GetArrayItem(added, added_at[id] - 1), "content")->valuestring;
            if (strcmp(text, v->string))
                return kiln_fail(err, "%s: model.vocab: '%s' has id %ld, which added_tokens[%d] ('%s') has", path,
                                 v->string, id, added_at[id] - 1, text);
            continue;
        }
        int n = token_from_text(a, v->string, strlen(v->string), scratch);
        if (n < 0)
            return kiln_fail(err, "%s: model.vocab: '%s' has a character outside GPT-2's byte alphabet (not a byte-level vocabulary)",
                             path, v->string);
        if (tok_set_token(t, (int)id, scratch, n, err)) return kiln_wrap(err, "%s: model.vocab: '%s'", path, v->string);
    }
    return 0;
}

// The two token texts of a merge: "a b" (GPT-2's layout; byte-level tokens
// never hold a space) or ["a", "b"] (tokenizers >= 0.20).
static int merge_parts(const cJSON *m, const char **a, size_t *na, const char **b, size_t *nb) {
    if (cJSON_IsString(m)) {
        const char *s = m->valuestring, *sp = strchr(s, ' ');
        if (!sp || strchr(sp + 1, ' ')) return -1;  // HF's rule: exactly two parts
        *a = s;
        *na = (size_t)(sp - s);
        *b = sp + 1;
        *nb = strlen(sp + 1);
        return 0;
    }
    const cJSON *l = cJSON_GetArrayItem(m, 0), *r = cJSON_GetArrayItem(m, 1);
    if (!cJSON_IsArray(m) || cJSON_GetArraySize(m) != 2 || !cJSON_IsString(l) || !cJSON_IsString(r)) return -1;
    *a = l->valuestring;
    *na = strlen(*a);
    *b = r->valuestring;
    *nb = strlen(*b);
    return 0;
}

// Priority and merged id of (l, r); UINT32_MAX if they do not merge.
static uint32_t pair_get(const PairMap *p, uint32_t l, uint32_t r, uint32_t *id) {
    uint64_t key = (uint64_t)l << 32 | r;
    if (!p->key) return UINT32_MAX;
    for (uint64_t i = kiln_hash64(key) & p->mask;; i = (i + 1) & p->mask) {
        if (p->key[i] == key) {
            *id = p->id[i];
            return p->prio[i];
        }
        if (p->key[i] == UINT64_MAX) return UINT32_MAX;
    }
}

// The id of the token text s[0..n), or -1 (also when longer than max_text,
// the longest vocab key, which scratch is sized for).
static int32_t lookup_text(const KilnTokenizer *t, const ByteAlphabet *a, const char *s, size_t n, size_t max_text,
                           uint8_t *scratch, int *len) {
    *len = n <= max_text ? token_from_text(a, s, n, scratch) : -1;
    return *len > 0 ? tok_lookup(t, scratch, (size_t)*len) : -1;
}

// merges: priority = index in the list. A pair listed twice keeps its last
// index, as HF's merge map does (later entries overwrite), so the list is
// walked backwards and pairs already present are skipped.
static int load_merges(KilnTokenizer *t, const cJSON *merges, const ByteAlphabet *a, const char *path,
                       size_t max_text, uint8_t *scratch, KilnErr *err) {
    int n = cJSON_GetArraySize(merges), i = 0;
    const cJSON **items = malloc(sizeof(cJSON *) * (size_t)(n ? n : 1));
    if (!items || tok_alloc_pairs(&t->pairs, (uint64_t)n, err)) {
        free(items);
        return kiln_fail(err, "out of memory for %d merges", n);
    }
    const cJSON *m;
    cJSON_ArrayForEach(m, merges) items[i++] = m;
    int rc = 0;
    for (i = n - 1; i >= 0 && rc == 0; i--) {
        const char *sa, *sb;
        size_t na, nb;
        int la, lb;
        if (merge_parts(items[i], &sa, &na, &sb, &nb)) {
            rc = kiln_fail(err, "%s: model.merges[%d] is not \"a b\" or [\"a\", \"b\"]", path, i);
            break;
        }
        int32_t l = lookup_text(t, a, sa, na, max_text, scratch, &la);
        int32_t r = lookup_text(t, a, sb, nb, max_text, scratch, &lb);
        uint8_t *joined = scratch + max_text + 1;  // both halves, back to back (2 * max_text + 2 bytes)
        int32_t id = -1;
        if (l >= 0 && r >= 0) {
            memcpy(joined, t->blob + t->off[l], (size_t)la);
            memcpy(joined + la, t->blob + t->off[r], (size_t)lb);
            id = tok_lookup(t, joined, (size_t)(la + lb));
        }
        if (l < 0 || r < 0)
            rc = kiln_fail(err, "%s: model.merges[%d] ('%.*s %.*s'): '%.*s' is not in the vocabulary", path, i, (int)na, sa,
                           (int)nb, sb, l < 0 ? (int)na : (int)nb, l < 0 ? sa : sb);
        else if (id < 0)
            rc = kiln_fail(err, "%s: model.merges[%d] ('%.*s %.*s'): the merged token '%.*s%.*s' is not in the vocabulary",
                           path, i, (int)na, sa, (int)nb, sb, (int)na, sa, (int)nb, sb);
        else if (pair_get(&t->pairs, (uint32_t)l, (uint32_t)r, &(uint32_t){0}) == UINT32_MAX)
            rc = tok_add_pair(t, l, r, (uint32_t)i, id, err);
    }
    free(items);
    return rc;
}

// Checks every id and key length; sizes the vocabulary (largest id + 1) and the token bytes.
static int measure_vocab(const cJSON *vocab, const cJSON *added, const char *path, long *max_id, size_t *text_bytes,
                         size_t *max_text, KilnErr *err) {
    const cJSON *v;
    int i = 0;
    cJSON_ArrayForEach(v, vocab) {
        long id = json_id(v);
        if (id < 0) return kiln_fail(err, "%s: model.vocab: '%s' needs a whole-number id in 0..%d", path, v->string, MAX_ID);
        size_t n = strlen(v->string);
        *text_bytes += n;
        if (n > *max_text) *max_text = n;
        if (id > *max_id) *max_id = id;
    }
    cJSON_ArrayForEach(v, added) {
        long id = json_id(get(v, "id"));
        const cJSON *content = get(v, "content");
        if (id < 0 || !cJSON_IsString(content))
            return kiln_fail(err, "%s: added_tokens[%d] needs a string \"content\" and a whole-number \"id\" in 0..%d", path, i, MAX_ID);
        *text_bytes += strlen(content->valuestring);
        if (id > *max_id) *max_id = id;
        i++;
    }
    return 0;
}

// Builds t from a parsed tokenizer.json.
static int load_parsed(KilnTokenizer *t, const cJSON *j, const char *path, KilnErr *err) {
    const cJSON *model = get(j, "model"), *vocab = get(model, "vocab"), *merges = get(model, "merges");
    const cJSON *added = get(j, "added_tokens");
    int ignore_merges = 0;
    if (!model && get(j, "pat_str"))
        return kiln_fail(err, "%s: this is the JSON beside a tiktoken rank file; load the .tiktoken file", path);
    if (!cJSON_IsObject(model)) return kiln_fail(err, "%s: no \"model\" object", path);
    if (check_model(model, path, &ignore_merges, err) || check_normalizer(get(j, "normalizer"), path, err)) return -1;
    if (!cJSON_IsObject(vocab)) return kiln_fail(err, "%s: model.vocab must be an object (token -> id)", path);
    if (!cJSON_IsArray(merges)) return kiln_fail(err, "%s: model.merges must be a list", path);
    if (!absent(added) && !cJSON_IsArray(added)) return kiln_fail(err, "%s: added_tokens must be a list", path);
    // truncation, padding, post_processor (which may add BOS/EOS ids around the
    // text) and decoder do not change how text maps to ids here: ignored.
    long max_id = -1;
    size_t text_bytes = 0, max_text = 0;
    if (measure_vocab(vocab, added, path, &max_id, &text_bytes, &max_text, err)) return -1;
    if (max_id < 255) return kiln_fail(err, "%s: %ld ids cannot cover the 256 bytes", path, max_id + 1);
    char *pattern = NULL;
    if (pre_tokenizer_pattern(get(j, "pre_tokenizer"), path, &pattern, err)) return -1;
    ByteAlphabet a;
    alphabet_init(&a);
    int *added_at = calloc((size_t)max_id + 1, sizeof(int));
    uint8_t *scratch = malloc(3 * max_text + 3);
    int rc = !added_at || !scratch ? kiln_fail(err, "out of memory") : 0;
    if (rc == 0) rc = tok_init(t, (int)max_id + 1, text_bytes, err);
    if (rc == 0) rc = load_added(t, added, vocab, path, added_at, err);
    if (rc == 0) rc = load_vocab(t, vocab, added, &a, path, added_at, scratch, err);
    if (rc == 0 && tok_finish(t, 0, err)) rc = kiln_wrap(err, "%s", path);
    if (rc == 0) rc = load_merges(t, merges, &a, path, max_text, scratch, err);
    if (rc == 0 && tok_compile_pattern(t, pattern, err)) rc = kiln_wrap(err, "%s: pre_tokenizer", path);
    t->whole_piece = ignore_merges;  // HF: a piece that is a vocab token is taken whole
    free(added_at);
    free(scratch);
    free(pattern);
    return rc;
}

int hf_json_load(KilnTokenizer *t, const char *path, KilnErr *err) {
    char *text;
    size_t len;
    if (kiln_read_file(path, &text, &len, err)) return -1;
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    int rc;
    while (j && end < text + len && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r')) end++;
    if (j && end != text + len) {
        cJSON_Delete(j);
        j = NULL;  // trailing data after the JSON value, as serde (HF) rejects it
    }
    if (!j) {
        size_t at = end && end >= text && end <= text + len ? (size_t)(end - text) : len;
        long line = 1;
        for (size_t i = 0; i < at; i++) line += text[i] == '\n';
        rc = kiln_fail(err, "%s:%ld: not valid JSON (byte %zu)", path, line, at);
    } else if (!cJSON_IsObject(j)) {
        rc = kiln_fail(err, "%s: expected a JSON object", path);
    } else {
        rc = load_parsed(t, j, path, err);
    }
    cJSON_Delete(j);
    free(text);
    return rc;
}

// ---- writing ----

// A JSON string of valid UTF-8 text: quotes and backslashes escaped, control
// characters as \u00XX. Not kbuf_json_escape: that writes \n \t \r and
// \u007f, and tokenizer.json files must stay byte for byte what they were.
static int put_json_string(KilnBuf *b, const char *s, size_t n) {
    if (kbuf_putc(b, '"')) return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int rc = c == '"' || c == '\\' ? kbuf_putc(b, '\\') || kbuf_putc(b, (char)c)
                 : c < 0x20            ? kbuf_printf(b, "\\u%04x", c)
                                       : kbuf_putc(b, (char)c);
        if (rc) return -1;
    }
    return kbuf_putc(b, '"');
}

// A token's bytes in GPT-2's alphabet, JSON-escaped, without the quotes.
static int put_token_chars(KilnBuf *b, const ByteAlphabet *a, const uint8_t *bytes, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t c = a->cp[bytes[i]];
        int rc = c == '"' || c == '\\' ? kbuf_putc(b, '\\') || kbuf_putc(b, (char)c) : utf8_put(b, c);
        if (rc) return -1;
    }
    return 0;
}

typedef struct {
    uint32_t prio, left, right;
} Merge;

static int merge_cmp(const void *x, const void *y) {
    const Merge *a = x, *b = y;
    if (a->prio != b->prio) return a->prio < b->prio ? -1 : 1;
    if (a->left != b->left) return a->left < b->left ? -1 : 1;
    return a->right < b->right ? -1 : a->right > b->right;
}

static int special_index(const KilnTokenizer *t, int id) {
    for (int s = 0; s < t->n_special; s++)
        if (t->special_id[s] == id) return s;
    return -1;
}

// BPE of a token's own bytes without the whole-token shortcut; if it ends as
// that one token, *last is the merge that made it (returns 1). ids: n slots.
static int final_merge(const KilnTokenizer *t, const uint8_t *b, size_t n, uint32_t *ids, Merge *last) {
    int merged = 0;
    for (size_t i = 0; i < n; i++) ids[i] = (uint32_t)t->byte_id[b[i]];
    while (n > 1) {
        size_t best = 0;
        uint32_t best_prio = UINT32_MAX, best_id = 0, id;
        for (size_t i = 0; i + 1 < n; i++) {
            uint32_t p = pair_get(&t->pairs, ids[i], ids[i + 1], &id);
            if (p < best_prio) {  // strict: leftmost on ties, as bpe.c
                best = i;
                best_prio = p;
                best_id = id;
            }
        }
        if (best_prio == UINT32_MAX) break;
        *last = (Merge){best_prio, ids[best], ids[best + 1]};
        merged = 1;
        ids[best] = best_id;
        memmove(ids + best + 1, ids + best + 2, sizeof(uint32_t) * (n - best - 2));
        n--;
    }
    return merged && n == 1;
}

// For a tiktoken rank table (every split of a token into two tokens merges,
// several pairs per priority), the one merge per token that HF needs: the last
// merge of the token's own BPE. Exact because when BPE joins a span into a
// token T, the merges inside the span are those of BPE on T's bytes alone
// (a merge crossing the span's edge would stop it becoming T), so T is only
// ever made by that last merge; the other splits of T never win, and tokens
// their own BPE cannot make are only reached whole (ignore_merges).
static int canonical_merges(const KilnTokenizer *t, Merge *out, long *n_out, KilnErr *err) {
    uint32_t max_len = 0;
    for (int id = 0; id < t->n_vocab; id++)
        if (t->len[id] > max_len) max_len = t->len[id];
    uint32_t *ids = malloc(sizeof(uint32_t) * (max_len + 1));
    if (!ids) return kiln_fail(err, "out of memory");
    long n = 0;
    for (int id = 0; id < t->n_vocab; id++) {
        if (t->len[id] < 2 || special_index(t, id) >= 0) continue;
        Merge m;
        if (final_merge(t, t->blob + t->off[id], t->len[id], ids, &m)) out[n++] = m;
    }
    free(ids);
    *n_out = n;
    return 0;
}

// The merges in priority order: the pair table itself when each priority has
// one pair (merge lists, trained tokenizers), else canonical_merges.
static int ordered_merges(const KilnTokenizer *t, Merge **out, long *n_out, KilnErr *err) {
    const PairMap *p = &t->pairs;
    uint64_t cap = p->key ? p->mask + 1 : 0;
    long n = 0;
    Merge *m = malloc(sizeof(Merge) * (cap + (uint64_t)t->n_vocab + 1));
    if (!m) return kiln_fail(err, "out of memory");
    for (uint64_t i = 0; i < cap; i++)
        if (p->key[i] != UINT64_MAX) m[n++] = (Merge){p->prio[i], (uint32_t)(p->key[i] >> 32), (uint32_t)p->key[i]};
    qsort(m, (size_t)n, sizeof *m, merge_cmp);
    int shared = 0;
    for (long i = 1; i < n; i++) shared |= m[i].prio == m[i - 1].prio;
    if (shared && canonical_merges(t, m, &n, err)) {
        free(m);
        return -1;
    }
    qsort(m, (size_t)n, sizeof *m, merge_cmp);
    *out = m;
    *n_out = n;
    return 0;
}

// HF requires merged token = left + right; pair tables from kiln's loaders
// always are, but check rather than write a file HF rejects.
static int check_merge(const KilnTokenizer *t, const Merge *m, KilnErr *err) {
    uint32_t id = 0;
    if (pair_get(&t->pairs, m->left, m->right, &id) == UINT32_MAX)
        return kiln_fail(err, "merge (%u, %u) is not in the pair table", m->left, m->right);
    uint32_t ll = t->len[m->left], lr = t->len[m->right];
    if (t->len[id] != ll + lr || memcmp(t->blob + t->off[id], t->blob + t->off[m->left], ll) ||
        memcmp(t->blob + t->off[id] + ll, t->blob + t->off[m->right], lr))
        return kiln_fail(err, "merge (%u, %u) -> %u does not join the two tokens' bytes", m->left, m->right, id);
    return 0;
}

// Specials are vocab entries keyed by their raw text (so HF keeps their ids,
// see put_vocab); that text must be valid UTF-8 and not also be an ordinary
// token's text in GPT-2's alphabet.
static int check_specials(const KilnTokenizer *t, const ByteAlphabet *a, KilnErr *err) {
    for (int s = 0; s < t->n_special; s++) {
        const char *text = t->special[s];
        size_t n = (size_t)t->special_len[s];
        if (!utf8_valid(text, n)) return kiln_fail(err, "special token id %d is not valid UTF-8", t->special_id[s]);
        uint8_t *bytes = malloc(n + 1);
        if (!bytes) return kiln_fail(err, "out of memory");
        int len = token_from_text(a, text, n, bytes);
        int32_t clash = len > 0 ? tok_lookup(t, bytes, (size_t)len) : -1;
        free(bytes);
        if (clash >= 0)
            return kiln_fail(err, "special token '%s' (id %d) has the text of token %d in GPT-2's alphabet; tokenizer.json cannot hold both",
                             t->special[s], t->special_id[s], clash);
    }
    return 0;
}

// Each writer below appends its part of the file; -1 when out of memory.
static int put_added_tokens(KilnBuf *b, const KilnTokenizer *t) {
    if (kbuf_puts(b, "  \"added_tokens\": [")) return -1;
    int written = 0;
    for (int id = 0; id < t->n_vocab; id++) {  // id order, whatever order the specials were added in
        int s = special_index(t, id);
        if (s < 0) continue;
        if (kbuf_puts(b, written++ ? ",\n    {\n" : "\n    {\n") ||
            kbuf_printf(b, "      \"id\": %d,\n      \"content\": ", id) ||
            put_json_string(b, t->special[s], (size_t)t->special_len[s]) ||
            kbuf_puts(b, ",\n      \"single_word\": false,\n      \"lstrip\": false,\n      \"rstrip\": false,\n"
                         "      \"normalized\": false,\n      \"special\": true\n    }"))
            return -1;
    }
    return kbuf_puts(b, written ? "\n  ],\n" : "],\n");
}

static int put_pre_tokenizer(KilnBuf *b, const KilnTokenizer *t) {
    if (!strcmp(t->pattern, GPT2_PATTERN))
        return kbuf_puts(b, "  \"pre_tokenizer\": {\n    \"type\": \"ByteLevel\",\n    \"add_prefix_space\": false,\n"
                            "    \"trim_offsets\": true,\n    \"use_regex\": true\n  },\n");
    return kbuf_puts(b, "  \"pre_tokenizer\": {\n    \"type\": \"Sequence\",\n    \"pretokenizers\": [\n      {\n"
                        "        \"type\": \"Split\",\n        \"pattern\": {\n          \"Regex\": ") ||
           put_json_string(b, t->pattern, strlen(t->pattern)) ||
           kbuf_puts(b, "\n        },\n        \"behavior\": \"Isolated\",\n        \"invert\": false\n      },\n"
                        "      {\n        \"type\": \"ByteLevel\",\n        \"add_prefix_space\": false,\n"
                        "        \"trim_offsets\": true,\n        \"use_regex\": false\n      }\n    ]\n  },\n");
}

// vocab in id order. Specials are listed too, keyed by their raw text: HF
// gives an added token the id its text has in the vocab, and otherwise the next
// free id past the vocab, which would renumber them.
static int put_vocab(KilnBuf *b, const KilnTokenizer *t, const ByteAlphabet *a) {
    if (kbuf_puts(b, "    \"vocab\": {")) return -1;
    int written = 0;
    for (int id = 0; id < t->n_vocab; id++) {
        if (!t->len[id]) continue;
        if (kbuf_puts(b, written++ ? ",\n      " : "\n      ")) return -1;
        int s = special_index(t, id);
        int rc = s >= 0 ? put_json_string(b, t->special[s], (size_t)t->special_len[s])
                        : kbuf_putc(b, '"') || put_token_chars(b, a, t->blob + t->off[id], t->len[id]) || kbuf_putc(b, '"');
        if (rc || kbuf_printf(b, ": %d", id)) return -1;
    }
    return kbuf_puts(b, written ? "\n    },\n" : "},\n");
}

// "left right" strings (GPT-2's layout) rather than pairs: every tokenizers version reads them.
static int put_merges(KilnBuf *b, const KilnTokenizer *t, const ByteAlphabet *a, const Merge *m, long n) {
    if (kbuf_puts(b, "    \"merges\": [")) return -1;
    for (long i = 0; i < n; i++)
        if (kbuf_puts(b, i ? ",\n      \"" : "\n      \"") ||
            put_token_chars(b, a, t->blob + t->off[m[i].left], t->len[m[i].left]) || kbuf_putc(b, ' ') ||
            put_token_chars(b, a, t->blob + t->off[m[i].right], t->len[m[i].right]) || kbuf_putc(b, '"'))
            return -1;
    return kbuf_puts(b, n ? "\n    ]\n" : "]\n");
}

// The whole file; -1 when out of memory.
static int put_tokenizer(KilnBuf *b, const KilnTokenizer *t, const ByteAlphabet *a, const Merge *m, long nm) {
    return kbuf_puts(b, "{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n") ||
           put_added_tokens(b, t) || kbuf_puts(b, "  \"normalizer\": null,\n") || put_pre_tokenizer(b, t) ||
           kbuf_puts(b, "  \"post_processor\": {\n    \"type\": \"ByteLevel\",\n    \"add_prefix_space\": true,\n"
                        "    \"trim_offsets\": false,\n    \"use_regex\": true\n  },\n"
                        "  \"decoder\": {\n    \"type\": \"ByteLevel\",\n    \"add_prefix_space\": true,\n"
                        "    \"trim_offsets\": true,\n    \"use_regex\": true\n  },\n") ||
           kbuf_puts(b, "  \"model\": {\n    \"type\": \"BPE\",\n    \"dropout\": null,\n    \"unk_token\": null,\n"
                        "    \"continuing_subword_prefix\": null,\n    \"end_of_word_suffix\": null,\n"
                        "    \"fuse_unk\": false,\n    \"byte_fallback\": false,\n") ||
           kbuf_printf(b, "    \"ignore_merges\": %s,\n", t->whole_piece ? "true" : "false") || put_vocab(b, t, a) ||
           put_merges(b, t, a, m, nm) || kbuf_puts(b, "  }\n}\n");
}

int tokenizer_save_json(const KilnTokenizer *t, const char *path, KilnErr *err) {
    ByteAlphabet a;
    alphabet_init(&a);
    if (!t->pattern || !utf8_valid(t->pattern, strlen(t->pattern)))
        return kiln_fail(err, "%s: the tokenizer has no pattern, or it is not valid UTF-8", path);
    if (check_specials(t, &a, err)) return kiln_wrap(err, "%s", path);
    Merge *m = NULL;
    long nm = 0;
    if (ordered_merges(t, &m, &nm, err)) return kiln_wrap(err, "%s", path);
    for (long i = 0; i < nm; i++)
        if (check_merge(t, &m[i], err)) {
            free(m);
            return kiln_wrap(err, "%s", path);
        }
    KilnBuf b = {0};
    int oom = put_tokenizer(&b, t, &a, m, nm);
    free(m);
    if (oom) {
        kbuf_free(&b);
        return kiln_fail(err, "%s: out of memory", path);
    }
    KilnAtomicFile af;
    int rc = kiln_atomic_open(&af, path, err);
    if (rc == 0) {
        kiln_atomic_write(&af, b.data, b.len, err);
        rc = kiln_atomic_commit(&af, err);
    }
    kbuf_free(&b);
    return rc;
}
