// pii.c: the `pii` stage: e-mail addresses, public IP addresses (v4, v6) and phone
// numbers replaced by placeholders.
//
// E-mail and IPv4 follow datatrove's PIIFormatter: its e-mail regex (made case
// insensitive) and its IPv4 regex, with a match replaced only when the address
// is globally routable (datatrove's only_remove_public_ips, Python's is_global).
// datatrove has no phone or IPv6 rule; ours are below. Boundaries keep version
// numbers (1.2.3.4.5, v1.2.3.4, "version 1.2.3.4", "POSIX 3.3.1.3"), dates and long digit runs
// out. Passes run in this order: e-mail (so user@[1.2.3.4] goes whole), IPv4,
// IPv6, phone; each pass is one PCRE2 pattern, JIT-compiled in create.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "kiln/data.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <pcre2.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum { K_EMAIL, K_IPV4, K_IPV6, K_PHONE, K_N };
static const char *const KIND_NAME[K_N] = {"emails", "ipv4", "ipv6", "phones"};

#define OCTET "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"  // no leading zeros
#define ATEXT "[a-z0-9!#$%&'*+/=?^_`{|}~-]"
#define LABEL "[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
#define TLD "[a-z](?:[a-z0-9-]*[a-z0-9])?"  // not datatrove's: "popper.js@1.16.1" is no address

static const char *const PATTERN[K_N] = {
    // datatrove's e-mail regex (RFC 5322 dot-atom local part; domain, or an IPv4
    // literal in brackets), starting at a word boundary as datatrove's does
    "\\b" ATEXT "+(?:\\." ATEXT "+)*@(?:(?:" LABEL "\\.)+" TLD
    "|\\[(?:" OCTET "\\.){3}" OCTET "\\])(?![a-z0-9-])",
    // dotted quad, not part of a longer dotted number or word (v1.2.3.4)
    "(?<![0-9A-Za-z.])(?:" OCTET "\\.){3}" OCTET "(?![0-9]|\\.[0-9])",
    // a run of hex digits and colons with two colons near its start; inet_pton
    // decides whether it is an address (times, MACs and C++ scopes are not)
    "(?<![0-9A-Za-z_:.])(?=[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}:)[0-9A-Fa-f:]{3,39}(?![0-9A-Za-z_:]|\\.[0-9])",
    // phone numbers, three shapes:
    //  +CC then 2-6 groups, brackets allowed ("+44 (0)20 7946 0958", "+1-415-555-2671")
    //  North American ((415) 555-2671, 415.555.2671, 1-800-555-0199)
    //  national with trunk 0 and ONE separator throughout ("020 7946 0958",
    //  "06 12 34 56 78"), so "01.02.2024 10:30" is not one
    "(?<![0-9A-Za-z_+.-])(?:"
    "\\+[1-9][0-9]{0,2}(?:[ .-]?\\(?[0-9]{1,4}\\)?){2,6}"
    "|(?:1[ .-]?)?(?:\\([2-9][0-9]{2}\\) ?|[2-9][0-9]{2}[ .-])[2-9][0-9]{2}[ .-][0-9]{4}"
    "|\\(?0[1-9][0-9]{0,3}\\)?([ .-])[0-9]{2,4}(?:\\1[0-9]{2,4}){1,3}"
    ")(?![0-9A-Za-z_:]|[.-][0-9])",
};

typedef struct {
    pcre2_code *re[K_N];
    int on[K_N];
    char *placeholder[K_N];
    int public_only;
    atomic_long count[K_N], errors;
} Pii;

// ---------------------------------------------------------------- validators
// Globally routable unicast IPv4 (Python's is_global, and not multicast).
static int ipv4_public(const unsigned char a[4]) {
    unsigned x = (unsigned)a[0] << 24 | (unsigned)a[1] << 16 | (unsigned)a[2] << 8 | a[3];
    static const struct {
        unsigned net, bits;
    } NONGLOBAL[] = {
        {0x00000000, 8},  {0x0A000000, 8},  {0x64400000, 10}, {0x7F000000, 8},  {0xA9FE0000, 16},
        {0xAC100000, 12}, {0xC0000000, 24}, {0xC0000200, 24}, {0xC0A80000, 16}, {0xC6120000, 15},
        {0xC6336400, 24}, {0xCB007100, 24}, {0xE0000000, 4},  {0xF0000000, 4},
    };
    for (size_t i = 0; i < sizeof NONGLOBAL / sizeof NONGLOBAL[0]; i++)
        if ((x >> (32 - NONGLOBAL[i].bits)) == (NONGLOBAL[i].net >> (32 - NONGLOBAL[i].bits))) return 0;
    return 1;
}

