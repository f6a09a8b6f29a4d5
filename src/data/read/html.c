// html.c: HTML to its main text — libxml2's recovering HTML parser, then one
// iterative walk of the DOM into text blocks, and a readability-style choice of
// the content container (paragraph scores added to parents and grandparents,
// discounted by link density).
#include "data/read/extract.h"
#include "core/utf8.h"

#include <libxml/HTMLparser.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

// ---------------------------------------------------------------- tag table
enum {
    T_INLINE = 0,
    T_DROP,     // subtree removed: script, style, navigation, forms...
    T_BLOCK,    // a block boundary: div, section, ul...
    T_PARA,     // p, blockquote, dd, figcaption: a paragraph
    T_HEADING,  // h1..h6
    T_LI,
    T_CELL,     // td, th
    T_PRE,      // whitespace kept
    T_BR,
    T_A,
};

typedef struct {
    const char *name;
    int kind;
} TagKind;

// Sorted by name for bsearch.
static const TagKind TAGS[] = {
    {"a", T_A}, {"address", T_BLOCK}, {"applet", T_DROP}, {"article", T_BLOCK}, {"aside", T_DROP},
    {"audio", T_DROP}, {"blockquote", T_PARA}, {"body", T_BLOCK}, {"br", T_BR}, {"button", T_DROP},
    {"canvas", T_DROP}, {"caption", T_PARA}, {"center", T_BLOCK}, {"datalist", T_DROP}, {"dd", T_PARA},
    {"details", T_BLOCK}, {"dialog", T_DROP}, {"dir", T_BLOCK}, {"div", T_BLOCK}, {"dl", T_BLOCK},
    {"dt", T_PARA}, {"embed", T_DROP}, {"fieldset", T_BLOCK}, {"figcaption", T_PARA}, {"figure", T_BLOCK},
    {"footer", T_DROP}, {"form", T_BLOCK}, {"frame", T_DROP}, {"frameset", T_DROP}, {"h1", T_HEADING},
    {"h2", T_HEADING}, {"h3", T_HEADING}, {"h4", T_HEADING}, {"h5", T_HEADING}, {"h6", T_HEADING},
    {"head", T_DROP}, {"header", T_DROP}, {"hr", T_BLOCK}, {"html", T_BLOCK}, {"iframe", T_DROP},
    {"input", T_DROP}, {"legend", T_PARA}, {"li", T_LI}, {"main", T_BLOCK}, {"map", T_DROP}, {"math", T_DROP},
    {"menu", T_DROP}, {"meter", T_DROP}, {"nav", T_DROP}, {"noembed", T_DROP}, {"noframes", T_DROP},
    {"noscript", T_DROP}, {"object", T_DROP}, {"ol", T_BLOCK}, {"optgroup", T_DROP}, {"option", T_DROP},
    {"p", T_PARA}, {"picture", T_DROP}, {"pre", T_PRE}, {"progress", T_DROP}, {"script", T_DROP},
    {"section", T_BLOCK}, {"select", T_DROP}, {"style", T_DROP}, {"summary", T_PARA}, {"svg", T_DROP},
    {"table", T_BLOCK}, {"tbody", T_BLOCK}, {"td", T_CELL}, {"template", T_DROP}, {"textarea", T_DROP},
    {"tfoot", T_BLOCK}, {"th", T_CELL}, {"thead", T_BLOCK}, {"title", T_DROP}, {"tr", T_BLOCK}, {"ul", T_BLOCK},
    {"video", T_DROP},
};

static int tag_cmp(const void *k, const void *e) { return strcmp(k, ((const TagKind *)e)->name); }

static int tag_kind(const xmlNode *n) {
    const TagKind *t = bsearch(n->name, TAGS, sizeof TAGS / sizeof TAGS[0], sizeof TAGS[0], tag_cmp);
    return t ? t->kind : T_INLINE;
}

// ---------------------------------------------------------------- boilerplate by id/class
// Words of id/class values that mark boilerplate containers. Matched against
// whole words of the attribute (split at non-letters and camelCase), so
// "header-image" or "shareholders" are not dropped.
static const char *const BOILER_WORDS[] = {
    "adv", "advert", "advertisement", "advertising", "banner", "breadcrumb", "breadcrumbs",
    "comment", "comments", "cookie", "cookies", "disqus", "footer", "menu", "nav", "navbar", "navigation",
    "newsletter", "outbrain", "popup", "promo", "related", "share", "sharing", "sidebar", "social",
    "sponsored", "subscribe", "subscription", "taboola", "toolbar", NULL,
};

