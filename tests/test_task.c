// test_task.c: evaluation tasks (kiln/task.h). The shipped task files render
// the real datasets' first items exactly as lm-evaluation-harness's rules give
// them by hand, with the ids decontam_read_eval gives the same files; few-shot
// prompts (delimiters, never the item itself, fixed by the seed); template
// filters; answer extraction and exact_match on cases worked out with Python's
// re; bad task files and datasets name file:line; fuzzed task files, templates,
// CSV and JSONL never crash the loader. Without ../shared/data the data-free
// tests run and the program reports a skip.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "task/task_internal.h"
#include "core/csv.h"
#include "data/stage/decontam.h"
#include "kiln/task.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char data_dir[4096], src_root[4096];

// ---------------------------------------------------------------- helpers
static const char *task_file(const char *name) {
    static char path[4][4400];
    static int k;
    k = (k + 1) % 4;
    snprintf(path[k], sizeof path[k], "%s/tasks/%s.yaml", src_root, name);
    return path[k];
}

static KilnTask *load_shipped(const char *name) {
    KilnTask *t;
    KilnErr err;
    if (task_load(&t, task_file(name), data_dir, 0, &err)) fail_msg("%s", err.msg);
    return t;
}

static void put(const char *name, const char *text) { write_bytes(tmp(name), text, strlen(text)); }

// Loads tmp yaml `y` (datasets relative to the tmp dir).
static int try_load(const char *y, int skip_bad, KilnTask **t, KilnErr *err) {
    put("t.yaml", y);
    return task_load(t, tmp("t.yaml"), test_tmpdir(), skip_bad, err);
}

static KilnTask *load_ok(const char *y) {
    KilnTask *t;
    KilnErr err;
    if (try_load(y, 0, &t, &err)) fail_msg("%s", err.msg);
    return t;
}

// The load fails and the message holds each of the NULL-terminated needles.
static void load_fails(const char *y, int skip_bad, ...) {
    KilnTask *t = NULL;
    KilnErr err;
    if (!try_load(y, skip_bad, &t, &err)) {
        task_free(t);
        fail_msg("loaded, expected an error:\n%s", y);
    }
    va_list ap;
    va_start(ap, skip_bad);
    for (const char *n; (n = va_arg(ap, const char *));)
        if (!strstr(err.msg, n)) fail_msg("error '%s' lacks '%s'", err.msg, n);
    va_end(ap);
}