// Global unicast IPv6: 2000::/3, less 2001::/23 (IETF protocols, Teredo) and
// 2001:db8::/32 (documentation).
static int ipv6_public(const unsigned char a[16]) {
    if ((a[0] & 0xE0) != 0x20) return 0;
    if (a[0] == 0x20 && a[1] == 0x01 && a[2] < 0x02) return 0;
    return !(a[0] == 0x20 && a[1] == 0x01 && a[2] == 0x0d && a[3] == 0xb8);
}

// The word just before text[start], lowercased into w (empty if none or too long).
static void word_before(const char *text, size_t start, char *w, size_t cap) {
    size_t e = start;
    while (e > 0 && (text[e - 1] == ' ' || text[e - 1] == '.' || text[e - 1] == ':')) e--;
    size_t b = e;
    while (b > 0 && isalpha((unsigned char)text[b - 1])) b--;
    size_t n = e - b < cap ? e - b : 0;
    for (size_t i = 0; i < n; i++) w[i] = (char)tolower((unsigned char)text[b + i]);
    w[n] = 0;
}

static int is_version_word(const char *w) {
    static const char *const V[] = {"version", "ver", "v",   "release", "build", "rev",    "revision",
                                    "section", "sec", "chapter", "clause", "rfc", "posix", NULL};
    for (int i = 0; V[i]; i++)
        if (!strcmp(w, V[i])) return 1;
    return 0;
}

// "logo@2x.png" is a file name, not an address.
static int file_extension(const char *m, size_t n) {
    static const char *const EXT[] = {"png", "jpg", "jpeg", "gif", "svg", "webp", "css", "js", NULL};
    size_t d = n;
    while (d > 0 && m[d - 1] != '.') d--;
    for (int i = 0; EXT[i]; i++)
        if (n - d == strlen(EXT[i]) && !strncasecmp(m + d, EXT[i], n - d)) return 1;
    return 0;
}

static int digit_count(const char *m, size_t n) {
    int k = 0;
    for (size_t i = 0; i < n; i++) k += m[i] >= '0' && m[i] <= '9';
    return k;
}

// Whether the match text[s..e) of kind k is to be replaced.
static int valid(const Pii *p, int k, const char *text, size_t s, size_t e) {
    const char *m = text + s;
    size_t n = e - s;
    char buf[64], w[16];
    switch (k) {
    case K_EMAIL:
        return !file_extension(m, n);
    case K_IPV4: {
        unsigned char a[4];
        if (n >= sizeof buf) return 0;
        memcpy(buf, m, n);
        buf[n] = 0;
        if (inet_pton(AF_INET, buf, a) != 1) return 0;
        word_before(text, s, w, sizeof w);
        if (is_version_word(w)) return 0;
        return !p->public_only || ipv4_public(a);
    }
    case K_IPV6: {
        unsigned char a[16];
        if (n >= sizeof buf) return 0;
        memcpy(buf, m, n);
        buf[n] = 0;
        if (inet_pton(AF_INET6, buf, a) != 1) return 0;
        return !p->public_only || ipv6_public(a);
    }
    default: {
        int d = digit_count(m, n);
        if (m[0] == '+') return d >= 8 && d <= 15;  // E.164: at most 15 digits
        if (m[0] == '0' || (m[0] == '(' && m[1] == '0')) return d >= 9 && d <= 12;
        return d == 10 || d == 11;
    }
    }
}

// ---------------------------------------------------------------- replacing
// Which bytes a text must hold for a pattern to match at all (a cheap skip).
static int may_match(int k, const char *t, size_t n) {
    switch (k) {
    case K_EMAIL: return memchr(t, '@', n) != NULL;
    case K_IPV4: return memchr(t, '.', n) != NULL;
    case K_IPV6: return memchr(t, ':', n) != NULL;
    default: return 1;
    }
}

