// answer.c: answer extraction and exact match for generation tasks, as
// lm-evaluation-harness's RegexFilter (filters/extraction.py) and
// exact_match (api/metrics.py) do them with Python's re; here with PCRE2,
// whose syntax agrees with Python's for the patterns tasks use.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "task/task_internal.h"

#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct AnsRegex {
    pcre2_code *code;
    uint32_t ncap;  // capture groups
};

AnsRegex *ans_regex_new(const char *pattern, char *why, size_t whylen) {
    pcre2_compile_context *cc = pcre2_compile_context_create(NULL);
    AnsRegex *r = calloc(1, sizeof *r);
    if (!cc || !r) {
        snprintf(why, whylen, "out of memory");
        pcre2_compile_context_free(cc);
        free(r);
        return NULL;
    }
    pcre2_set_newline(cc, PCRE2_NEWLINE_LF);  // as Python: only \n ends a line for '.', '$'
    int code;
    PCRE2_SIZE off;
    // UTF + UCP: \d, \w, \s and case folding over Unicode as Python's str patterns;
    // MATCH_INVALID_UTF: a generation with broken UTF-8 still matches where it can
    r->code = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF,
                            &code, &off, cc);
    pcre2_compile_context_free(cc);
    if (!r->code) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(code, msg, sizeof msg);
        snprintf(why, whylen, "bad regex at offset %zu: %s", (size_t)off, (const char *)msg);
        free(r);
        return NULL;
    }
    pcre2_jit_compile(r->code, PCRE2_JIT_COMPLETE);  // without JIT, the interpreter
    pcre2_pattern_info(r->code, PCRE2_INFO_CAPTURECOUNT, &r->ncap);
    return r;
}

void ans_regex_free(AnsRegex *r) {
    if (!r) return;
    pcre2_code_free(r->code);
    free(r);
}

// Python's iteration over matches (re.finditer, re.sub since 3.7): after an
// empty match the next one must not be empty at the same place; after a
// non-empty one an empty match right at its end is allowed. Calls fn with the
// ovector of each match; fn returning nonzero stops. -1 when out of memory.
typedef int (*MatchFn)(void *ctx, const PCRE2_SIZE *ov, uint32_t npairs);
static int each_match(const AnsRegex *r, const char *s, size_t n, MatchFn fn, void *ctx) {
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(r->code, NULL);
    if (!md) return -1;
    uint32_t opts = 0;
    for (size_t off = 0; off <= n;) {
        int rc = pcre2_match(r->code, (PCRE2_SPTR)s, n, off, opts, md, NULL);
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT)  // the interpreter keeps its backtracking on the heap
            rc = pcre2_match(r->code, (PCRE2_SPTR)s, n, off, opts | PCRE2_NO_JIT, md, NULL);
        if (rc < 0) break;  // no (further) match, or PCRE2's match limits: no more matches
        const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        if (ov[0] < off || ov[1] < ov[0]) break;  // \K tricks: a match before the start; stop rather than loop
        if (fn(ctx, ov, pcre2_get_ovector_count(md))) break;
        opts = ov[1] == ov[0] ? PCRE2_NOTEMPTY_ATSTART : 0;
        off = ov[1];
    }
    pcre2_match_data_free(md);
    return 0;
}

// ---------------------------------------------------------------- RegexFilter
typedef struct {
    const AnsRegex *r;
    const char *s;
    size_t (*spans)[2];
    long n, cap;
    int oom;
} Found;

// The part of a match re.findall returns: the whole match without groups, the
// group with one, the first non-empty group with several ("" when all are empty).
static int found_add(void *ctx, const PCRE2_SIZE *ov, uint32_t npairs) {
    Found *f = ctx;
    if (f->n == f->cap) {
        long cap = f->cap ? f->cap * 2 : 16;
        size_t(*sp)[2] = realloc(f->spans, sizeof *sp * (size_t)cap);
        if (!sp) return f->oom = 1;
        f->spans = sp;
        f->cap = cap;
    }
    size_t a = ov[0], b = ov[1];
    uint32_t ncap = f->r->ncap < npairs ? f->r->ncap : npairs - 1;
    if (ncap >= 1) {
        a = b = 0;
        for (uint32_t g = 1; g <= ncap; g++) {
            if (ov[2 * g] == PCRE2_UNSET) continue;
            a = ov[2 * g];
            b = ov[2 * g + 1];
            if (b > a || ncap == 1) break;
        }
        if (b <= a) a = b = 0;
    }
    f->spans[f->n][0] = a;
    f->spans[f->n][1] = b;
    f->n++;
    return 0;
}

