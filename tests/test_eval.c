// test_eval.c: the evaluation harness's arithmetic on hand-made cases with
// known answers (acc, acc_norm, mean and stderr as lm-evaluation-harness),
// the decontamination report reader, results JSON, and the byte codec.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "kiln/eval.h"
#include "testutil.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void test_mc_item(void **st) {
    (void)st;
    int a, an;
    // longer choice wins on total log-likelihood, the short one per character
    double ll[] = {-10.0, -11.0};
    long len[] = {2, 10};
    eval_mc_item(ll, len, 2, 0, &a, &an);
    assert_int_equal(a, 1);   // argmax ll = 0 = label
    assert_int_equal(an, 0);  // -5.0 vs -1.1: choice 1
    eval_mc_item(ll, len, 2, 1, &a, &an);
    assert_int_equal(a, 0);
    assert_int_equal(an, 1);
    // ties: the first index wins, as np.argmax
    double tie[] = {-3.0, -3.0, -4.0};
    long tl[] = {3, 3, 1};
    eval_mc_item(tie, tl, 3, 0, &a, &an);
    assert_int_equal(a, 1);
    assert_int_equal(an, 1);  // -1, -1, -4: the first of the tie
    eval_mc_item(tie, tl, 3, 1, &a, &an);
    assert_int_equal(a, 0);
    assert_int_equal(an, 0);
}

static void test_mean_stderr(void **st) {
    (void)st;
    double x[] = {1, 0, 1, 1}, m, se;
    eval_mean_stderr(x, 4, &m, &se);
    assert_true(fabs(m - 0.75) < 1e-15);
    // sample variance: ((0.25^2)*3 + 0.75^2)/3 = 0.25; stderr = sqrt(0.25)/sqrt(4) = 0.25
    assert_true(fabs(se - 0.25) < 1e-15);
    double one[] = {0.5};
    eval_mean_stderr(one, 1, &m, &se);
    assert_true(m == 0.5 && isnan(se));
    double y[] = {2, 4, 4, 4, 5, 5, 7, 9};  // mean 5, sample var 32/7
    eval_mean_stderr(y, 8, &m, &se);
    assert_true(fabs(m - 5.0) < 1e-15);
    assert_true(fabs(se - sqrt(32.0 / 7.0) / sqrt(8.0)) < 1e-15);
}

static void test_found_ids(void **st) {
    (void)st;
    // a pipeline report.json: found_ids under any "tasks" object, sorted on return
    const char *rep = "{\"steps\":[{\"stage\":\"clean\"},{\"stage\":\"decontaminate\",\"details\":{\"n\":13,"
                      "\"tasks\":{\"hellaswag\":{\"items\":793,\"found\":2,\"found_ids\":[\"hellaswag/9\",\"hellaswag/10\"]},"
                      "\"gsm8k\":{\"found_ids\":[\"gsm8k/3\"]}}}}]}";
    write_bytes(tmp("report.json"), rep, strlen(rep));
    char **ids;
    long n;
    KilnErr err;
    assert_int_equal(eval_load_found(tmp("report.json"), &ids, &n, &err), 0);
    assert_int_equal(n, 3);
    assert_string_equal(ids[0], "gsm8k/3");
    assert_string_equal(ids[1], "hellaswag/10");
    assert_string_equal(ids[2], "hellaswag/9");
    for (long i = 0; i < n; i++) free(ids[i]);
    free(ids);
    write_bytes(tmp("bad.json"), "{\"tasks\":", 9);
    assert_int_equal(eval_load_found(tmp("bad.json"), &ids, &n, &err), -1);
    assert_non_null(strstr(err.msg, "bad.json"));
}

static void test_results_json(void **st) {
    (void)st;
    KilnMetricResult r[2] = {{"hellaswag", "acc_norm", "", "all", 0.25, 0.01, 100, 0, 0.25},
                             {"gsm8k", "exact_match", "strict-match", "clean", 0.0, NAN, 10, 5, 0}};
    KilnEvalResults res = {r, 2, 2};
    KilnErr err;
    assert_int_equal(eval_write_json(&res, "runs/x/ckpt-00000010", tmp("results.json"), &err), 0);
    char *text;
    size_t len;
    assert_int_equal(kiln_read_file(tmp("results.json"), &text, &len, &err), 0);
    cJSON *j = cJSON_Parse(text);
    free(text);
    assert_non_null(j);
    cJSON *a = cJSON_GetObjectItem(j, "results");
    assert_int_equal(cJSON_GetArraySize(a), 2);
    // the chance level of a multiple-choice metric, none for exact match (issue 12)
    assert_true(cJSON_GetObjectItem(cJSON_GetArrayItem(a, 0), "chance")->valuedouble == 0.25);
    cJSON *g = cJSON_GetArrayItem(a, 1);
    assert_null(cJSON_GetObjectItem(g, "chance"));
    assert_string_equal(cJSON_GetObjectItem(g, "filter")->valuestring, "strict-match");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(g, "stderr")));
    assert_int_equal(cJSON_GetObjectItem(g, "shots")->valueint, 5);
    assert_string_equal(cJSON_GetObjectItem(g, "model")->valuestring, "runs/x/ckpt-00000010");
    assert_non_null(cJSON_GetObjectItem(g, "date"));
    cJSON_Delete(j);
}

// The table keeps its columns for a huge perplexity (issue 12: 207361921.8 in
// fixed notation pushed the row out of line) and lm-eval's 4 decimals otherwise.
static void test_table_columns(void **st) {
    (void)st;
    KilnMetricResult r[3] = {{"lambada_openai", "perplexity", "", "all", 207361921.8, 31415926.5, 100, 0, 0},
                             {"lambada_openai", "acc", "", "all", 0.25, 0.0435, 100, 0, 0},
                             {"wikitext", "word_perplexity", "", "all", 1.5e21, NAN, 10, 0, 0}};
    KilnEvalResults res = {r, 3, 3};
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    eval_print_table(&res, f);
    fclose(f);
    assert_non_null(strstr(text, "2.07362e+08"));
    assert_non_null(strstr(text, "3.14159e+07"));
    assert_non_null(strstr(text, " 0.2500 "));
    assert_non_null(strstr(text, " 0.0435 "));
    // every line as long as the header: the columns line up
    size_t header = strcspn(text, "\n");
    for (char *line = text; *line; line = strchr(line, '\n') + 1) assert_int_equal(strcspn(line, "\n"), header);
    free(text);
}

static void test_byte_codec(void **st) {
    (void)st;
    KilnCodec c = {NULL, 0, 256};
    KilnIds ids = {0};
    KilnErr err;
    const char *s = "h\xc3\xa9!";
    assert_int_equal(codec_encode(&c, s, strlen(s), &ids, &err), 0);
    assert_int_equal(ids.n, 4);
    assert_int_equal(ids.ids[1], 0xc3);
    char *back;
    size_t n;
    assert_int_equal(codec_decode(&c, ids.ids, ids.n, &back, &n, &err), 0);
    assert_string_equal(back, s);
    free(back);
    ids.ids[0] = 300;
    assert_int_equal(codec_decode(&c, ids.ids, ids.n, &back, &n, &err), -1);
    ids_free(&ids);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mc_item),     cmocka_unit_test(test_mean_stderr), cmocka_unit_test(test_found_ids),
        cmocka_unit_test(test_results_json), cmocka_unit_test(test_byte_codec), cmocka_unit_test(test_table_columns),
    };
    return TEST_RUN("eval", tests);
}