static int boiler_word(const char *w, size_t n) {
    for (int i = 0; BOILER_WORDS[i]; i++)
        if (strlen(BOILER_WORDS[i]) == n && !strncasecmp(BOILER_WORDS[i], w, n)) return 1;
    return 0;
}

static int is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// 1 if a class/id value names boilerplate. Tokens that state a condition
// ("has-sidebar", "no_sidebar_border", "with-comments") are not roles; "ad"
// and "ads" count only as a token's first word ("ad-slot", not "Page-ad-margins").
static int boiler_attr(const char *v) {
    size_t i = 0, n = strlen(v);
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == '\n')) i++;
        size_t tok = i;  // a space-separated token
        while (i < n && !(v[i] == ' ' || v[i] == '\t' || v[i] == '\n')) i++;
        size_t tend = i;
        if (!strncasecmp(v + tok, "has", 3) || !strncasecmp(v + tok, "no-", 3) || !strncasecmp(v + tok, "no_", 3) ||
            !strncasecmp(v + tok, "with", 4))
            continue;
        size_t j = tok;
        int first = 1;
        while (j < tend) {
            while (j < tend && !is_alpha(v[j])) j++;
            size_t s = j++;
            // a word: letters; a capital after a lower-case letter starts a new one
            while (j < tend && is_alpha(v[j]) && !(v[j] >= 'A' && v[j] <= 'Z' && v[j - 1] >= 'a' && v[j - 1] <= 'z'))
                j++;
            if (j > tend) break;
            size_t wn = j - s;
            int ad = (wn == 2 && !strncasecmp(v + s, "ad", 2)) || (wn == 3 && !strncasecmp(v + s, "ads", 3));
            if (ad ? first : boiler_word(v + s, wn)) return 1;
            first = 0;
        }
    }
    return 0;
}

// Hidden or boilerplate by attributes.
static int drop_by_attrs(xmlNode *n) {
    static const char *const attrs[] = {"id", "class", "role", NULL};
    for (int k = 0; attrs[k]; k++) {
        xmlChar *v = xmlGetNoNsProp(n, (const xmlChar *)attrs[k]);
        if (!v) continue;
        int drop = k == 2 ? !strcmp((char *)v, "navigation") || !strcmp((char *)v, "complementary") ||
                                !strcmp((char *)v, "banner") || !strcmp((char *)v, "contentinfo")
                          : boiler_attr((char *)v);
        xmlFree(v);
        if (drop) return 1;
    }
    if (xmlHasProp(n, (const xmlChar *)"hidden")) return 1;
    xmlChar *st = xmlGetNoNsProp(n, (const xmlChar *)"style");
    int hidden = 0;
    if (st) {
        char *s = (char *)st;
        for (char *p = s; *p; p++)
            if (!strncasecmp(p, "display", 7)) {
                char *q = p + 7;
                while (*q == ' ' || *q == ':') q++;
                if (!strncasecmp(q, "none", 4)) hidden = 1;
            }
        xmlFree(st);
    }
    return hidden;
}

// ---------------------------------------------------------------- blocks
typedef struct {
    size_t off, len;  // in the arena
    size_t links;     // bytes inside <a>
    xmlNode *node;    // the block element that holds the text
    int kind;
} Block;

// Per-element statistics, through xmlNode._private (1-based index).
typedef struct {
    double score;
    size_t raw;          // non-space text bytes in the subtree, before any dropping
    size_t text, links;  // bytes of kept blocks, and of their links
    xmlNode *node;
    int candidate, keep;
} Stat;

typedef struct {
    KilnBuf arena;
    Block *blocks;
    size_t nblocks, capblocks;
    Stat *stats;
    size_t nstats, capstats;
    size_t cur_start, cur_links;
    int pending_space;
    int in_a, in_pre;
    xmlNode *owner;  // innermost open block element
    int oom;
} Walk;