char *ans_regex_select(const AnsRegex *r, const char *s, int group_select) {
    Found f = {.r = r, .s = s};
    if (each_match(r, s, strlen(s), found_add, &f) || f.oom) {
        free(f.spans);
        return NULL;
    }
    long k = group_select < 0 ? f.n + group_select : group_select;
    if (k < 0 || k >= f.n) {
        free(f.spans);
        return NULL;
    }
    KilnBuf b = {0};
    int rc = kbuf_set(&b, s + f.spans[k][0], f.spans[k][1] - f.spans[k][0]) || tpl_filter_apply(TF_STRIP, &b);
    free(f.spans);
    if (rc) {
        kbuf_free(&b);
        return NULL;
    }
    return b.data;
}

// ---------------------------------------------------------------- re.sub
typedef struct {
    const char *s, *repl;
    size_t last;  // end of the previous match
    KilnBuf *out;
    int oom;
} Sub;

static int sub_one(void *ctx, const PCRE2_SIZE *ov, uint32_t npairs) {
    Sub *x = ctx;
    if (kbuf_append(x->out, x->s + x->last, ov[0] - x->last)) return x->oom = 1;
    for (const char *p = x->repl; *p; p++) {
        if (p[0] == '\\' && p[1] >= '0' && p[1] <= '9') {
            uint32_t g = (uint32_t)(*++p - '0');
            if (g < npairs && ov[2 * g] != PCRE2_UNSET && kbuf_append(x->out, x->s + ov[2 * g], ov[2 * g + 1] - ov[2 * g]))
                return x->oom = 1;
        } else if (kbuf_putc(x->out, *p)) {
            return x->oom = 1;
        }
    }
    x->last = ov[1];
    return 0;
}

int ans_regex_sub(const AnsRegex *r, const char *s, size_t n, const char *repl, KilnBuf *out) {
    kbuf_clear(out);
    Sub x = {.s = s, .repl = repl, .out = out};
    if (each_match(r, s, n, sub_one, &x) || x.oom || kbuf_append(out, s + x.last, n - x.last)) return -1;
    return out->data || !kbuf_reserve(out, 1) ? 0 : -1;
}

char *ans_regex_remove(const AnsRegex *r, const char *s) {
    KilnBuf out = {0};
    if (ans_regex_sub(r, s, strlen(s), "", &out)) {
        kbuf_free(&out);
        return NULL;
    }
    return out.data;
}

// ---------------------------------------------------------------- exact_match
static char *normalise(const AnsExact *x, const char *s) {
    char *cur = strdup(s);
    for (int i = 0; i < x->nignore && cur; i++) {
        char *next = ans_regex_remove(x->ignore[i], cur);
        free(cur);
        cur = next;
    }
    if (!cur) return NULL;
    KilnBuf b = {0};
    if (x->ignore_case) {
        int rc = py_lower(cur, strlen(cur), &b);
        free(cur);
        if (rc) {
            kbuf_free(&b);
            return NULL;
        }
        cur = b.data;
    }
    if (x->ignore_punctuation) {  // string.punctuation: the ASCII punctuation characters
        static const char PUNCT[] = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
        char *w = cur;
        for (const char *p = cur; *p; p++)
            if (!strchr(PUNCT, *p)) *w++ = *p;
        *w = 0;
    }
    return cur;
}

int ans_exact_match(const AnsExact *x, const char *pred, const char *target) {
    char *a = normalise(x, pred ? pred : ""), *b = normalise(x, target ? target : "");
    int eq = a && b && !strcmp(a, b);
    free(a);
    free(b);
    return eq;
}