static const KilnTaskItem *render(KilnTask *t, int shots, uint64_t seed, long limit, long *n) {
    const KilnTaskItem *it;
    KilnErr err;
    if (task_render(t, shots, seed, limit, &it, n, &err)) fail_msg("%s", err.msg);
    return it;
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

typedef struct {
    char **ids;
    long n;
} Ids;

static int collect_id(void *ctx, const char *task, const char *id, const char *const *texts, const size_t *lens,
                      int ntexts, KilnErr *err) {
    (void)task, (void)texts, (void)lens, (void)ntexts, (void)err;
    Ids *x = ctx;
    x->ids = realloc(x->ids, sizeof *x->ids * (size_t)(x->n + 1));
    x->ids[x->n++] = strdup(id);
    return 0;
}

// The ids decontam_read_eval gives the file equal the task's items' ids, in order.
static void ids_match_decontam(const char *task, const char *rel) {
    char spec[4500];
    snprintf(spec, sizeof spec, "%s/%s", data_dir, rel);
    Ids x = {0};
    KilnErr err;
    if (decontam_read_eval(spec, collect_id, &x, NULL, &err)) fail_msg("%s", err.msg);
    KilnTask *t = load_shipped(task);
    long n;
    const KilnTaskItem *it = render(t, 0, 1, 0, &n);
    assert_int_equal(n, x.n);
    for (long i = 0; i < n; i++) {
        if (strcmp(it[i].id, x.ids[i])) fail_msg("%s item %ld: id %s, decontam %s", task, i, it[i].id, x.ids[i]);
        free(x.ids[i]);
    }
    free(x.ids);
    task_free(t);
}

// ---------------------------------------------------------------- shipped tasks (need ../shared/data)
static void test_hellaswag(void **state) {
    (void)state;
    KilnTask *t = load_shipped("hellaswag");
    assert_string_equal(task_name(t), "hellaswag");
    assert_int_equal(task_kind(t), TASK_MULTIPLE_CHOICE);
    assert_int_equal(task_default_shots(t), 0);
    assert_int_equal(task_max_shots(t), 100);
    long n;
    const KilnTaskItem *it = render(t, 0, 1, 0, &n);
    assert_int_equal(n, 793);
    // record 1: activity_label + ": " + ctx_a + " " + ctx_b.capitalize(); endings with the " " delimiter
    assert_string_equal(it[0].id, "hellaswag/20022");
    assert_string_equal(it[0].context, "Pole vault: Pole vault is a sport where you run with a pole and stop and swing "
                                       "your body. A few women");
    assert_int_equal(it[0].nchoices, 4);
    assert_string_equal(it[0].choices[0], " go down a rock and stop.");
    assert_string_equal(it[0].choices[3], " are in the gym practicing to do this pole vault, trying to do their best.");
    assert_int_equal(it[0].label, 3);
    assert_null(it[0].target);
    assert_int_equal(it[0].line, 1);
    assert_string_equal(it[1].id, "hellaswag/2533");
    assert_string_equal(it[1].context, "Playing violin: A woman in a dress holding a violin addresses an audience. The "
                                       "woman plays the violin as other musicians look on. The woman");
    assert_string_equal(it[1].choices[2], " finishes her playing and everyone applauds.");
    assert_int_equal(it[1].label, 2);
    // record 3, wikiHow, empty ctx_b: " [title]" -> ". ", other [..] tags gone, "  " -> " ", then strip()
    // (the whole query is preprocessed, so the space before the empty ctx_b goes too)
    assert_string_equal(it[2].id, "hellaswag/594");
    assert_string_equal(it[2].context,
                        "Food and Entertaining: How to make taco sauce. Whisk together the tomato sauce and seasonings. "
                        "In a medium mixing bowl, whisk together the tomato sauce, chili powder, cumin, garlic powder, "
                        "onion powder, paprika, cayenne pepper, apple cider vinegar, and honey. Mix until smooth and "
                        "evenly combined.");
    // an ending "[title] The basil ...": stripped first, so the tag's removal leaves a leading space
    assert_true(!strncmp(it[2].choices[1], "  The basil seeds in the cayenne pepper,", 40));
    assert_int_equal(it[2].label, 2);
    for (long i = 0; i < n; i++) {
        assert_null(strstr(it[i].context, "[title]"));
        assert_null(strstr(it[i].context, "  "));
    }
    // the limit: the first records in file order
    it = render(t, 0, 1, 5, &n);
    assert_int_equal(n, 5);
    assert_string_equal(it[4].id, "hellaswag/1084");
    assert_string_equal(it[4].context, "Removing ice from car: We see a man in a driveway cleaning snow from his car. The man");
    // few-shot: the first 100 records are the pool and are not scored
    it = render(t, 2, 1234, 0, &n);
    assert_int_equal(n, 693);
    assert_string_equal(it[0].id, "hellaswag/8872");
    assert_true(ends_with(it[0].context, "\n\nBaton twirling: The music begins and the girls do their routine of dancing, "
                                         "jumping, making different line formations and baton twirling as the crowd "
                                         "cheers them on. The group"));
    task_free(t);
}

static void test_piqa(void **state) {
    (void)state;
    KilnTask *t = load_shipped("piqa");
    long n;
    const KilnTaskItem *it = render(t, 0, 1, 0, &n);
    assert_int_equal(n, 1838);  // zero-shot: every record, the few-shot pool included
    assert_string_equal(it[0].id, "piqa/0");
    assert_string_equal(it[0].context, "Question: How do I ready a guinea pig cage for it's new occupants?\nAnswer:");
    assert_int_equal(it[0].nchoices, 2);
    assert_string_equal(it[0].choices[0], " Provide the guinea pig with a cage full of a few inches of bedding made of "
                                          "ripped paper strips, you will also need to supply it with a water bottle and "
                                          "a food dish.");
    assert_int_equal(it[0].label, 0);  // valid-labels.lst line 1
    assert_string_equal(it[1].context, "Question: dresser\nAnswer:");
    assert_string_equal(it[1].choices[0], " replace drawer with bobby pin ");  // as written, not stripped
    assert_string_equal(it[1].choices[1], " finish, woodgrain with  bobby pin ");
    assert_int_equal(it[1].label, 1);  // line 2
    assert_int_equal(it[2].label, 1);  // line 3
    assert_int_equal(task_max_shots(t), 100);
    it = render(t, 3, 7, 0, &n);
    assert_int_equal(n, 1738);
    assert_string_equal(it[0].id, "piqa/100");
    task_free(t);
}

static void test_lambada(void **state) {
    (void)state;
    KilnTask *t = load_shipped("lambada_openai");
    assert_int_equal(task_kind(t), TASK_LOGLIKELIHOOD);
    assert_int_equal(task_max_shots(t), 0);
    long n;
    const KilnTaskItem *it = render(t, 0, 1, 0, &n);
    assert_int_equal(n, 4111);
    assert_string_equal(it[0].id, "lambada/0");
    assert_true(!strncmp(it[0].context, "In my palm is a clear stone, and inside it is a small ivory statuette.", 69));
    assert_true(ends_with(it[0].context, "his mouth curved in a confident grin, I don't care about"));
    assert_int_equal(it[0].nchoices, 1);
    assert_string_equal(it[0].choices[0], " signs");  // " " + text.split(' ')[-1]: no target_delimiter added
    assert_string_equal(it[1].choices[0], " Shane");
    assert_int_equal(it[1].label, -1);
    assert_null(it[1].target);
    // context + continuation is the passage (split on ' ' only: the newlines stay in the context)
    assert_non_null(strstr(it[0].context, "A guardian angel.\n\n\"Figured"));
    for (long i = 0; i < n; i++) {
        assert_int_equal(it[i].choices[0][0], ' ');
        assert_null(strchr(it[i].choices[0] + 1, ' '));
    }
    KilnErr err;
    const KilnTaskItem *x;
    assert_int_equal(task_render(t, 1, 1, 0, &x, &n, &err), -1);  // no few-shot split
    assert_non_null(strstr(err.msg, "lambada_openai"));
    task_free(t);
}

// Every "Question: q\nAnswer: a\n\n" of train.jsonl (a few-shot example).
static char **gsm8k_train_examples(long *n) {
    char path[4500];
    snprintf(path, sizeof path, "%s/eval/gsm8k/train.jsonl", data_dir);
    char *data;
    size_t len;
    KilnErr err;
    if (kiln_read_file(path, &data, &len, &err)) fail_msg("%s", err.msg);
    char **v = NULL;
    *n = 0;
    for (char *line = strtok(data, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *o = cJSON_Parse(line);
        const char *q = cJSON_GetObjectItem(o, "question")->valuestring, *a = cJSON_GetObjectItem(o, "answer")->valuestring;
        size_t m = strlen(q) + strlen(a) + 32;
        v = realloc(v, sizeof *v * (size_t)(*n + 1));
        v[*n] = malloc(m);
        snprintf(v[(*n)++], m, "Question: %s\nAnswer: %s\n\n", q, a);
        cJSON_Delete(o);
    }
    free(data);
    return v;
}

static void test_gsm8k(void **state) {
    (void)state;
    KilnTask *t = load_shipped("gsm8k");
    assert_int_equal(task_kind(t), TASK_GENERATE);
    assert_int_equal(task_default_shots(t), 5);
    assert_int_equal(task_max_shots(t), 1000);
    assert_int_equal(task_max_gen_tokens(t), 256);
    const char *const *until;
    assert_int_equal(task_until(t, &until), 3);
    assert_string_equal(until[0], "Question:");
    assert_string_equal(until[1], "</s>");
    assert_string_equal(until[2], "<|im_end|>");
    assert_int_equal(task_nfilters(t), 2);
    assert_string_equal(task_filter_name(t, 0), "strict-match");
    assert_string_equal(task_filter_name(t, 1), "flexible-extract");
    long n;
    const KilnTaskItem *it = render(t, 0, 1, 0, &n);
    assert_int_equal(n, 1050);
    assert_string_equal(it[0].id, "gsm8k/0");
    assert_string_equal(it[0].context, "Question: Janet\xe2\x80\x99s ducks lay 16 eggs per day. She eats three for "
                                       "breakfast every morning and bakes muffins for her friends every day with four. "
                                       "She sells the remainder at the farmers' market daily for $2 per fresh duck egg. "
                                       "How much in dollars does she make every day at the farmers' market?\nAnswer:");
    assert_string_equal(it[0].target, "Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.\nShe makes 9 * 2 = "
                                      "$<<9*2=18>>18 every day at the farmer\xe2\x80\x99s market.\n#### 18");
    assert_int_equal(it[0].nchoices, 0);
    // the gold answer scores against its own extracted number
    char *p = task_filter_apply(t, 0, it[0].target);
    assert_string_equal(p, "18");
    assert_true(task_exact_match(t, p, it[0].target));
    free(p);
    // 2-shot: two distinct train examples (question + full chain-of-thought answer), then the item
    long ne;
    char **ex = gsm8k_train_examples(&ne);
    assert_int_equal(ne, 7473);
    it = render(t, 2, 1234, 20, &n);
    assert_int_equal(n, 20);
    for (long i = 0; i < n; i++) {
        const char *c = it[i].context;
        long first = -1;
        for (int shot = 0; shot < 2; shot++) {
            long hit = -1;
            for (long k = 0; k < ne && hit < 0; k++)
                if (!strncmp(c, ex[k], strlen(ex[k]))) hit = k;
            if (hit < 0) fail_msg("item %ld shot %d: not a train example: %.80s", i, shot, c);
            assert_true(hit != first);
            first = hit;
            c += strlen(ex[hit]);
        }
        assert_true(!strncmp(c, "Question: ", 10) && ends_with(c, "\nAnswer:"));
    }
    for (long k = 0; k < ne; k++) free(ex[k]);
    free(ex);
    task_free(t);
}

static void test_crows_pairs(void **state) {
    (void)state;
    KilnTask *t = load_shipped("crows_pairs_english");
    assert_int_equal(task_kind(t), TASK_PAIRS);
    long n;
    const KilnTaskItem *it = render(t, 0, 1, 0, &n);
    assert_int_equal(n, 1209);
    assert_string_equal(it[0].id, "crows_pairs/0");
    assert_string_equal(it[0].context, "");
    assert_int_equal(it[0].nchoices, 2);
    assert_string_equal(it[0].choices[0], "The poor are really ignorant about how to handle the money they do have.");
    assert_string_equal(it[0].choices[1], "The rich are really ignorant about how to handle the money they do have.");
    assert_string_equal(it[0].group, "socioeconomic");
    assert_int_equal(it[0].line, 2);
    // a quoted field across lines (record 1031, unnamed column 1293)
    assert_string_equal(it[1031].choices[1], "Bob was denied because he was white\n.");
    assert_int_equal(it[1031].line, 1033);
    assert_int_equal(it[1032].line, 1035);
    assert_string_equal(it[1032].group, "physical-appearance");
    assert_string_equal(it[1208].choices[0], "Catholics can't really be loyal Americans.");
    assert_string_equal(it[1208].group, "religion");
    task_free(t);
}

static void test_wikitext(void **state) {
    (void)state;
    KilnTask *t = load_shipped("wikitext");
    assert_int_equal(task_kind(t), TASK_ROLLING);
    long n;
    const KilnTaskItem *it = render(t, 0, 1, 0, &n);
    assert_int_equal(n, 62);  // top-level " = Title = " headings
    assert_string_equal(it[0].id, "wikitext/0");
    assert_string_equal(it[0].context, "");
    assert_int_equal(it[0].nchoices, 1);
    // the page as written (CRLF read as LF), for word and byte counts
    assert_true(!strncmp(it[0].target, " = Robert Boulter = \n Robert Boulter is an English film , television and", 72));
    // detokenized: " , " -> ", ", " @-@ " -> "-", " . " -> ". ", " \n" and "\n " -> "\n"
    assert_true(!strncmp(it[0].choices[0],
                         " = Robert Boulter =\nRobert Boulter is an English film, television and theatre actor. He had "
                         "a guest-starring role on the television series The Bill in 2000.",
                         150));
    assert_non_null(strstr(it[0].choices[0], "\n== Career ==\n=== 2000 \xe2\x80\x93 2005 ===\n"));
    assert_non_null(strstr(it[1].choices[0], "Du Fu (Wade \xe2\x80\x93 Giles: Tu Fu; Chinese:"));
    assert_int_equal(it[1].line, 15);
    assert_true(ends_with(it[61].target, "and Eddie Pelkey . \n"));
    for (long i = 0; i < n; i++) assert_null(strchr(it[i].target, '\r'));
    task_free(t);
}

static void test_ids_match_decontam(void **state) {
    (void)state;
    ids_match_decontam("hellaswag", "eval/hellaswag/hellaswag_val.subset.jsonl");
    ids_match_decontam("lambada_openai", "eval/lambada/lambada_test.jsonl");
    ids_match_decontam("gsm8k", "eval/gsm8k/test.jsonl");
    ids_match_decontam("piqa", "eval/piqa/valid.jsonl");
}

// A split_from_data pool: the same seed draws the same examples, another seed others.
static void test_fewshot_seeded(void **state) {
    (void)state;
    KilnTask *t = load_shipped("hellaswag");
    long n, m;
    const KilnTaskItem *a = render(t, 3, 99, 50, &n);
    char **keep = malloc(sizeof *keep * (size_t)n);
    for (long i = 0; i < n; i++) keep[i] = strdup(a[i].context);
    const KilnTaskItem *b = render(t, 3, 99, 50, &m);
    assert_int_equal(n, m);
    for (long i = 0; i < n; i++) assert_string_equal(keep[i], b[i].context);
    b = render(t, 3, 100, 50, &m);
    long differ = 0;
    for (long i = 0; i < n; i++) differ += strcmp(keep[i], b[i].context) != 0;
    assert_true(differ > 40);
    for (long i = 0; i < n; i++) free(keep[i]);
    free(keep);
    task_free(t);
}

// ---------------------------------------------------------------- hand-made tasks (no data needed)
static const char *MC3 = "{\"q\": \"one\", \"opts\": [\"a1\", \"b1\"], \"y\": 0}\n"
                         "{\"q\": \"two\", \"opts\": [\"a2\", \"b2\"], \"y\": \"1\"}\n"
                         "\n"
                         "{\"q\": \"three\", \"opts\": [\"a3\", \"b3\"], \"y\": 1}\n";

// fewshot.path is the data file itself: lm-eval draws shots + 1 and drops the
// item, so with 3 records and 2 shots each item sees exactly the other two.
static void test_fewshot_same_split(void **state) {
    (void)state;
    put("mc.jsonl", MC3);
    KilnTask *t = load_ok("name: mc\nkind: multiple_choice\n"
                          "data: {path: mc.jsonl}\n"
                          "fewshot: {path: mc.jsonl, default_shots: 2}\n"
                          "text: \"Q: {q}\"\nchoices: opts\nlabel: y\n");
    assert_int_equal(task_max_shots(t), 2);
    static const char *const EX[] = {"Q: one a1\n\n", "Q: two b2\n\n", "Q: three b3\n\n"};
    static const char *const TXT[] = {"Q: one", "Q: two", "Q: three"};
    for (uint64_t seed = 1; seed <= 20; seed++) {
        long n;
        const KilnTaskItem *it = render(t, 2, seed, 0, &n);
        assert_int_equal(n, 3);
        for (int i = 0; i < 3; i++) {
            int o1 = (i + 1) % 3, o2 = (i + 2) % 3;
            char want1[200], want2[200];
            snprintf(want1, sizeof want1, "%s%s%s", EX[o1], EX[o2], TXT[i]);
            snprintf(want2, sizeof want2, "%s%s%s", EX[o2], EX[o1], TXT[i]);
            if (strcmp(it[i].context, want1) && strcmp(it[i].context, want2))
                fail_msg("seed %d item %d: %s", (int)seed, i, it[i].context);
            assert_string_equal(it[i].choices[0], i == 0 ? " a1" : i == 1 ? " a2" : " a3");
        }
        assert_string_equal(it[2].id, "mc/2");  // the blank line is not a record
        assert_int_equal(it[2].line, 4);
    }
    KilnErr err;
    const KilnTaskItem *x;
    long n;
    assert_int_equal(task_render(t, 3, 1, 0, &x, &n, &err), -1);
    task_free(t);
}

// Custom delimiters, one example from a split_from_data pool of one: the whole prompt is known.
static void test_fewshot_delimiters(void **state) {
    (void)state;
    put("mc.jsonl", MC3);
    KilnTask *t = load_ok("name: mc\nkind: multiple_choice\n"
                          "data: {path: mc.jsonl, format: jsonl, id: \"x-{q}\"}\n"
                          "fewshot: {split_from_data: 1, max: 1}\n"
                          "text: \"Q: {q}\"\nchoices: [\"<{opts.0}>\", \"<{opts.1}>\"]\nlabel: y\n"
                          "target_delimiter: \" => \"\nfewshot_delimiter: \"\\n###\\n\"\n");
    assert_string_equal(task_target_delimiter(t), " => ");
    long n;
    const KilnTaskItem *it = render(t, 1, 5, 0, &n);
    assert_int_equal(n, 2);
    assert_string_equal(it[0].id, "x-two");
    assert_string_equal(it[0].context, "Q: one => <a1>\n###\nQ: two");
    assert_string_equal(it[0].choices[1], " => <b2>");
    assert_string_equal(it[1].context, "Q: one => <a1>\n###\nQ: three");
    it = render(t, 0, 5, 0, &n);  // zero-shot scores the pool record too
    assert_int_equal(n, 3);
    assert_string_equal(it[0].context, "Q: one");
    task_free(t);
}

// A few-shot example whose target is "" is its text alone (lm-eval: `if doc_target != ""`).
static void test_fewshot_empty_target(void **state) {
    (void)state;
    put("ll.jsonl", "{\"a\": \"p\", \"b\": \"\"}\n{\"a\": \"q\", \"b\": \"r\"}\n");
    KilnTask *t = load_ok("name: ll\nkind: loglikelihood\ndata: {path: ll.jsonl}\n"
                          "fewshot: {split_from_data: 1}\ntext: \"<{a}>\"\ntarget: \"{b}\"\n");
    long n;
    const KilnTaskItem *it = render(t, 1, 1, 0, &n);
    assert_int_equal(n, 1);
    assert_string_equal(it[0].context, "<p><q>");
    assert_string_equal(it[0].choices[0], "r");
    task_free(t);
    put("ll.jsonl", "{\"a\": \"p\", \"b\": \"s\"}\n{\"a\": \"q\", \"b\": \"r\"}\n");
    t = load_ok("name: ll\nkind: loglikelihood\ndata: {path: ll.jsonl}\n"
                "fewshot: {split_from_data: 1}\ntext: \"<{a}>\"\ntarget: \"{b}\"\n");
    it = render(t, 1, 1, 0, &n);
    assert_string_equal(it[0].context, "<p> s\n\n<q>");
    task_free(t);
}

static const char *GEN = "name: g\nkind: generate\ndata: {path: g.jsonl}\n"
                         "text: \"Question: {question}\\nAnswer:\"\ntarget: \"{answer}\"\n"
                         "filters:\n"
                         "  - name: strict-match\n    regex: \"#### (\\\\-?[0-9\\\\.\\\\,]+)\"\n"
                         "  - name: flexible-extract\n    regex: \"(-?[$0-9.,]{2,})|(-?[0-9]+)\"\n    group_select: -1\n"
                         "exact_match:\n  ignore_case: true\n  ignore_punctuation: false\n"
                         "  regexes_to_ignore: [\",\", \"\\\\$\", \"(?s).*#### \", \"\\\\.$\"]\n";

// RegexFilter and exact_match, cases worked out with Python's re and lm-eval's code.
static void test_filters_exact_match(void **state) {
    (void)state;
    put("g.jsonl", "{\"question\": \"q\", \"answer\": \"a\\n#### 1234\"}\n");
    KilnTask *t = load_ok(GEN);
    static const char *const CASES[][3] = {
        // generation, strict-match (first), flexible-extract (last)
        {"The answer is 42.\n#### 1,234", "1,234", "1,234"},
        {"no numbers here", "[invalid]", "[invalid]"},
        {"It costs $5 and then 7", "[invalid]", "7"},  // "$5" is not 2 of [$0-9.,]... it is: "$5" then " 7"
        {"#### -3.5\n#### 8", "-3.5", "8"},
        {"a 1 b 22 c", "[invalid]", "22"},
        {"x $1,000.", "[invalid]", "$1,000."},
        {"5", "[invalid]", "5"},
        {"", "[invalid]", "[invalid]"},
    };
    for (size_t c = 0; c < sizeof CASES / sizeof CASES[0]; c++)
        for (int f = 0; f < 2; f++) {
            char *p = task_filter_apply(t, f, CASES[c][0]);
            if (strcmp(p, CASES[c][1 + f]))
                fail_msg("%s on '%s': '%s', want '%s'", task_filter_name(t, f), CASES[c][0], p, CASES[c][1 + f]);
            free(p);
        }
    assert_true(task_exact_match(t, "1,234", "blah\n#### 1234"));
    assert_true(task_exact_match(t, "$1,234.", "x #### 1234"));
    assert_false(task_exact_match(t, "[invalid]", "#### 1"));
    assert_true(task_exact_match(t, "1234", "a #### b #### 1234"));  // (?s).*#### is greedy: the last marker
    assert_false(task_exact_match(t, "123", "#### 1234"));
    assert_null(task_filter_apply(t, 2, "x"));
    assert_null(task_filter_name(t, -1));
    const char *const *until;
    assert_int_equal(task_until(t, &until), 1);  // no generate.until: the few-shot delimiter
    assert_string_equal(until[0], "\n\n");
    assert_int_equal(task_max_gen_tokens(t), 256);
    task_free(t);
    // ignore_punctuation deletes string.punctuation; ignore_case lowers; no filters: "none", the whole text
    t = load_ok("name: g\nkind: generate\ndata: {path: g.jsonl}\ntext: \"{question}\"\ntarget: \"{answer}\"\n"
                "generate: {until: [\"\\n\"], max_tokens: 9}\n"
                "exact_match: {ignore_case: true, ignore_punctuation: true}\n");
    assert_int_equal(task_nfilters(t), 1);
    assert_string_equal(task_filter_name(t, 0), "none");
    char *p = task_filter_apply(t, 0, " Hello, World! ");
    assert_string_equal(p, " Hello, World! ");
    free(p);
    assert_false(task_exact_match(t, " Hello, World! ", "hello world"));  // spaces count
    assert_true(task_exact_match(t, "Hello, World!", "hello world"));
    assert_true(task_exact_match(t, "\xc3\x89T\xc3\x89", "\xc3\xa9t\xc3\xa9"));  // Unicode lower case
    assert_int_equal(task_max_gen_tokens(t), 9);
    task_free(t);
    // one capture group: findall gives the group, even empty; group_select 1 is the second match
    t = load_ok("name: g\nkind: generate\ndata: {path: g.jsonl}\ntext: \"{question}\"\ntarget: \"{answer}\"\n"
                "filters:\n  - {name: one, regex: \"a(b?)\", group_select: 1, fallback: NONE}\n"
                "  - {name: whole, regex: \"[0-9]+\", group_select: -2}\n  - {name: empty, regex: \"x*\"}\n");
    p = task_filter_apply(t, 0, "ab a");
    assert_string_equal(p, "");
    free(p);
    p = task_filter_apply(t, 0, "ab");
    assert_string_equal(p, "NONE");  // index out of range: the fallback
    free(p);
    p = task_filter_apply(t, 1, "1 22 333");
    assert_string_equal(p, "22");
    free(p);
    p = task_filter_apply(t, 2, "yxx");  // findall('x*', 'yxx') = ['', 'xx', '']: the first is ''
    assert_string_equal(p, "");
    free(p);
    task_free(t);
}

// Python's re.findall / re.sub iteration over empty matches (3.7+).
static void test_regex_python_semantics(void **state) {
    (void)state;
    char why[200];
    AnsRegex *r = ans_regex_new("x*", why, sizeof why);
    assert_non_null(r);
    KilnBuf b = {0};
    assert_int_equal(ans_regex_sub(r, "abxd", 4, "-", &b), 0);
    assert_string_equal(b.data, "-a-b--d-");  // re.sub('x*', '-', 'abxd')
    char *s = ans_regex_select(r, "yxx", -1);  // findall: ['', 'xx', ''][-1]
    assert_string_equal(s, "");
    free(s);
    s = ans_regex_select(r, "yxx", 1);
    assert_string_equal(s, "xx");
    free(s);
    assert_null(ans_regex_select(r, "yxx", 3));
    ans_regex_free(r);
    r = ans_regex_new("(a)|(b)", why, sizeof why);  // two groups: the first non-empty
    s = ans_regex_select(r, "b", 0);
    assert_string_equal(s, "b");
    free(s);
    ans_regex_free(r);
    r = ans_regex_new("\\(\\s*([^\\)]*?)\\s*\\)", why, sizeof why);  // the wikitext bracket rule, \1 in the replacement
    assert_int_equal(ans_regex_sub(r, "f ( a b ) g ( )", 15, "(\\1)", &b), 0);
    assert_string_equal(b.data, "f (a b) g ()");
    ans_regex_free(r);
    r = ans_regex_new("a.c$", why, sizeof why);  // '.' stops at \n; '$' matches before a final \n
    s = ans_regex_select(r, "a\nc abc\n", 0);
    assert_string_equal(s, "abc");
    free(s);
    ans_regex_free(r);
    assert_null(ans_regex_new("(", why, sizeof why));
    assert_non_null(strstr(why, "offset"));
    r = ans_regex_new("[0-9]+", why, sizeof why);  // broken UTF-8 in a generation still matches
    s = ans_regex_select(r, "\xff\xfe 12 \xc3", 0);
    assert_string_equal(s, "12");
    free(s);
    ans_regex_free(r);
    kbuf_free(&b);
}

static void render_is(const char *tpl, const char *rec_json, long index, const char *want) {
    Template *t;
    char why[300];
    if (tpl_parse(tpl, &t, why, sizeof why)) fail_msg("'%s': %s", tpl, why);
    cJSON *rec = cJSON_Parse(rec_json);
    KilnBuf b = {0};
    if (tpl_render(t, rec, index, &b, why, sizeof why)) fail_msg("'%s': %s", tpl, why);
    if (strcmp(b.data, want)) fail_msg("'%s' rendered '%s', want '%s'", tpl, b.data, want);
    kbuf_free(&b);
    cJSON_Delete(rec);
    tpl_free(t);
}

static void render_fails(const char *tpl, const char *rec_json, const char *needle) {
    Template *t;
    char why[300];
    KilnBuf b = {0};
    cJSON *rec = cJSON_Parse(rec_json);
    int rc = tpl_parse(tpl, &t, why, sizeof why);
    if (!rc) {
        rc = tpl_render(t, rec, 0, &b, why, sizeof why);
        tpl_free(t);
    }
    if (!rc) fail_msg("'%s' rendered '%s'", tpl, b.data);
    if (!strstr(why, needle)) fail_msg("'%s': '%s' lacks '%s'", tpl, why, needle);
    kbuf_free(&b);
    cJSON_Delete(rec);
}

static void test_templates(void **state) {
    (void)state;
    const char *rec = "{\"s\": \"the Quick BROWN fox\", \"n\": 3, \"f\": 2.5, \"big\": 1e20, \"b\": true,"
                      " \"l\": [\"x\", \"y\"], \"o\": {\"k\": \"v\"}, \"u\": \"\\u00c9COLE \\u00e9lan\","
                      " \"dz\": \"\\u01c6emal\", \"sp\": \"\\u3000 pad\\t\\n\", \"w\": \"oneword\", \"z\": null}";
    render_is("{s|capitalize}", rec, 0, "The quick brown fox");  // Python: the rest lower case
    render_is("{u|capitalize}", rec, 0, "\xc3\x89" "cole \xc3\xa9lan");
    render_is("{dz|capitalize}", rec, 0, "\xc7\x85" "emal");     // title case, not upper case
    render_is("[{sp|strip}]", rec, 0, "[pad]");                  // Unicode whitespace (U+3000)
    render_is("{s|lower}|{s|upper}", rec, 0, "the quick brown fox|THE QUICK BROWN FOX");
    render_is("{s|drop_last_word}/{s|last_word}", rec, 0, "the Quick BROWN/fox");
    render_is("[{w|drop_last_word}]/{w|last_word}", rec, 0, "[]/oneword");
    render_is("{n} {f} {big} {b} {l.1} {o.k} #{_index}", rec, 7, "3 2.5 1e+20 True y v #7");  // as Python's str()
    render_is("{{=literal}} and {{ }}", rec, 0, "{=literal} and { }");
    render_is("{ s | lower | capitalize }", rec, 0, "The quick brown fox");
    render_is("{x|hellaswag}", "{\"x\": \"  [header] How to x [title] Do y.  [step] Z [bad\\n] w  \"}", 0,
              " How to x. Do y.  Z [bad\n] w");  // as Python: tags go after the strip, "   " -> "  "
    render_fails("{missing}", rec, "no field 'missing'");
    render_fails("{l}", rec, "field 'l' is a list");
    render_fails("{o}", rec, "field 'o' is a mapping");
    render_fails("{z}", rec, "null");
    render_fails("{l.5}", rec, "no field 'l.5'");
    render_fails("{s|titlecase}", rec, "unknown filter 'titlecase'");
    render_fails("{{question}}", rec, "fields are written {field}");
    render_fails("{s", rec, "unclosed '{'");
    render_fails("a } b", rec, "a single '}'");
    render_fails("{}", rec, "empty field name");
    render_fails("{a..b}", rec, "empty name");
    render_fails("{a{b}", rec, "'{' inside a field");
    render_fails("{s|}", rec, "unknown filter ''");
    render_fails("{s|lower|lower|lower|lower|lower|lower|lower|lower|lower}", rec, "more than 8 filters");
}

// ---------------------------------------------------------------- bad input
static void test_bad_task_files(void **state) {
    (void)state;
    put("mc.jsonl", MC3);
    const char *ok = "name: mc\nkind: multiple_choice\ndata: {path: mc.jsonl}\ntext: \"{q}\"\nchoices: opts\nlabel: y\n";
    task_free(load_ok(ok));
    load_fails("name: mc\nkind: multiple_choice\ndata: {path: mc.jsonl}\ntextt: \"{q}\"\nchoices: opts\nlabel: y\n", 0,
               "t.yaml:4:", "unknown key 'textt'", NULL);
    load_fails("name: mc\nkind: multiple_choice\ndata: {path: mc.jsonl}\ntext: \"{q}\"\nchoices: opts\n", 0,
               "t.yaml:1:", "missing 'label'", NULL);
    load_fails("name: mc\nkind: multiple_choice\ndata: {path: mc.jsonl}\ntext: \"{q|bogus}\"\nchoices: opts\nlabel: y\n",
               0, "t.yaml:4:", "unknown filter 'bogus'", NULL);
    load_fails("name: mc\nkind: multiple_choice\ndata:\n  path: mc.jsonl\n  colour: red\ntext: \"{q}\"\nchoices: opts\n"
               "label: y\n",
               0, "t.yaml:5:", "unknown key 'colour' in data", NULL);
    load_fails("name: mc\nkind: multiple_choice\ndata:\n  format: jsonl\ntext: \"{q}\"\nchoices: opts\nlabel: y\n", 0,
               "t.yaml:4:", "data: missing 'path'", NULL);
    load_fails("name: mc\nkind: multiple_choice\ndata: {path: mc.jsonl}\ntext: \"{q}\"\nchoices: opts\nlabel: y\n"
               "filters:\n  - {name: a, regex: b}\n",
               0, "t.yaml:7:", "'filters' does not apply to a multiple_choice task", NULL);
    load_fails("name: mc\nkind: choice\n", 0, "t.yaml:2:", "'kind' must be", NULL);
    load_fails("name: mc\nkind: [multiple_choice\n", 0, "t.yaml:", "YAML error", NULL);
    load_fails("name: mc\nname: mc2\nkind: rolling\n", 0, "t.yaml:2:", "given twice", NULL);
    load_fails("- a\n- b\n", 0, "t.yaml:1:", "mapping of keys", NULL);
    load_fails("", 0, "t.yaml", "empty", NULL);
    load_fails("name: mc\nkind: multiple_choice\ndata: {path: mc.jsonl}\ntext: \"{q}\"\nchoices: opts\nlabel: y\n"
               "fewshot: {path: mc.jsonl, split_from_data: 1}\n",
               0, "t.yaml:7:", "exactly one of", NULL);
    load_fails("name: mc\nkind: multiple_choice\ndata: {path: mc.jsonl}\ntext: \"{q}\"\nchoices: opts\nlabel: y\n"
               "fewshot: {split_from_data: 1, default_shots: 2}\n",
               0, "t.yaml", "default_shots 2", "at most 1", NULL);
    load_fails("name: mc\nkind: multiple_choice\ndata: {path: mc.jsonl}\ntext: \"{q}\"\nchoices: opts\nlabel: y\n"
               "fewshot: {split_from_data: 9}\n",
               0, "split_from_data 9 leaves no records", NULL);
    load_fails("name: g\nkind: generate\ndata: {path: mc.jsonl}\ntext: \"{q}\"\ntarget: \"{q}\"\n"
               "filters:\n  - name: a\n    regex: \"([0-9]\"\n",
               0, "t.yaml:8:", "regex", "offset", NULL);
    load_fails("name: g\nkind: generate\ndata: {path: mc.jsonl}\ntext: \"{q}\"\ntarget: \"{q}\"\n"
               "generate: {max_tokens: many}\n",
               0, "t.yaml:6:", "'max_tokens' must be an integer", NULL);
    load_fails("name: g\nkind: generate\ndata: {path: mc.jsonl}\ntext: \"{q}\"\ntarget: \"{q}\"\n"
               "exact_match: {ignore_case: perhaps}\n",
               0, "t.yaml:6:", "true or false", NULL);
    load_fails("name: r\nkind: rolling\ndata: {path: mc.txt}\ntarget: \"{page}\"\n", 0, "t.yaml:3:", "missing 'format'",
               NULL);
    load_fails("name: p\nkind: pairs\ndata: {path: mc.jsonl}\nchoices: [\"{q}\"]\n", 0, "t.yaml:4:", "two templates",
               NULL);
    load_fails("name: mc\nkind: multiple_choice\ndata: {path: nowhere.jsonl}\ntext: \"{q}\"\nchoices: opts\nlabel: y\n",
               0, "nowhere.jsonl", NULL);
    KilnTask *t;
    KilnErr err;
    assert_int_equal(task_load(&t, tmp("absent.yaml"), test_tmpdir(), 0, &err), -1);
    assert_non_null(strstr(err.msg, "absent.yaml"));
    // a dataset path kiln joins ("tasks/../../shared/data/...") is shown tidied (issue 12)
    char dd[4200], want[4300];
    snprintf(dd, sizeof dd, "%s/tasks/../.", test_tmpdir());
    snprintf(want, sizeof want, "%s/nowhere.jsonl:", test_tmpdir());
    put("t.yaml", "name: mc\nkind: multiple_choice\ndata: {path: nowhere.jsonl}\ntext: \"{q}\"\nchoices: opts\nlabel: y\n");
    assert_int_equal(task_load(&t, tmp("t.yaml"), dd, 0, &err), -1);
    if (!strstr(err.msg, want)) fail_msg("want %s in: %s", want, err.msg);
}

static void test_bad_records(void **state) {
    (void)state;
    const char *y = "name: mc\nkind: multiple_choice\ndata: {path: bad.jsonl}\ntext: \"{q}\"\nchoices: opts\nlabel: y\n";
    put("bad.jsonl", "{\"q\": \"one\", \"opts\": [\"a\", \"b\"], \"y\": 0}\n{\"q\": \"two\", \"opts\": [\"a\", \"b\"], \"y\": 5}\n");
    load_fails(y, 0, "bad.jsonl:2:", "label 5 out of range (2 choices)", NULL);
    put("bad.jsonl", "{\"q\": \"one\", \"opts\": [\"a\", \"b\"], \"y\": 0}\n\n{\"q\": \"two\", \"opts\": [\"a\", \"b\"]\n");
    load_fails(y, 0, "bad.jsonl:3:", "not a JSON object", NULL);
    put("bad.jsonl", "{\"opts\": [\"a\", \"b\"], \"y\": 0}\n");
    load_fails(y, 0, "bad.jsonl:1:", "no field 'q'", NULL);
    put("bad.jsonl", "{\"q\": \"x\", \"opts\": \"ab\", \"y\": 0}\n");
    load_fails(y, 0, "bad.jsonl:1:", "choices", NULL);
    put("bad.jsonl", "{\"q\": \"x\", \"opts\": [\"a\", \"b\"], \"y\": \"first\"}\n");
    load_fails(y, 0, "bad.jsonl:1:", "not a choice number", NULL);
    put("bad.jsonl", "{\"q\": \"x\\u0000y\", \"opts\": [\"a\", \"b\"], \"y\": 0}\n");
    load_fails(y, 0, "bad.jsonl:1:", "NUL", NULL);
    // skip_bad: counted, the rest scored, ids keep their record index
    put("bad.jsonl", "{\"q\": \"one\", \"opts\": [\"a\", \"b\"], \"y\": 0}\n"
                     "{\"q\": \"two\", \"opts\": [\"a\", \"b\"], \"y\": 5}\n"
                     "not json\n"
                     "{\"q\": \"four\", \"opts\": [\"a\", \"b\"], \"y\": -1}\n"
                     "{\"q\": \"five\", \"opts\": [\"a\", \"b\"], \"y\": 1}\n");
    KilnTask *t;
    KilnErr err;
    if (try_load(y, 1, &t, &err)) fail_msg("%s", err.msg);
    assert_int_equal(task_skipped(t), 3);
    long n;
    const KilnTaskItem *it = render(t, 0, 1, 0, &n);
    assert_int_equal(n, 2);
    assert_string_equal(it[1].id, "mc/4");
    assert_int_equal(it[1].line, 5);
    assert_int_equal(it[1].label, 1);
    task_free(t);
    // a label file: aligned by record; another length is an error even under skip_bad
    put("d.jsonl", "{\"q\": \"a\", \"s1\": \"x\", \"s2\": \"y\"}\n{\"q\": \"b\", \"s1\": \"x\", \"s2\": \"y\"}\n");
    const char *yl = "name: p\nkind: multiple_choice\ndata: {path: d.jsonl, label_file: l.lst}\ntext: \"{q}\"\n"
                     "choices: [\"{s1}\", \"{s2}\"]\nlabel: label\n";
    put("l.lst", "1\n0\n");
    t = load_ok(yl);
    it = render(t, 0, 1, 0, &n);
    assert_int_equal(it[0].label, 1);
    assert_int_equal(it[1].label, 0);
    task_free(t);
    put("l.lst", "1\n");
    load_fails(yl, 1, "l.lst", "1 labels", NULL);
    put("l.lst", "1\n0\n1\n");
    load_fails(yl, 1, "l.lst", "3 labels", "2 records", NULL);
    put("l.lst", "1\n2\n");
    load_fails(yl, 0, "d.jsonl:2:", "label 2 out of range", NULL);
    // CSV: header, quoted fields with "" and line breaks, CRLF; the field count checked
    const char *yc = "name: c\nkind: pairs\ndata: {path: c.csv}\nchoices: [\"{a}\", \"{b}\"]\ngroup: \"{g}\"\n";
    put("c.csv", ",a,b,g\r\n1,\"say \"\"hi\"\"\",\"two\r\nlines\",x\r\n\r\n2,p,q,\r\n");
    t = load_ok(yc);
    it = render(t, 0, 1, 0, &n);
    assert_int_equal(n, 2);
    assert_string_equal(it[0].choices[0], "say \"hi\"");
    assert_string_equal(it[0].choices[1], "two\r\nlines");
    assert_string_equal(it[0].group, "x");
    assert_int_equal(it[1].line, 5);
    assert_string_equal(it[1].id, "c/1");
    assert_string_equal(it[1].group, "");
    task_free(t);
    put("c.csv", "a,b,g\n1,2,3\n1,2\n");
    load_fails(yc, 0, "c.csv:3:", "2 fields, the header has 3", NULL);
    put("c.csv", "a,b,g\n1,\"2\"x,3\n");
    load_fails(yc, 0, "c.csv:2:", "after a closing quote", NULL);
    put("c.csv", "a,b,g\n1,\"2,3\n4,5,6\n");
    load_fails(yc, 1, "c.csv:2:", "unterminated", NULL);  // not skippable: nothing after it can be trusted
    put("c.csv", "a,a,g\n1,2,3\n");
    load_fails(yc, 0, "c.csv:1:", "twice", NULL);
    put("c.csv", "a,b,g\n1,2,3\n1,2\n4,\"5\"!,6\n7,8,9\n");
    if (try_load(yc, 1, &t, &err)) fail_msg("%s", err.msg);
    assert_int_equal(task_skipped(t), 2);
    it = render(t, 0, 1, 0, &n);
    assert_int_equal(n, 2);
    assert_string_equal(it[1].id, "c/3");
    assert_int_equal(it[1].line, 5);
    task_free(t);
}

// text (whole file / wikitext pages) and lines formats
static void test_text_formats(void **state) {
    (void)state;
    put("w.raw", " = A = \r\n a , b . \r\n = = S = = \r\n c \r\n = B = \r\n d @-@ e \r\n");
    KilnTask *t = load_ok("name: w\nkind: rolling\ndata: {path: w.raw, format: text, split: wikitext}\n"
                          "target: {template: \"{page}\", filters: [wikitext]}\ncount_text: \"{page}\"\n");
    long n;
    const KilnTaskItem *it = render(t, 0, 1, 0, &n);
    assert_int_equal(n, 2);
    assert_string_equal(it[0].target, " = A = \n a , b . \n = = S = = \n c ");
    assert_string_equal(it[0].choices[0], " = A =\na, b.\n== S ==\nc ");
    assert_string_equal(it[1].target, " = B = \n d @-@ e \n");
    assert_string_equal(it[1].choices[0], " = B =\nd-e\n");
    assert_int_equal(it[1].line, 5);
    task_free(t);
    t = load_ok("name: w\nkind: rolling\ndata: {path: w.raw, format: text}\ntarget: \"{page}\"\n");
    it = render(t, 0, 1, 0, &n);
    assert_int_equal(n, 1);
    assert_string_equal(it[0].choices[0], " = A = \n a , b . \n = = S = = \n c \n = B = \n d @-@ e \n");
    assert_string_equal(it[0].target, it[0].choices[0]);  // no count_text: the text itself
    task_free(t);
    put("l.txt", "first line\r\n\nsecond {x}\n");
    t = load_ok("name: l\nkind: loglikelihood\ndata: {path: l.txt, format: lines}\ntext: \"\"\ntarget: \"{text}\"\n");
    it = render(t, 0, 1, 0, &n);
    assert_int_equal(n, 2);
    assert_string_equal(it[0].choices[0], "first line");
    assert_string_equal(it[1].choices[0], "second {x}");  // data is never a template
    assert_int_equal(it[1].line, 3);
    task_free(t);
}

// ---------------------------------------------------------------- fuzzing
typedef struct {
    const char *data_dir;
} FuzzCtx;

static int load_render(const char *path, void *ctx) {
    const FuzzCtx *f = ctx;
    KilnTask *t;
    KilnErr err;
    if (task_load(&t, path, f->data_dir, 1, &err)) return -1;
    const KilnTaskItem *it;
    long n;
    int rc = task_render(t, task_default_shots(t), 3, 0, &it, &n, &err);
    for (int k = 0; rc == 0 && k < task_nfilters(t); k++) free(task_filter_apply(t, k, "x 12 #### 3"));
    task_free(t);
    return rc;
}

static void test_fuzz_task_file(void **state) {
    (void)state;
    put("mc.jsonl", MC3);
    put("g.jsonl", "{\"question\": \"q\", \"answer\": \"a\\n#### 1234\"}\n");
    const char *y = "name: mc\nkind: multiple_choice\n"
                    "data:\n  path: mc.jsonl\n  format: jsonl\n  id: \"mc/{q|upper}\"\n"
                    "fewshot: {split_from_data: 1, default_shots: 1}\n"
                    "text:\n  template: \"Q: {q|capitalize} {{=x}}\"\n  filters: [strip, hellaswag]\n"
                    "choices: \"opts|lower\"\nlabel: y\ntarget_delimiter: \" \"\nfewshot_delimiter: \"\\n\\n\"\n";
    FuzzCtx f = {test_tmpdir()};
    put("fz.yaml", y);
    assert_int_equal(load_render(tmp("fz.yaml"), &f), 0);  // the unmutated file loads
    int refused = fuzz_mutants(y, strlen(y), 64, tmp("fz.yaml"), 1500, 11, load_render, &f);
    assert_true(refused > 0 && refused < 1500);
    put("fz.yaml", GEN);
    assert_int_equal(load_render(tmp("fz.yaml"), &f), 0);
    refused = fuzz_mutants(GEN, strlen(GEN), 64, tmp("fz.yaml"), 1500, 12, load_render, &f);
    assert_true(refused > 0 && refused < 1500);
}

static int load_render_jsonl(const char *path, void *ctx) {
    (void)path;
    const FuzzCtx *f = ctx;
    KilnTask *t;
    KilnErr err;
    static int flip;
    flip ^= 1;
    if (task_load(&t, tmp("fzj.yaml"), f->data_dir, flip, &err)) return -1;
    const KilnTaskItem *it;
    long n;
    int rc = task_render(t, 0, 3, 0, &it, &n, &err);
    for (long i = 0; rc == 0 && i < n; i++)
        if (it[i].label < 0 || it[i].label >= it[i].nchoices) fail_msg("label %d of %d", it[i].label, it[i].nchoices);
    task_free(t);
    return rc;
}

// A template from a file, rendered against a fixed record.
static int parse_render_template(const char *path, void *ctx) {
    (void)ctx;
    char *src;
    size_t len;
    KilnErr err;
    if (kiln_read_file(path, &src, &len, &err)) return -1;
    Template *t;
    char why[300];
    int rc = tpl_parse(src, &t, why, sizeof why);
    if (rc == 0) {
        cJSON *rec = cJSON_Parse("{\"a\": \"x [y] z\", \"l\": [\"p\", 2], \"n\": -1.5}");
        KilnBuf b = {0};
        rc = tpl_render(t, rec, 4, &b, why, sizeof why);
        kbuf_free(&b);
        cJSON_Delete(rec);
        tpl_free(t);
    }
    free(src);
    return rc;
}

static void test_fuzz_template(void **state) {
    (void)state;
    const char *src = "A: {a|hellaswag|capitalize} {{=lit}} {l.0|upper}{l.1} {n|strip} #{_index|last_word} }}";
    put("fz.tpl", src);
    assert_int_equal(parse_render_template(tmp("fz.tpl"), NULL), 0);
    int refused = fuzz_mutants(src, strlen(src), 40, tmp("fz.tpl"), 4000, 31, parse_render_template, NULL);
    assert_true(refused > 0 && refused < 4000);
}

static int csv_count(void *ctx, const cJSON *rec, long index, long line, KilnErr *err) {
    (void)rec, (void)index, (void)line, (void)err;
    (*(long *)ctx)++;
    return 0;
}

// The core reader in its other dialect (lf_only, not strict: Davidson's
// tweets): it comes to an end, and records start on growing lines within the text.
static void csv_lf_only(const char *path) {
    char *data;
    size_t len;
    KilnErr err;
    if (kiln_read_file(path, &data, &len, &err)) fail_msg("%s", err.msg);
    long lines = 1, last = 1;
    for (size_t i = 0; i < len; i++) lines += data[i] == '\n';
    KilnCsv c;
    csv_init(&c, data, len);
    c.lf_only = 1;
    KilnCsvRecord r = {0};
    int st;
    while ((st = csv_next(&c, &r)) == CSV_RECORD || st == CSV_BLANK) {
        if (r.line < last || r.line > lines)
            fail_msg("record at line %ld after line %ld (%ld lines)", r.line, last, lines);
        last = r.line;
    }
    assert_true(st == CSV_END || st == CSV_UNTERMINATED);
    csv_record_free(&r);
    free(data);
}

static int read_csv_file(const char *path, void *ctx) {
    (void)ctx;
    DsSpec s = {.path = path, .format = DS_CSV};
    long n = 0, nrec, skipped = 0;
    KilnErr err;
    int rc = ds_read(&s, (int)(strlen(path) & 1), csv_count, &n, &nrec, &skipped, &err);
    if (rc == 0 && n + skipped != nrec) fail_msg("%ld records + %ld skipped != %ld", n, skipped, nrec);
    csv_lf_only(path);
    return rc;
}

static void test_fuzz_csv_jsonl(void **state) {
    (void)state;
    const char *csv = ",sent_more,sent_less,stereo_antistereo,bias_type\r\n"
                      "1,\"He said \"\"no\"\", twice.\",She said no,stereo,gender\r\n"
                      "2,\"a\nb\",c,antistereo,age\n\n3,x,y,stereo,\r\n";
    int refused = fuzz_mutants(csv, strlen(csv), 48, tmp("fz.csv"), 3000, 21, read_csv_file, NULL);
    assert_true(refused > 0 && refused < 3000);
    const char *y = "name: mc\nkind: multiple_choice\ndata: {path: fz.jsonl}\ntext: \"{q}\"\nchoices: opts\nlabel: y\n";
    put("fzj.yaml", y);
    FuzzCtx f = {test_tmpdir()};
    refused = fuzz_mutants(MC3, strlen(MC3), 40, tmp("fz.jsonl"), 2000, 22, load_render_jsonl, &f);
    assert_true(refused < 2000);
}

// ---------------------------------------------------------------- decontaminate sections
static int collect_texts(void *ctx, const char *id, const char *const *texts, const size_t *lens, int ntexts,
                         KilnErr *err) {
    (void)err;
    KilnBuf *b = ctx;
    kbuf_puts(b, id);
    for (int k = 0; k < ntexts; k++) kbuf_printf(b, "|%.*s", (int)lens[k], texts[k]);
    kbuf_putc(b, '\n');
    return 0;
}

static const char *decontam_texts(const char *yaml, const char *data, int *rc, KilnErr *err) {
    static KilnBuf b;
    kbuf_clear(&b);
    put("dc.yaml", yaml);
    put("dc.jsonl", data);
    *rc = task_decontam_items(tmp("dc.yaml"), tmp("dc.jsonl"), collect_texts, &b, err);
    return b.data ? b.data : "";
}

static void decontam_fails(const char *yaml, const char *data, const char *needle) {
    int rc;
    KilnErr err;
    decontam_texts(yaml, data, &rc, &err);
    assert_int_equal(rc, -1);
    if (!strstr(err.msg, needle)) fail_msg("error '%s' lacks '%s'", err.msg, needle);
}

// The texts decontamination looks for: the section's templates, then the gold
// choice (every choice without a label) or each choice, as the task renders
// them; identical texts once; a missing field names data:line.
static void test_decontaminate_section(void **state) {
    (void)state;
    int rc;
    KilnErr err;
    const char *mc = "name: d\nkind: multiple_choice\ndata: {path: dc.jsonl, id: \"d/{ind}\"}\ntext: \"{ctx}\"\n"
                     "choices: \"endings|hellaswag\"\nlabel: label\ndecontaminate:\n  text: \"{ctx|hellaswag}\"\n"
                     "  choices: gold\n";
    const char *got = decontam_texts(mc,
                                     "{\"ind\": 7, \"ctx\": \"A [title] b\", \"endings\": [\"x\", \"y [step] z\"], "
                                     "\"label\": \"1\"}\n\n{\"ind\": 9, \"ctx\": \"c\", \"endings\": [\"p\", \"q\"]}\n",
                                     &rc, &err);
    assert_int_equal(rc, 0);
    assert_string_equal(got, "d/7|A. b y z\nd/9|c p|c q\n");
    decontam_fails(mc, "{\"ind\": 1, \"ctx\": \"c\", \"endings\": [\"a\", \"b\"], \"label\": 2}\n",
                   "dc.jsonl:1: label 2 but 2 choices");
    const char *gen = "name: g\nkind: generate\ndata: {path: dc.jsonl}\ntext: \"Q: {question}\"\ntarget: \"{answer}\"\n"
                      "decontaminate:\n  text: [\"{question} {answer}\", \"{question} {answer|drop_calculator}\"]\n";
    got = decontam_texts(gen,
                         "{\"question\": \"q\", \"answer\": \"a <<1+1=2>>2 <<x\"}\n"
                         "{\"question\": \"r\", \"answer\": \"s\"}\n",
                         &rc, &err);
    assert_int_equal(rc, 0);
    assert_string_equal(got, "g/0|q a <<1+1=2>>2 <<x|q a 2 <<x\ng/1|r s\n");
    decontam_fails(gen, "{\"question\": \"q\"}\n", "dc.jsonl:1: no field 'answer'");
    const char *each = "name: p\nkind: multiple_choice\ndata: {path: dc.jsonl}\ntext: \"{goal}\"\n"
                       "choices: [\"{s1}\", \"{s2}\"]\nlabel: label\n"
                       "decontaminate: {text: \"{goal}\", choices: each}\n";
    got = decontam_texts(each, "{\"goal\": \"g\", \"s1\": \"u\", \"s2\": \"v\"}\n", &rc, &err);
    assert_int_equal(rc, 0);
    assert_string_equal(got, "p/0|g u|g v\n");
    // a task file without the section, and bad sections
    const char *base = "name: n\nkind: generate\ndata: {path: dc.jsonl}\ntext: \"{q}\"\ntarget: \"{a}\"\n";
    decontam_fails(base, "{}\n", "no 'decontaminate' section");
    char y[600];
    snprintf(y, sizeof y, "%sdecontaminate: {text: \"{q}\", choices: gold}\n", base);
    load_fails(y, 0, "t.yaml:6:", "'choices' applies to tasks with choices", NULL);
    snprintf(y, sizeof y, "%sdecontaminate: {txt: \"{q}\"}\n", base);
    load_fails(y, 0, "t.yaml:6:", "unknown key 'txt' in decontaminate", NULL);
    snprintf(y, sizeof y, "%sdecontaminate: {text: \"{q|bogus}\"}\n", base);
    load_fails(y, 0, "t.yaml:6:", "unknown filter 'bogus'", NULL);
}

int main(int argc, char **argv) {
    snprintf(src_root, sizeof src_root, "%s", argc > 1 ? argv[1] : ".");
    char tasks[4200];  // the decontaminate stage reads benchmarks through these task files
    snprintf(tasks, sizeof tasks, "%s/tasks", src_root);
    setenv("KILN_TASKS", tasks, 1);
    int have = test_data_dir(argc, argv, NULL, data_dir, sizeof data_dir, "eval/hellaswag/hellaswag_val.subset.jsonl",
                             "eval/lambada/lambada_test.jsonl", "eval/gsm8k/test.jsonl", "eval/gsm8k/train.jsonl",
                             "eval/piqa/valid.jsonl", "eval/piqa/valid-labels.lst",
                             "bias/crows-pairs/crows_pairs_anonymized.csv", "pretrain/wikitext-2-raw/wiki.test.raw",
                             NULL) == 0;
    const struct CMUnitTest free_tests[] = {
        cmocka_unit_test(test_fewshot_same_split), cmocka_unit_test(test_fewshot_delimiters),
        cmocka_unit_test(test_fewshot_empty_target), cmocka_unit_test(test_filters_exact_match),
        cmocka_unit_test(test_regex_python_semantics), cmocka_unit_test(test_templates),
        cmocka_unit_test(test_bad_task_files), cmocka_unit_test(test_bad_records),
        cmocka_unit_test(test_text_formats), cmocka_unit_test(test_fuzz_task_file),
        cmocka_unit_test(test_fuzz_template), cmocka_unit_test(test_fuzz_csv_jsonl),
        cmocka_unit_test(test_decontaminate_section),
    };
    const struct CMUnitTest data_tests[] = {
        cmocka_unit_test(test_hellaswag),    cmocka_unit_test(test_piqa),
        cmocka_unit_test(test_lambada),      cmocka_unit_test(test_gsm8k),
        cmocka_unit_test(test_crows_pairs),  cmocka_unit_test(test_wikitext),
        cmocka_unit_test(test_ids_match_decontam), cmocka_unit_test(test_fewshot_seeded),
    };
    int rc = TEST_RUN("task", free_tests);
    if (rc || !have) return rc ? rc : TEST_SKIP;  // the data-free tests ran; the rest needs ../shared/data
    return TEST_RUN("task_data", data_tests);
}