static void arena_put(Walk *w, const char *p, size_t n) {
    if (kbuf_append(&w->arena, p, n)) w->oom = 1;
    if (w->in_a) w->cur_links += n;
}

// Text of a text node: whitespace (and NBSP) collapsed, unless inside <pre>.
static void add_text(Walk *w, const char *s) {
    if (w->in_pre) {
        arena_put(w, s, strlen(s));
        return;
    }
    const char *p = s;
    while (*p) {
        int ws = *p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '\f';
        int nbsp = (unsigned char)p[0] == 0xC2 && (unsigned char)p[1] == 0xA0;
        if (ws || nbsp) {
            w->pending_space = 1;
            p += nbsp ? 2 : 1;
            continue;
        }
        const char *q = p;
        while (*q && !(*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r' || *q == '\f' ||
                       ((unsigned char)q[0] == 0xC2 && (unsigned char)q[1] == 0xA0)))
            q++;
        if (w->pending_space && w->arena.len > w->cur_start) arena_put(w, " ", 1);
        w->pending_space = 0;
        arena_put(w, p, (size_t)(q - p));
        p = q;
    }
}

// Ends the current block (if it has text) as a block of `owner`.
static void flush(Walk *w) {
    size_t s = w->cur_start, e = w->arena.len;
    while (e > s && (w->arena.data[e - 1] == ' ' || w->arena.data[e - 1] == '\n')) e--;
    if (e > s) {
        if (w->nblocks == w->capblocks) {
            size_t nc = w->capblocks ? 2 * w->capblocks : 256;
            Block *nb = realloc(w->blocks, nc * sizeof *nb);
            if (!nb) { w->oom = 1; return; }
            w->blocks = nb;
            w->capblocks = nc;
        }
        int kind = w->owner ? tag_kind(w->owner) : T_BLOCK;
        w->blocks[w->nblocks++] = (Block){s, e - s, w->cur_links < e - s ? w->cur_links : e - s, w->owner, kind};
    }
    w->arena.len = e;
    if (w->arena.data) w->arena.data[e] = 0;
    w->cur_start = e;
    w->cur_links = 0;
    w->pending_space = 0;
}

static int is_block(int kind) { return kind >= T_BLOCK && kind <= T_PRE; }

// Nearest block-level ancestor (bounded walk: inline nesting can be deep).
static xmlNode *block_ancestor(xmlNode *n) {
    for (int k = 0; n && n->type == XML_ELEMENT_NODE && k < 64; k++, n = n->parent)
        if (is_block(tag_kind(n))) return n;
    return n && n->type == XML_ELEMENT_NODE ? n : NULL;
}

static void enter(Walk *w, xmlNode *n, int kind) {
    if (kind == T_A) w->in_a++;
    if (kind == T_PRE) w->in_pre++;
    if (kind == T_BR) {
        if (w->in_pre) return;
        if (w->arena.len > w->cur_start) arena_put(w, "\n", 1);
        w->pending_space = 0;
        return;
    }
    if (is_block(kind)) {
        flush(w);
        w->owner = n;
    }
}

static void leave(Walk *w, xmlNode *n, int kind) {
    if (kind == T_A && w->in_a) w->in_a--;
    if (is_block(kind)) {
        flush(w);
        w->owner = block_ancestor(n->parent);
    }
    if (kind == T_PRE && w->in_pre) w->in_pre--;
}

static Stat *stat_of(Walk *w, xmlNode *n) {
    size_t i = (size_t)(uintptr_t)n->_private;
    if (i) return &w->stats[i - 1];
    if (w->nstats == w->capstats) {
        size_t nc = w->capstats ? 2 * w->capstats : 256;
        Stat *ns = realloc(w->stats, nc * sizeof *ns);
        if (!ns) { w->oom = 1; return NULL; }
        w->stats = ns;
        w->capstats = nc;
    }
    memset(&w->stats[w->nstats], 0, sizeof(Stat));
    w->stats[w->nstats].node = n;
    n->_private = (void *)(uintptr_t)(++w->nstats);
    return &w->stats[w->nstats - 1];
}

#define MAX_UP 256   // ancestors visited per text node or block
#define MAX_CLIMB 64  // levels the chosen container may move up (stays within MAX_UP)

