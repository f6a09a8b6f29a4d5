// tiktoken_file.c: tiktoken rank files ("base64-token rank" per line) with the
// JSON beside them (pat_str, special_tokens), as shared/data/tokenizers has them.
#include "tokenizer/tokenizer_internal.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

static int b64_value(int c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

// Decodes standard base64 (with '=' padding); returns the byte count or -1.
static int b64_decode(const char *s, size_t n, uint8_t *out, size_t cap) {
    if (n % 4) return -1;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4], pad = 0;
        for (int k = 0; k < 4; k++) {
            if (s[i + k] == '=' && i + 4 == n && k >= 2) {
                v[k] = 0;
                pad++;
            } else if ((v[k] = b64_value((unsigned char)s[i + k])) < 0 || pad) {
                return -1;
            }
        }
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        uint8_t bytes[3] = {(uint8_t)(w >> 16), (uint8_t)(w >> 8), (uint8_t)w};
        for (int k = 0; k < 3 - pad; k++) {
            if (o == cap) return -1;
            out[o++] = bytes[k];
        }
    }
    return (int)o;
}

int tiktoken_load(KilnTokenizer *t, const char *path, KilnErr *err) {
    // the JSON beside the rank file: NAME.tiktoken -> NAME.json
    char jpath[4096];
    size_t plen = strlen(path);
    if (plen + 1 > sizeof jpath) return kiln_fail(err, "%s: path too long", path);
    snprintf(jpath, sizeof jpath, "%.*s.json", (int)(plen - strlen(".tiktoken")), path);
    char *jtext, *text;
    size_t jlen, len;
    if (kiln_read_file(jpath, &jtext, &jlen, err)) return kiln_wrap(err, "%s needs its pattern and special tokens", path);
    cJSON *j = cJSON_ParseWithLength(jtext, jlen);
    free(jtext);
    cJSON *pat = j ? cJSON_GetObjectItemCaseSensitive(j, "pat_str") : NULL;
    cJSON *sp = j ? cJSON_GetObjectItemCaseSensitive(j, "special_tokens") : NULL;
    if (!cJSON_IsString(pat) || (sp && !cJSON_IsObject(sp))) {
        cJSON_Delete(j);
        return kiln_fail(err, "%s: expected a JSON object with a string \"pat_str\" and an object \"special_tokens\"", jpath);
    }
    if (kiln_read_file(path, &text, &len, err)) {
        cJSON_Delete(j);
        return -1;
    }
    // one pass over the lines: decoded tokens go to a scratch blob with their
    // ranks, since the vocabulary can only be laid out once the largest is known
    long max_id = -1, lines = 0, ntok = 0;
    int rc = 0;
    long *rank_of = malloc(sizeof(long) * (len / 4 + 1));  // a line is at least "xx== 0"
    size_t *off = malloc(sizeof(size_t) * (len / 4 + 2));
    uint8_t *blob = malloc(len + 1);
    if (!rank_of || !off || !blob) rc = kiln_fail(err, "out of memory");
    size_t used = 0;
    for (char *line = text, *end; rc == 0 && line < text + len; line = end + 1) {
        end = memchr(line, '\n', (size_t)(text + len - line));
        if (!end) end = text + len;
        lines++;
        if (end == line) continue;
        char *space = memchr(line, ' ', (size_t)(end - line));
        char *num_end;
        long rank = space ? strtol(space + 1, &num_end, 10) : -1;
        if (!space || num_end != end || rank < 0 || rank > 100000000) {
            rc = kiln_fail(err, "%s:%ld: expected \"<base64 token> <rank>\"", path, lines);
            break;
        }
        int n = b64_decode(line, (size_t)(space - line), blob + used, len - used);
        if (n <= 0) {
            rc = kiln_fail(err, "%s:%ld: bad base64 token", path, lines);
            break;
        }
        rank_of[ntok] = rank;
        off[ntok++] = used;
        used += (size_t)n;
        if (rank > max_id) max_id = rank;
    }
    if (off) off[ntok] = used;
    cJSON *s;
    cJSON_ArrayForEach(s, sp) {
        if (!cJSON_IsNumber(s) || s->valuedouble < 0 || s->valuedouble > 100000000 || s->valuedouble != (int)s->valuedouble)
            rc = rc ? rc : kiln_fail(err, "%s: special token '%s' needs a whole-number id", jpath, s->string);
        else if (s->valuedouble > max_id)
            max_id = (long)s->valuedouble;
    }
    if (rc == 0 && max_id < 255) rc = kiln_fail(err, "%s: %ld ranks cannot cover the 256 bytes", path, max_id + 1);
    if (rc == 0) rc = tok_init(t, (int)max_id + 1, used + 1024, err);
    for (long k = 0; rc == 0 && k < ntok; k++)
        if (tok_set_token(t, (int)rank_of[k], blob + off[k], (int)(off[k + 1] - off[k]), err))
            rc = kiln_wrap(err, "%s (rank %ld)", path, rank_of[k]);
    free(rank_of);
    free(off);
    free(blob);
    cJSON_ArrayForEach(s, sp) {
        if (rc == 0 && tok_add_special(t, s->string, (int)s->valuedouble, err)) rc = kiln_wrap(err, "%s", jpath);
    }
    if (rc == 0 && tok_finish(t, 1, err)) rc = kiln_wrap(err, "%s", path);
    if (rc == 0) rc = tok_compile_pattern(t, pat->valuestring, err);
    free(text);
    cJSON_Delete(j);
    return rc;
}