// out = in with every valid match of kind k replaced; returns the number of
// replacements, or -1 when out of memory.
static long replace_kind(Pii *p, int k, const char *in, size_t n, KilnBuf *out, pcre2_match_data *md) {
    kbuf_clear(out);
    if (kbuf_reserve(out, n)) return -1;
    size_t last = 0, pos = 0;
    long count = 0;
    while (pos < n) {
        int rc = pcre2_match(p->re[k], (PCRE2_SPTR)in, n, pos, 0, md, NULL);
        if (rc < 0) {
            if (rc != PCRE2_ERROR_NOMATCH) atomic_fetch_add(&p->errors, 1);  // match/JIT limits
            break;
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t s = ov[0], e = ov[1];
        if (e <= s) {
            pos = s + 1;
            continue;
        }
        if (valid(p, k, in, s, e)) {
            if (kbuf_append(out, in + last, s - last) || kbuf_puts(out, p->placeholder[k])) return -1;
            last = e;
            count++;
        }
        pos = e;
    }
    if (kbuf_append(out, in + last, n - last)) return -1;
    return count;
}

static const char *pii_apply(void *state, KilnDoc *doc, KilnScratch *s) {
    Pii *p = state;
    pcre2_match_data *md = pcre2_match_data_create(4, NULL);
    if (!md) return "pii:out_of_memory";
    const char *reason = NULL;
    for (int k = 0; k < K_N && !reason; k++) {
        if (!p->on[k] || !may_match(k, doc->text.data, doc->text.len)) continue;
        long c = replace_kind(p, k, doc->text.data, doc->text.len, &s->a, md);
        if (c < 0) reason = "pii:out_of_memory";
        else if (c > 0) {
            kbuf_swap(&doc->text, &s->a);
            atomic_fetch_add(&p->count[k], c);
        }
    }
    pcre2_match_data_free(md);
    return reason;
}

// ---------------------------------------------------------------- stage
static void pii_destroy(void *state) {
    Pii *p = state;
    if (!p) return;
    for (int k = 0; k < K_N; k++) {
        pcre2_code_free(p->re[k]);
        free(p->placeholder[k]);
    }
    free(p);
}

static int compile(Pii *p, int k, KilnErr *err) {
    int code;
    PCRE2_SIZE off;
    uint32_t flags = k == K_EMAIL ? PCRE2_CASELESS : 0;
    p->re[k] = pcre2_compile((PCRE2_SPTR)PATTERN[k], PCRE2_ZERO_TERMINATED, flags, &code, &off, NULL);
    if (!p->re[k]) {
        PCRE2_UCHAR msg[200];
        pcre2_get_error_message(code, msg, sizeof msg);
        return kiln_fail(err, "pii: %s pattern, offset %zu: %s", KIND_NAME[k], (size_t)off, (char *)msg);
    }
    pcre2_jit_compile(p->re[k], PCRE2_JIT_COMPLETE);  // no JIT (some platforms): the interpreter
    return 0;
}

static int pii_create(KilnParams *ps, uint64_t seed, void **state, KilnErr *err) {
    int emails = 1, phones = 1, ips = 1, public_only = 1;
    const char *ph_email = "<EMAIL>", *ph_phone = "<PHONE>", *ph_ip = "<IP>";
    if (params_bool(ps, "emails", &emails, err) || params_bool(ps, "phones", &phones, err) ||
        params_bool(ps, "ips", &ips, err) || params_bool(ps, "only_public_ips", &public_only, err) ||
        params_str(ps, "email", &ph_email, err) || params_str(ps, "phone", &ph_phone, err) ||
        params_str(ps, "ip", &ph_ip, err))
        return -1;
    Pii *p = calloc(1, sizeof *p);
    if (!p) return kiln_fail(err, "pii: out of memory");
    int on[K_N] = {emails, ips, ips, phones};
    const char *ph[K_N] = {ph_email, ph_ip, ph_ip, ph_phone};
    p->public_only = public_only;
    for (int k = 0; k < K_N; k++) {
        p->on[k] = on[k];
        p->placeholder[k] = strdup(ph[k]);
        atomic_init(&p->count[k], 0);
        if (!p->placeholder[k] || compile(p, k, err)) {
            if (!p->placeholder[k]) kiln_fail(err, "pii: out of memory");
            pii_destroy(p);
            return -1;
        }
    }
    atomic_init(&p->errors, 0);
    *state = p;
    return 0;
}

static char *pii_report(void *state) {
    Pii *p = state;
    char *j = malloc(160);
    if (j)
        snprintf(j, 160, "{\"emails\":%ld,\"ipv4\":%ld,\"ipv6\":%ld,\"phones\":%ld,\"regex_errors\":%ld}",
                 atomic_load(&p->count[K_EMAIL]), atomic_load(&p->count[K_IPV4]), atomic_load(&p->count[K_IPV6]),
                 atomic_load(&p->count[K_PHONE]), atomic_load(&p->errors));
    return j;
}

const KilnStageDef STAGE_PII = {
    .name = "pii",
    .summary = "e-mail addresses, public IP addresses and phone numbers replaced by placeholders",
    .params_help = "  emails (true), ips (true), phones (true): which kinds to replace\n"
                   "  email (<EMAIL>), ip (<IP>), phone (<PHONE>): the placeholders\n"
                   "  only_public_ips (true): leave private, loopback, link-local, documentation,\n"
                   "    multicast and reserved addresses (as datatrove)\n",
    .create = pii_create,
    .destroy = pii_destroy,
    .apply = pii_apply,
    .report_json = pii_report,
};