// Non-space text bytes under each element (tags that are always dropped left
// out), so an id/class that looks like boilerplate does not drop a container
// holding most of the page.
static void measure_text(Walk *w, xmlNode *root) {
    xmlNode *n = root;
    while (n && !w->oom) {
        int descend = n->type == XML_ELEMENT_NODE && n->children && tag_kind(n) != T_DROP;
        if ((n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE) && n->content) {
            size_t c = 0;
            for (const char *p = (const char *)n->content; *p; p++) c += *p != ' ' && *p != '\n' && *p != '\t' && *p != '\r';
            int k = 0;
            for (xmlNode *a = n->parent; c && a && a->type == XML_ELEMENT_NODE && k < MAX_UP; a = a->parent, k++) {
                Stat *st = stat_of(w, a);
                if (st) st->raw += c;
            }
        }
        if (descend) {
            n = n->children;
            continue;
        }
        while (n && n != root && !n->next) n = n->parent;
        if (!n || n == root) break;
        n = n->next;
    }
}

static int big_container(Walk *w, xmlNode *n, size_t total) {
    size_t i = (size_t)(uintptr_t)n->_private;
    return i && w->stats[i - 1].raw * 2 > total;
}

// Walks the DOM without recursion (documents may nest 100k levels deep).
static void walk_dom(Walk *w, xmlNode *root) {
    measure_text(w, root);
    size_t i0 = (size_t)(uintptr_t)root->_private, total = i0 ? w->stats[i0 - 1].raw : 0;
    xmlNode *n = root;
    while (n) {
        int descend = 0, kind = T_INLINE;
        if (n->type == XML_ELEMENT_NODE) {
            kind = tag_kind(n);
            if (kind != T_DROP && n != root && strcmp((const char *)n->name, "body") &&
                strcmp((const char *)n->name, "article") && strcmp((const char *)n->name, "main") &&
                drop_by_attrs(n) && !big_container(w, n, total))
                kind = T_DROP;
            if (kind != T_DROP) {
                enter(w, n, kind);
                descend = n->children != NULL;
                if (!descend) leave(w, n, kind);
            }
        } else if (n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE) {
            if (n->content) add_text(w, (const char *)n->content);
        }
        if (descend) {
            n = n->children;
            continue;
        }
        // next sibling, or up (leaving elements) until one has a next sibling
        while (n && n != root && !n->next) {
            n = n->parent;
            if (n && n->type == XML_ELEMENT_NODE) leave(w, n, tag_kind(n));
        }
        if (!n || n == root) break;
        n = n->next;
    }
    flush(w);
}

// ---------------------------------------------------------------- content selection
static size_t count_commas(const char *s, size_t n) {
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] == ',') c++;
    return c;
}

// Class/id words that make a container more or less likely to be the
// article (readability's weights, matched as whole words).
static const char *const POSITIVE_WORDS[] = {
    "article", "body", "content", "entry", "hentry", "main", "page", "post", "text", "blog", "story",
    "articlebody", "postbody", "storybody", "richtext", NULL,
};
static const char *const NEGATIVE_WORDS[] = {
    "hidden", "banner", "combx", "comment", "comments", "contact", "foot", "footer", "footnote", "gdpr",
    "masthead", "media", "meta", "outbrain", "promo", "related", "scroll", "share", "shoutbox", "sidebar",
    "skyscraper", "sponsor", "shopping", "tags", "tool", "widget", "byline", "author", "caption", "credit",
    NULL,
};

static int word_in(const char *const *list, const char *w, size_t n) {
    for (int i = 0; list[i]; i++)
        if (strlen(list[i]) == n && !strncasecmp(list[i], w, n)) return 1;
    return 0;
}

static double class_weight(xmlNode *n) {
    double wgt = 0;
    static const char *const attrs[] = {"class", "id"};
    for (int k = 0; k < 2; k++) {
        xmlChar *v = xmlGetNoNsProp(n, (const xmlChar *)attrs[k]);
        if (!v) continue;
        const char *s = (const char *)v;
        int pos = 0, neg = 0;
        for (size_t i = 0, len = strlen(s); i < len;) {
            while (i < len && !is_alpha(s[i])) i++;
            size_t st = i;
            while (i < len && is_alpha(s[i])) i++;
            if (i == st) continue;
            if (word_in(POSITIVE_WORDS, s + st, i - st)) pos = 1;
            if (word_in(NEGATIVE_WORDS, s + st, i - st)) neg = 1;
        }
        wgt += 25 * pos - 25 * neg;
        xmlFree(v);
    }
    return wgt;
}

static double tag_bonus(xmlNode *n) {
    const char *t = (const char *)n->name;
    if (!strcmp(t, "div") || !strcmp(t, "article") || !strcmp(t, "section") || !strcmp(t, "main")) return 5;
    if (!strcmp(t, "pre") || !strcmp(t, "td") || !strcmp(t, "blockquote")) return 3;
    if (!strcmp(t, "ol") || !strcmp(t, "ul") || !strcmp(t, "dl") || !strcmp(t, "dd") || !strcmp(t, "dt") ||
        !strcmp(t, "li") || !strcmp(t, "form") || !strcmp(t, "address"))
        return -3;
    if (tag_kind(n) == T_HEADING || !strcmp(t, "th")) return -5;
    return 0;
}

static Stat *candidate(Walk *w, xmlNode *n) {
    Stat *s = stat_of(w, n);
    if (s && !s->candidate) {
        s->candidate = 1;
        s->score = tag_bonus(n) + class_weight(n);
    }
    return s;
}

static int is_ancestor(const xmlNode *a, const xmlNode *n) {
    for (int k = 0; n && k < MAX_UP; k++, n = n->parent)
        if (n == a) return 1;
    return 0;
}

static int is_body(const xmlNode *n) {
    return !n || n->type != XML_ELEMENT_NODE || !strcmp((const char *)n->name, "body") ||
           !strcmp((const char *)n->name, "html");
}

static double final_score(const Stat *s) {
    double ld = s->text ? (double)s->links / (double)s->text : 0;
    return s->score * (1 - ld);
}

// readability's choice (Mozilla Readability, simplified): paragraph scores (1 + commas + length/100, at most
// 3) go to the parent and half to the grandparent; candidates are scaled by
// 1 - link density; the best one may move up to an ancestor shared by other
// strong candidates; siblings that look alike join it. Marks kept subtrees;
// 0 when nothing scored.
static int choose_content(Walk *w) {
    for (size_t i = 0; i < w->nblocks && !w->oom; i++) {
        Block *b = &w->blocks[i];
        int k = 0;
        for (xmlNode *a = b->node; a && a->type == XML_ELEMENT_NODE && k < MAX_UP; a = a->parent, k++) {
            Stat *s = stat_of(w, a);
            if (!s) return 0;
            s->text += b->len;
            s->links += b->links;
        }
        if (b->len < 25 || b->kind == T_HEADING) continue;
        double score = 1.0 + (double)count_commas(w->arena.data + b->off, b->len) +
                       (b->len / 100.0 < 3.0 ? b->len / 100.0 : 3.0);
        xmlNode *c = b->kind == T_BLOCK ? b->node : b->node->parent;
        if (!c || c->type != XML_ELEMENT_NODE) continue;
        Stat *cs = candidate(w, c);
        if (!cs) return 0;
        cs->score += score;
        xmlNode *g = c->parent;
        if (g && g->type == XML_ELEMENT_NODE) {
            Stat *gs = candidate(w, g);
            if (!gs) return 0;
            gs->score += score / 2;
        }
    }
    if (w->oom) return 0;
    enum { NTOP = 5 };
    Stat *top[NTOP] = {0};
    for (size_t i = 0; i < w->nstats; i++) {
        Stat *s = &w->stats[i];
        if (!s->candidate || s->score <= 0) continue;
        s->score = final_score(s);
        for (int t = 0; t < NTOP; t++)
            if (!top[t] || s->score > top[t]->score) {
                memmove(&top[t + 1], &top[t], (NTOP - 1 - t) * sizeof top[0]);
                top[t] = s;
                break;
            }
    }
    if (!top[0]) return 0;
    xmlNode *best = top[0]->node;
    // an ancestor holding three of the strong candidates is the article (0.5
    // rather than readability's 0.75: articles split into many columns)
    int nalt = 0;
    for (int t = 1; t < NTOP; t++)
        if (top[t] && top[t]->score >= 0.5 * top[0]->score) nalt++;
    if (nalt >= 3) {
        int k = 0;
        for (xmlNode *p = best->parent; !is_body(p) && k < MAX_CLIMB; p = p->parent, k++) {
            int in = 0;
            for (int t = 1; t < NTOP; t++)
                if (top[t] && top[t]->score >= 0.5 * top[0]->score && is_ancestor(p, top[t]->node)) in++;
            if (in >= 3) { best = p; break; }
        }
    }
    // climb while the parents' scores go up
    double last = stat_of(w, best)->score, floor_ = last / 3;
    int k = 0;
    for (xmlNode *p = best->parent; !is_body(p) && k < MAX_CLIMB; p = p->parent, k++) {
        size_t pi = (size_t)(uintptr_t)p->_private;
        if (!pi || !w->stats[pi - 1].candidate) continue;
        double ps = w->stats[pi - 1].score;
        if (ps < floor_) break;
        if (ps > last) { best = p; break; }
        last = ps;
    }
    for (k = 0; !is_body(best->parent) && xmlChildElementCount(best->parent) == 1 && k < MAX_CLIMB; k++)
        best = best->parent;
    // siblings
    Stat *bs = stat_of(w, best);
    if (!bs) return 0;
    double bscore = bs->candidate ? bs->score : 0;
    double threshold = bscore * 0.2 > 10 ? bscore * 0.2 : 10;
    xmlChar *bclass = xmlGetNoNsProp(best, (const xmlChar *)"class");
    xmlNode *first = best->parent ? best->parent->children : best;
    for (xmlNode *sib = first; sib; sib = sib->next) {
        if (sib->type != XML_ELEMENT_NODE) continue;
        Stat *st = stat_of(w, sib);
        if (!st) break;
        int keep = sib == best;
        if (!keep && st->candidate) {
            double bonus = 0;
            xmlChar *c = xmlGetNoNsProp(sib, (const xmlChar *)"class");
            if (c && bclass && *bclass && !strcmp((char *)c, (char *)bclass)) bonus = bscore * 0.2;
            xmlFree(c);
            keep = st->score + bonus >= threshold;
        }
        if (!keep && tag_kind(sib) == T_PARA && st->text) {
            double ld = (double)st->links / (double)st->text;
            keep = (st->text > 80 && ld < 0.25) || (st->text <= 80 && ld == 0);
        }
        st->keep = keep;
    }
    xmlFree(bclass);
    return !w->oom;
}

static int block_kept(Walk *w, const Block *b) {
    int k = 0;
    for (xmlNode *a = b->node; a && a->type == XML_ELEMENT_NODE && k < MAX_UP; a = a->parent, k++) {
        size_t i = (size_t)(uintptr_t)a->_private;
        if (i && w->stats[i - 1].keep) return 1;
    }
    return 0;
}

// ---------------------------------------------------------------- output
static int emit(Walk *w, int selected, KilnBuf *out) {
    int prev_kind = -1;
    for (size_t i = 0; i < w->nblocks; i++) {
        const Block *b = &w->blocks[i];
        if (selected && !block_kept(w, b)) continue;
        if (b->kind != T_PRE && b->links * 2 > b->len) continue;  // link lists inside the content
        if (out->len) {
            int same_list = (b->kind == T_LI && prev_kind == T_LI) || (b->kind == T_CELL && prev_kind == T_CELL);
            if (kbuf_puts(out, same_list ? "\n" : "\n\n")) return -1;
        }
        if (kbuf_append(out, w->arena.data + b->off, b->len)) return -1;
        prev_kind = b->kind;
    }
    if (out->len && kbuf_putc(out, '\n')) return -1;
    return 0;
}

static void clear_private(xmlNode *root) {
    xmlNode *n = root;
    while (n) {
        n->_private = NULL;
        if (n->children && n->type == XML_ELEMENT_NODE) {
            n = n->children;
            continue;
        }
        while (n && n != root && !n->next) n = n->parent;
        if (!n || n == root) break;
        n = n->next;
    }
}

// ---------------------------------------------------------------- title, charset
static int get_title(xmlNode *root, KilnBuf *title) {
    xmlNode *n = root;
    while (n) {
        if (n->type == XML_ELEMENT_NODE && !strcmp((const char *)n->name, "title")) {
            Walk w = {0};
            for (xmlNode *c = n->children; c; c = c->next)
                if (c->type == XML_TEXT_NODE && c->content) add_text(&w, (const char *)c->content);
            int rc = w.oom ? -1 : kbuf_set(title, w.arena.data ? w.arena.data : "", w.arena.len);
            kbuf_free(&w.arena);
            return rc;
        }
        if (n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, "body") && n->children) {
            n = n->children;
            continue;
        }
        while (n && n != root && !n->next) n = n->parent;
        if (!n || n == root) break;
        n = n->next;
    }
    return 0;
}

// windows-1252's 0x80-0x9F (the HTML5 default, and what "iso-8859-1" means
// on the web); its five unassigned bytes become U+FFFD.
static const unsigned short CP1252_HIGH[32] = {
    0x20AC, 0xFFFD, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0xFFFD, 0x017D, 0xFFFD, 0xFFFD, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0xFFFD, 0x017E, 0x0178,
};

static int cp1252_to_utf8(const char *s, size_t n, KilnBuf *out) {
    if (kbuf_reserve(out, 3 * n)) return -1;
    char *o = out->data;
    for (size_t i = 0; i < n; i++) {
        unsigned c = (unsigned char)s[i];
        if (c >= 0x80 && c < 0xA0) c = CP1252_HIGH[c - 0x80];
        o += utf8_encode(c, o);  // at most 3 bytes: all below U+10000
    }
    out->len = (size_t)(o - out->data);
    out->data[out->len] = 0;
    return 0;
}

enum { ENC_UTF8, ENC_UTF8_REPAIR, ENC_CP1252, ENC_DECLARED };

// How to decode: valid UTF-8 is UTF-8 whatever the page claims; otherwise the
// page's declared charset (first 8 KB): UTF-8 repaired, windows-1252 /
// Latin-1 / ASCII (and no declaration: the HTML5 default) converted here,
// anything else (Shift_JIS, GBK, KOI8-R...) left to libxml2 and iconv.
static int pick_encoding(const char *html, size_t n) {
    if (utf8_valid(html, n)) return ENC_UTF8;
    size_t head = n < 8192 ? n : 8192;
    for (size_t i = 0; i + 8 <= head; i++) {
        if ((html[i] != 'c' && html[i] != 'C') || strncasecmp(html + i, "charset=", 8)) continue;
        const char *v = html + i + 8;
        size_t left = head - i - 8;
        while (left && (*v == '"' || *v == '\'' || *v == ' ')) v++, left--;
        size_t k = 0;
        while (k < left && (is_alpha(v[k]) || (v[k] >= '0' && v[k] <= '9') || v[k] == '-' || v[k] == '_')) k++;
        static const char *const utf8[] = {"utf-8", "utf8", NULL};
        static const char *const latin[] = {"windows-1252", "iso-8859-1", "latin1", "iso8859-1", "us-ascii",
                                            "ascii", "cp1252", "iso-8859-15", NULL};
        for (int j = 0; utf8[j]; j++)
            if (k == strlen(utf8[j]) && !strncasecmp(v, utf8[j], k)) return ENC_UTF8_REPAIR;
        for (int j = 0; latin[j]; j++)
            if (k == strlen(latin[j]) && !strncasecmp(v, latin[j], k)) return ENC_CP1252;
        return k ? ENC_DECLARED : ENC_CP1252;
    }
    return ENC_CP1252;
}

// libxml2 reports encoding trouble through its (per-thread) generic error
// handler even with NOERROR; the library never prints.
static void quiet(void *ctx, const char *msg, ...) {}

static htmlDocPtr parse(const char *html, size_t n, const char *enc, int force) {
    int opts = HTML_PARSE_RECOVER | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING | HTML_PARSE_NONET |
               HTML_PARSE_NOBLANKS | HTML_PARSE_COMPACT | XML_PARSE_HUGE;
    if (force) opts |= HTML_PARSE_IGNORE_ENC;
    if (n > (size_t)0x7fffffff) n = 0x7fffffff;
    return htmlReadMemory(html, (int)n, NULL, enc, opts);
}

static int extract(htmlDocPtr doc, KilnBuf *out, KilnBuf *title) {
    xmlNode *root = xmlDocGetRootElement(doc);
    if (!root) return 0;
    if (title && get_title(root, title)) return -1;
    Walk w = {0};
    walk_dom(&w, root);
    int rc = -1;
    if (!w.oom) {
        int selected = choose_content(&w);
        if (!w.oom) rc = emit(&w, selected, out);
    }
    clear_private(root);
    kbuf_free(&w.arena);
    free(w.blocks);
    free(w.stats);
    return rc;
}

int html_main_text(const char *html, size_t n, KilnBuf *out, KilnBuf *title, KilnErr *err) {
    kbuf_clear(out);
    if (title) kbuf_clear(title);
    if (n == 0) return 0;
    xmlSetGenericErrorFunc(NULL, quiet);
    xmlSetStructuredErrorFunc(NULL, NULL);
    int enc = pick_encoding(html, n);
    KilnBuf conv = {0};
    htmlDocPtr doc = NULL;
    if (enc == ENC_DECLARED) {  // libxml2 reads the declaration; failing that, windows-1252
        doc = parse(html, n, NULL, 0);
        xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;
        if (!root || !root->children) {
            xmlFreeDoc(doc);
            doc = NULL;
            enc = ENC_CP1252;
        }
    }
    if (!doc) {
        if (enc == ENC_UTF8_REPAIR && utf8_repair(html, n, &conv) < 0) return kiln_fail(err, "html: out of memory");
        if (enc == ENC_CP1252 && cp1252_to_utf8(html, n, &conv)) return kiln_fail(err, "html: out of memory");
        if (enc != ENC_UTF8) html = conv.data, n = conv.len;
        doc = parse(html, n, "UTF-8", 1);
    }
    kbuf_free(&conv);
    if (!doc) return 0;  // nothing libxml2 could recover: no text
    int rc = extract(doc, out, title);
    xmlFreeDoc(doc);
    if (rc) return kiln_fail(err, "html: out of memory");
    // libxml2 output is UTF-8; repair anyway so the contract holds for any input
    KilnBuf *bufs[2] = {out, title};
    for (int i = 0; i < 2; i++) {
        if (!bufs[i] || !bufs[i]->len || utf8_valid(bufs[i]->data, bufs[i]->len)) continue;
        KilnBuf fixed = {0};
        if (utf8_repair(bufs[i]->data, bufs[i]->len, &fixed) < 0) return kiln_fail(err, "html: out of memory");
        kbuf_swap(bufs[i], &fixed);
        kbuf_free(&fixed);
    }
    return 0;
}

// ---------------------------------------------------------------- the `html` stage
typedef struct {
    int title;  // put the <title> first, as its own paragraph
} HtmlStage;

static int html_create(KilnParams *ps, uint64_t seed, void **state, KilnErr *err) {
    HtmlStage *h = calloc(1, sizeof *h);
    if (!h) return kiln_fail(err, "out of memory");
    if (params_bool(ps, "title", &h->title, err)) {
        free(h);
        return -1;
    }
    xmlInitParser();  // once, before apply runs on many threads
    *state = h;
    return 0;
}

static void html_destroy(void *state) { free(state); }

static const char *html_apply(void *state, KilnDoc *doc, KilnScratch *s) {
    const HtmlStage *h = state;
    KilnErr err;
    if (html_main_text(doc->text.data ? doc->text.data : "", doc->text.len, &s->a, h->title ? &s->b : NULL, &err))
        return "html:out_of_memory";
    if (s->a.len == 0) return "html:empty";
    if (h->title && s->b.len) {
        if (kbuf_puts(&s->b, "\n\n") || kbuf_append(&s->b, s->a.data, s->a.len)) return "html:out_of_memory";
        kbuf_swap(&s->a, &s->b);
    }
    kbuf_swap(&doc->text, &s->a);
    return NULL;
}

const KilnStageDef STAGE_HTML = {
    .name = "html",
    .summary = "HTML to its main text (libxml2; boilerplate dropped, readability-style content choice)",
    .params_help = "  title (false): put the page's <title> first, as its own paragraph\n",
    .create = html_create,
    .destroy = html_destroy,
    .apply = html_apply,
};
