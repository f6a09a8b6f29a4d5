// test_io: config parsing, the YAML tree and value parsers, safetensors, token
// shards and checkpoints: round trips, the errors bad input must give, and
// mutation fuzzing of every reader.
#include "kiln/checkpoint.h"
#include "kiln/config.h"
#include "kiln/manifest.h"
#include "core/parse.h"
#include "core/rundir.h"
#include "core/safetensors.h"
#include "core/shard.h"
#include "core/yaml.h"
#include "train/loader.h"
#include "testutil.h"

#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>



// ---- temp files (issue 12, item 9) ----
static void write_text(const char *path, const char *text) { write_bytes(path, text, strlen(text)); }

static void assert_file_is(const char *path, const char *text) {
    char *data;
    size_t len;
    KilnErr err;
    assert_int_equal(kiln_read_file(path, &data, &len, &err), 0);
    assert_int_equal(len, strlen(text));
    assert_memory_equal(data, text, len);
    free(data);
}

// A symlink planted at the old temp name OUT.tmp pointing at another file:
// the write must neither follow it (truncating the victim) nor delete it.
static void test_atomic_planted_link(void **state) {
    (void)state;
    KilnErr err;
    char out[4096], link[4200], victim[4096];
    snprintf(out, sizeof out, "%s", tmp("planted.json"));
    snprintf(link, sizeof link, "%s.tmp", out);
    snprintf(victim, sizeof victim, "%s", tmp("victim.txt"));
    write_text(victim, "precious\n");
    unlink(link);
    assert_int_equal(symlink(victim, link), 0);
    assert_int_equal(kiln_write_file_atomic(out, "new", 3, "\n", &err), 0);
    assert_file_is(out, "new\n");
    assert_file_is(victim, "precious\n");
    struct stat sb;
    assert_int_equal(lstat(link, &sb), 0);  // left alone, still a link
    assert_true(S_ISLNK(sb.st_mode));
    // an abort removes its own temp file only
    KilnAtomicFile af;
    assert_int_equal(kiln_atomic_open(&af, out, &err), 0);
    kiln_atomic_write(&af, "x", 1, &err);
    kiln_atomic_abort(&af);
    assert_file_is(out, "new\n");
    assert_file_is(victim, "precious\n");
    assert_int_equal(lstat(link, &sb), 0);
    unlink(link);
    // the temp file has the mode a plain fopen gives (0666 less the umask)
    mode_t mask = umask(022);
    assert_int_equal(kiln_write_file_atomic(out, "m", 1, "", &err), 0);
    umask(mask);
    assert_int_equal(stat(out, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0644);
    // a device is still refused rather than replaced
    assert_int_equal(kiln_write_file_atomic("/dev/null", "x", 1, "", &err), -1);
}

// The temp name must not be the output name plus a suffix: a 255-byte name
// (the most a directory entry holds) is written like any other.
static void test_atomic_long_name(void **state) {
    (void)state;
    KilnErr err;
    char name[256], path[4400];
    memset(name, 'n', 255);
    name[255] = 0;
    snprintf(path, sizeof path, "%s/%s", test_tmpdir(), name);
    assert_int_equal(kiln_write_file_atomic(path, "long", 4, "\n", &err), 0);
    assert_file_is(path, "long\n");
    assert_int_equal(kiln_write_file_atomic(path, "again", 5, "\n", &err), 0);
    assert_file_is(path, "again\n");
    unlink(path);
}

// RUN/.ckpt-N.tmp and RUN/heartbeat.tmp planted as links to another
// directory and file: saving a checkpoint and a heartbeat touches neither.
static void test_checkpoint_planted_link(void **state) {
    (void)state;
    KilnConfig cfg;
    KilnErr err;
    kiln_config_defaults(&cfg);
    cfg.model.vocab_size = 50;
    cfg.model.block_size = 16;
    cfg.model.n_layer = 1;
    cfg.model.n_embd = 16;
    cfg.model.n_head = 4;
    snprintf(cfg.out_dir, sizeof cfg.out_dir, "%s/linkrun", test_tmpdir());
    assert_int_equal(kiln_config_finalize(&cfg, &err), 0);
    KilnModel m;
    assert_int_equal(gpt_create(&m, &cfg.model, 1, 16, &err), 0);
    gpt_init_weights(&m, 3);
    static KilnTrainState st;
    train_state_init(&st, &cfg);
    st.step = 7;
    char victim[4096], vfile[4200], link[4200], p[4200];
    snprintf(victim, sizeof victim, "%s/victim_ckpt", test_tmpdir());
    assert_int_equal(kiln_mkdirs(victim, &err), 0);
    assert_int_equal(kiln_mkdirs(cfg.out_dir, &err), 0);
    const char *names[] = {"model.safetensors", "optimizer.safetensors", "state.json"};
    for (int i = 0; i < 3; i++) {
        snprintf(vfile, sizeof vfile, "%s/%s", victim, names[i]);
        write_text(vfile, "precious\n");
    }
    snprintf(link, sizeof link, "%s/.ckpt-00000007.tmp", cfg.out_dir);
    unlink(link);
    assert_int_equal(symlink(victim, link), 0);
    char path[1024];
    assert_int_equal(checkpoint_save(cfg.out_dir, &cfg, &m, &st, path, &err), 0);
    for (int i = 0; i < 3; i++) {
        snprintf(vfile, sizeof vfile, "%s/%s", victim, names[i]);
        assert_file_is(vfile, "precious\n");
        snprintf(p, sizeof p, "%s/%s", path, names[i]);
        struct stat sb;
        assert_int_equal(lstat(p, &sb), 0);
        assert_true(S_ISREG(sb.st_mode));
    }
    assert_int_equal(checkpoint_verify(path, &err), 0);
    // the same step again replaces it, still not through the link
    assert_int_equal(checkpoint_save(cfg.out_dir, &cfg, &m, &st, path, &err), 0);
    assert_int_equal(checkpoint_verify(path, &err), 0);
    snprintf(vfile, sizeof vfile, "%s/model.safetensors", victim);
    assert_file_is(vfile, "precious\n");
    // the heartbeat's temp file likewise
    snprintf(vfile, sizeof vfile, "%s/hb_victim.txt", test_tmpdir());
    write_text(vfile, "precious\n");
    snprintf(link, sizeof link, "%s/heartbeat.tmp", cfg.out_dir);
    unlink(link);
    assert_int_equal(symlink(vfile, link), 0);
    assert_int_equal(rundir_write_heartbeat(cfg.out_dir, 99, 7, 1.5), 0);
    assert_file_is(vfile, "precious\n");
    gpt_destroy(&m);
}

// ---- config ----
static void test_config_yaml(void **state) {
    KilnConfig c;
    KilnErr err;
    kiln_config_defaults(&c);
    const char *y = "model:\n  n_layer: 6\n  pos: rope\n  bias: false\ntrain:\n  lr: 3e-4\n  seed: 7\nout_dir: x/y\n";
    assert_int_equal(kiln_config_load_yaml_string(&c, y, strlen(y), "t.yaml", &err), 0);
    assert_int_equal(c.model.n_layer, 6);
    assert_int_equal(c.model.pos, KILN_POS_ROPE);
    assert_int_equal(c.model.bias, 0);
    assert_float_equal(c.train.lr, 3e-4f, 1e-9);
    assert_int_equal(c.train.seed, 7);
    assert_string_equal(c.out_dir, "x/y");
    // --set overrides; the written YAML reads back to the same config
    assert_int_equal(kiln_config_set(&c, "model.n_kv_head", "2", "--set", &err), 0);
    assert_int_equal(kiln_config_finalize(&c, &err), 0);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    kiln_config_write_yaml(&c, f);
    fclose(f);
    KilnConfig d;
    kiln_config_defaults(&d);
    assert_int_equal(kiln_config_load_yaml_string(&d, buf, len, "round", &err), 0);
    assert_int_equal(kiln_config_finalize(&d, &err), 0);
    assert_memory_equal(&c, &d, sizeof c);
    free(buf);
}

static void expect_yaml_error(const char *yaml, const char *want1, const char *want2) {
    KilnConfig c;
    KilnErr err = {{0}};
    kiln_config_defaults(&c);
    assert_int_equal(kiln_config_load_yaml_string(&c, yaml, strlen(yaml), "conf.yaml", &err), -1);
    if (!strstr(err.msg, want1) || (want2 && !strstr(err.msg, want2)))
        fail_msg("error '%s' lacks '%s' / '%s'", err.msg, want1, want2 ? want2 : "");
}

static void test_config_errors(void **state) {
    expect_yaml_error("model:\n  n_layers: 4\n", "conf.yaml:2", "model.n_layers");
    expect_yaml_error("model:\n  n_layer: four\n", "conf.yaml:2", "model.n_layer");
    expect_yaml_error("train:\n  lr: fast\n", "train.lr", "number");
    expect_yaml_error("model:\n  act: tanh\n", "model.act", "swiglu");
    expect_yaml_error("model:\n  bias: maybe\n", "model.bias", "true or false");
    expect_yaml_error("model: [1, 2]\n", "conf.yaml:1", "lists");
    expect_yaml_error("model: {n_layer: 4\n", "conf.yaml", "YAML");
    expect_yaml_error("train:\n  seed: -1\n", "train.seed", NULL);
    KilnConfig c;
    KilnErr err;
    kiln_config_defaults(&c);
    c.model.n_embd = 100;
    c.model.n_head = 3;
    assert_int_equal(kiln_config_finalize(&c, &err), -1);
    assert_non_null(strstr(err.msg, "n_embd"));
    assert_int_equal(kiln_config_load_yaml(&c, tmp("missing.yaml"), &err), -1);
    assert_non_null(strstr(err.msg, "missing.yaml"));
}

// ---- manifest.json ----
// A document's start and token count are whole numbers that fit a long
// (fuzz_manifest: 1e22 was converted to long, undefined behaviour, in manifest_find).
static void test_manifest_numbers(void **state) {
    const char *good = "{\"shards\":[{\"path\":\"train_000000.bin\",\"docs\":[[\"s\",\"a\",0,5],[\"s\",\"b\",5,3]]}]}";
    write_bytes(tmp("manifest.json"), good, strlen(good));
    KilnErr err;
    KilnManifest *m;
    assert_int_equal(manifest_load(&m, tmp("manifest.json"), &err), 0);
    const char *source, *id;
    long start, n;
    assert_int_equal(manifest_find(m, "dir/train_000000.bin", 6, &source, &id, &start, &n, &err), 0);
    assert_string_equal(id, "b");
    assert_int_equal(start, 5);
    assert_int_equal(n, 3);
    assert_int_equal(manifest_find(m, "train_000000.bin", 8, &source, &id, &start, &n, &err), -1);
    manifest_free(m);
    const char *bad[] = {"1e22", "-1", "2.5", "\"7\"", "9007199254740994"};
    for (int i = 0; i < 5; i++) {
        char text[256];
        snprintf(text, sizeof text, "{\"shards\":[{\"path\":\"t.bin\",\"docs\":[[\"s\",\"a\",%s,5]]}]}", bad[i]);
        write_bytes(tmp("manifest.json"), text, strlen(text));
        assert_int_equal(manifest_load(&m, tmp("manifest.json"), &err), -1);
        assert_non_null(strstr(err.msg, "whole numbers"));
        snprintf(text, sizeof text, "{\"shards\":[{\"path\":\"t.bin\",\"docs\":[[\"s\",\"a\",0,%s]]}]}", bad[i]);
        write_bytes(tmp("manifest.json"), text, strlen(text));
        assert_int_equal(manifest_load(&m, tmp("manifest.json"), &err), -1);
    }
}

// ---- safetensors ----
static void test_safetensors_roundtrip(void **state) {
    float a[6] = {1, 2, 3, 4, 5, 6}, b[3] = {-1, 0.5f, 1e-30f};
    KilnStTensor ts[] = {{"a.weight", a, 2, {2, 3}}, {"b", b, 1, {3}}};
    const char *k[] = {"format"}, *v[] = {"pt"};
    KilnErr err;
    assert_int_equal(st_write(tmp("t.safetensors"), ts, 2, k, v, 1, &err), 0);
    KilnStFile f;
    assert_int_equal(st_open(&f, tmp("t.safetensors"), &err), 0);
    float a2[6], b2[3];
    long sa[2] = {2, 3}, sb[1] = {3}, wrong[2] = {3, 2};
    assert_int_equal(st_read_f32(&f, "a.weight", a2, 2, sa, &err), 0);
    assert_int_equal(st_read_f32(&f, "b", b2, 1, sb, &err), 0);
    assert_memory_equal(a, a2, sizeof a);
    assert_memory_equal(b, b2, sizeof b);
    assert_string_equal(st_metadata(&f, "format"), "pt");
    assert_int_equal(st_read_f32(&f, "a.weight", a2, 2, wrong, &err), -1);
    assert_non_null(strstr(err.msg, "shape [2,3], expected [3,2]"));
    assert_int_equal(st_read_f32(&f, "c", a2, 2, sa, &err), -1);
    assert_non_null(strstr(err.msg, "'c' is missing"));
    // the header's __metadata__ entry is not a tensor (fuzz_safetensors: a NULL dtype was read)
    assert_int_equal(st_read_f32(&f, "__metadata__", a2, 2, sa, &err), -1);
    assert_non_null(strstr(err.msg, "'__metadata__' is missing"));
    // the header length is a multiple of 8 and the header starts with '{'
    uint64_t hl;
    memcpy(&hl, f.buf, 8);
    assert_int_equal(hl % 8, 0);
    assert_int_equal(f.buf[8], '{');
    st_close(&f);
}

// Mutates a valid file many ways; every reader must answer, never crash.
static int call_reader(const char *path, void *ctx) { return ((int (*)(const char *))ctx)(path); }

static void fuzz_file(const char *path, int iters, int (*reader)(const char *path)) {
    char *orig;
    size_t len;
    KilnErr err;
    assert_int_equal(kiln_read_file(path, &orig, &len, &err), 0);
    int errors = fuzz_mutants(orig, len, 200, tmp("mutant"), iters, 99, call_reader, (void *)reader);
    print_message("fuzzed %s: %d mutants, %d rejected with an error\n", path, iters, errors);
    assert_true(errors > 0);
    free(orig);
}

static int read_st(const char *path) {
    KilnStFile f;
    KilnErr err;
    if (st_open(&f, path, &err)) return -1;
    float out[6];
    long sa[2] = {2, 3};
    int rc = st_read_f32(&f, "a.weight", out, 2, sa, &err);
    st_close(&f);
    return rc;
}

static void test_safetensors_fuzz(void **state) {
    test_safetensors_roundtrip(state);
    fuzz_file(tmp("t.safetensors"), 3000, read_st);
}

// ---- shards ----
static void test_shard_roundtrip(void **state) {
    uint32_t tok[1000];
    for (int i = 0; i < 1000; i++) tok[i] = (uint32_t)(i * 7919) % 50000;
    KilnErr err;
    KilnShard s;
    assert_int_equal(shard_write(tmp("s16.bin"), tok, 1000, 50257, &err), 0);
    assert_int_equal(shard_open(&s, tmp("s16.bin"), 50257, &err), 0);
    assert_int_equal(s.tok_bytes, 2);
    assert_int_equal(s.ntok, 1000);
    for (int i = 0; i < 1000; i++) assert_int_equal(shard_token(&s, i), tok[i]);
    shard_close(&s);
    tok[500] = 100000;  // needs the uint32 layout
    assert_int_equal(shard_write(tmp("s32.bin"), tok, 1000, 128256, &err), 0);
    assert_int_equal(shard_open(&s, tmp("s32.bin"), 128256, &err), 0);
    assert_int_equal(s.tok_bytes, 4);
    assert_int_equal(shard_token(&s, 500), 100000);
    shard_close(&s);
    // a token outside the vocabulary names the shard and its offset
    assert_int_equal(shard_open(&s, tmp("s32.bin"), 50257, &err), -1);
    assert_non_null(strstr(err.msg, "s32.bin"));
    assert_non_null(strstr(err.msg, "offset 500"));
    // truncated shard
    char *data;
    size_t len;
    assert_int_equal(kiln_read_file(tmp("s16.bin"), &data, &len, &err), 0);
    write_bytes(tmp("trunc.bin"), data, len - 10);
    assert_int_equal(shard_open(&s, tmp("trunc.bin"), 50257, &err), -1);
    assert_non_null(strstr(err.msg, "truncated"));
    write_bytes(tmp("tiny.bin"), data, 100);
    assert_int_equal(shard_open(&s, tmp("tiny.bin"), 50257, &err), -1);
    assert_non_null(strstr(err.msg, "truncated"));
    free(data);
    assert_int_equal(shard_open(&s, tmp("nope.bin"), 50257, &err), -1);
    assert_non_null(strstr(err.msg, "nope.bin"));
}

static int read_shard(const char *path) {
    KilnShard s;
    KilnErr err;
    if (shard_open(&s, path, 50257, &err)) return -1;
    long sum = 0;
    for (long i = 0; i < s.ntok; i++) sum += shard_token(&s, i);
    shard_close(&s);
    return sum < 0;
}

static void test_shard_fuzz(void **state) {
    uint32_t tok[300];
    for (int i = 0; i < 300; i++) tok[i] = (uint32_t)i * 13;
    KilnErr err;
    assert_int_equal(shard_write(tmp("f.bin"), tok, 300, 50257, &err), 0);
    fuzz_file(tmp("f.bin"), 2000, read_shard);
}

static void test_loader(void **state) {
    uint32_t tok[100];
    for (int i = 0; i < 100; i++) tok[i] = (uint32_t)i;
    KilnErr err;
    assert_int_equal(shard_write(tmp("ld_a.bin"), tok, 40, 256, &err), 0);
    assert_int_equal(shard_write(tmp("ld_b.bin"), tok + 40, 60, 256, &err), 0);
    KilnLoader l;
    char pattern[600];
    snprintf(pattern, sizeof pattern, "%s/ld_*.bin", test_tmpdir());
    // in order: samples of T+1 tokens start every T tokens; a has 4, b has 7
    assert_int_equal(loader_open(&l, pattern, 2, 8, 256, 0, 0, &err), 0);
    assert_int_equal(l.nshards, 2);
    int32_t x[16], y[16];
    loader_next(&l, x, y);
    assert_int_equal(x[0], 0);
    assert_int_equal(x[8], 8);
    assert_int_equal(y[15], 16);
    loader_next(&l, x, y);
    assert_int_equal(x[8], 24);
    loader_next(&l, x, y);  // a is used up: b's samples start at 40
    assert_int_equal(x[0], 40);
    for (int i = 0; i < 2; i++) loader_next(&l, x, y);
    loader_next(&l, x, y);  // b's last sample, then the next epoch starts with a
    assert_int_equal(x[0], 88);
    assert_int_equal(y[7], 96);
    assert_int_equal(x[8], 0);
    assert_int_equal(l.epoch, 1);
    // evaluation: every sample once, in order, no wrap
    loader_reset(&l);
    int rows = 0, r;
    while ((r = loader_next_eval(&l, x, y)) > 0) rows += r;
    assert_int_equal(rows, 4 + 7);
    loader_close(&l);

    // shuffled: each epoch serves every sample exactly once, in a new order;
    // the same seed gives the same order, and seek() lands on the same batches
    KilnLoader s1, s2;
    assert_int_equal(loader_open(&s1, pattern, 1, 8, 256, 1, 77, &err), 0);
    assert_int_equal(loader_open(&s2, pattern, 1, 8, 256, 1, 77, &err), 0);
    int first_epoch[11], second_epoch[11];
    for (int e = 0; e < 2; e++) {
        int seen[100] = {0};
        for (int i = 0; i < 11; i++) {
            loader_next(&s1, x, y);
            loader_next(&s2, x + 8, y + 8);
            assert_int_equal(x[0], x[8]);
            seen[x[0]]++;
            (e ? second_epoch : first_epoch)[i] = x[0];
        }
        for (int i = 0; i < 100; i++)
            assert_int_equal(seen[i], (i < 40 ? i % 8 == 0 && i < 32 : (i - 40) % 8 == 0 && i < 96) ? 1 : 0);
    }
    assert_memory_not_equal(first_epoch, second_epoch, sizeof first_epoch);
    // resume in the middle of epoch 1
    KilnLoader s3;
    assert_int_equal(loader_open(&s3, pattern, 1, 8, 256, 1, 77, &err), 0);
    loader_reset(&s1);
    for (int i = 0; i < 14; i++) loader_next(&s1, x, y);
    assert_int_equal(loader_seek(&s3, s1.epoch, s1.shard, s1.pos, &err), 0);
    for (int i = 0; i < 20; i++) {
        loader_next(&s1, x, y);
        loader_next(&s3, x + 8, y + 8);
        assert_memory_equal(x, x + 8, 8 * sizeof(int32_t));
    }
    assert_int_equal(loader_seek(&s3, 0, 5, 0, &err), -1);
    loader_close(&s1);
    loader_close(&s2);
    loader_close(&s3);
    snprintf(pattern, sizeof pattern, "%s/ld_a.bin", test_tmpdir());
    assert_int_equal(loader_open(&l, pattern, 2, 64, 256, 0, 0, &err), -1);  // shorter than a sequence
    assert_non_null(strstr(err.msg, "ld_a.bin"));
    snprintf(pattern, sizeof pattern, "%s/none_*.bin", test_tmpdir());
    assert_int_equal(loader_open(&l, pattern, 2, 8, 256, 0, 0, &err), -1);
    assert_non_null(strstr(err.msg, "no shard"));
}

// ---- checkpoints ----
static void test_checkpoint_roundtrip(void **state) {
    KilnConfig cfg;
    KilnErr err;
    kiln_config_defaults(&cfg);
    cfg.model.vocab_size = 50;
    cfg.model.block_size = 16;
    cfg.model.n_layer = 2;
    cfg.model.n_embd = 16;
    cfg.model.n_head = 4;
    cfg.model.n_kv_head = 2;
    cfg.model.pos = KILN_POS_ROPE;
    cfg.model.act = KILN_ACT_SWIGLU;
    cfg.model.tied = 0;
    snprintf(cfg.out_dir, sizeof cfg.out_dir, "%s/run", test_tmpdir());
    assert_int_equal(kiln_config_finalize(&cfg, &err), 0);
    KilnModel a, b;
    assert_int_equal(gpt_create(&a, &cfg.model, 2, 16, &err), 0);
    gpt_init_weights(&a, 5);
    for (long i = 0; i < a.layout.total; i++) {
        a.m[i] = (float)i * 1e-3f;
        a.v[i] = (float)i * 1e-4f;
    }
    static KilnTrainState st;  // large (the guard window): not on the stack
    train_state_init(&st, &cfg);
    st.step = 42, st.tokens_seen = 1234, st.loader_shard = 1, st.loader_pos = 77, st.loader_epoch = 3;
    st.val_loss = 2.5f, st.lr_mult = 0.25f, st.weight_decay = 0.05f, st.optimizer = KILN_OPT_LION, st.opt_step = 9;
    st.act = KILN_ACT_RELU;
    for (int i = 0; i < 5; i++) st.guard.loss[i] = 3.0f - 0.1f * (float)i, st.guard.norm[i] = 1.0f / (float)(i + 3);
    st.guard.n = 5, st.guard.head = 5, st.spikes = 2;
    assert_int_equal(train_state_add_skip(&st, 30, 1), 0);
    assert_int_equal(train_state_add_skip(&st, 12, 1), 0);
    assert_int_equal(train_state_add_skip(&st, 30, 1), 0);  // the same step again: two sets
    char path[1024];
    assert_int_equal(checkpoint_save(cfg.out_dir, &cfg, &a, &st, path, &err), 0);
    char latest[1024];
    assert_int_equal(checkpoint_latest(cfg.out_dir, latest, sizeof latest, &err), 0);
    assert_string_equal(latest, path);
    KilnConfig cfg2;
    static KilnTrainState st2;
    assert_int_equal(checkpoint_read_state(path, &cfg2, &st2, &err), 0);
    assert_int_equal(checkpoint_verify(path, &err), 0);
    // live settings, the guard window and the skip list come back exactly
    assert_true(st2.lr_mult == 0.25f && st2.weight_decay == 0.05f && st2.optimizer == KILN_OPT_LION);
    assert_int_equal(st2.opt_step, 9);
    assert_int_equal(st2.act, KILN_ACT_RELU);
    assert_int_equal(st2.guard.n, 5);
    assert_memory_equal(st2.guard.loss, st.guard.loss, sizeof(float) * 5);
    assert_memory_equal(st2.guard.norm, st.guard.norm, sizeof(float) * 5);
    assert_int_equal(st2.spikes, 2);
    assert_int_equal(st2.nskip, 2);
    assert_int_equal(st2.skip_step[0], 12);
    assert_int_equal(train_state_skips(&st2, 30), 2);
    assert_int_equal(train_state_skips(&st2, 31), 0);
    assert_memory_equal(&cfg2.model, &cfg.model, sizeof cfg.model);
    assert_int_equal(st2.step, 42);
    assert_int_equal(st2.tokens_seen, 1234);
    assert_int_equal(st2.loader_pos, 77);
    assert_int_equal(st2.loader_epoch, 3);
    assert_int_equal(gpt_create(&b, &cfg2.model, 2, 16, &err), 0);
    assert_int_equal(checkpoint_load(path, &b, 1, &err), 0);
    assert_memory_equal(a.params, b.params, sizeof(float) * a.layout.total);
    assert_memory_equal(a.m, b.m, sizeof(float) * a.layout.total);
    assert_memory_equal(a.v, b.v, sizeof(float) * a.layout.total);
    // a checkpoint for another shape is refused with the tensor named
    KilnModel c;
    KilnModelConfig other = cfg.model;
    other.n_embd = 32;
    assert_int_equal(gpt_create(&c, &other, 2, 16, &err), 0);
    assert_int_equal(checkpoint_load(path, &c, 1, &err), -1);
    assert_non_null(strstr(err.msg, "model.embed_tokens.weight"));
    gpt_destroy(&c);
    // truncated weights: a clear error naming the file
    char mp[1100], *data;
    size_t len;
    snprintf(mp, sizeof mp, "%s/model.safetensors", path);
    assert_int_equal(kiln_read_file(mp, &data, &len, &err), 0);
    write_bytes(mp, data, len / 2);
    assert_int_equal(checkpoint_load(path, &b, 0, &err), -1);
    assert_non_null(strstr(err.msg, "model.safetensors"));
    free(data);
    gpt_destroy(&a);
    gpt_destroy(&b);
}

static int read_state(const char *path) {
    // state.json is read from a directory: stage the mutant there
    char dir[600], p[700];
    snprintf(dir, sizeof dir, "%s/statefuzz", test_tmpdir());
    snprintf(p, sizeof p, "%s/state.json", dir);
    KilnErr err;
    kiln_mkdirs(dir, &err);
    rename(path, p);
    KilnConfig c;
    static KilnTrainState st;
    return checkpoint_read_state(dir, &c, &st, &err);
}

static void test_state_fuzz(void **state) {
    test_checkpoint_roundtrip(state);
    char p[600];
    snprintf(p, sizeof p, "%s/run/ckpt-00000042/state.json", test_tmpdir());
    fuzz_file(p, 2000, read_state);
}

static int read_yaml(const char *path) {
    KilnConfig c;
    KilnErr err;
    kiln_config_defaults(&c);
    if (kiln_config_load_yaml(&c, path, &err)) return -1;
    return kiln_config_finalize(&c, &err);
}

static void test_yaml_fuzz(void **state) {
    const char *y = "# a config\nmodel:\n  n_layer: 6\n  pos: rope\n  act: swiglu\ntrain:\n  lr: 3.0e-4\n  steps: 10\ndata:\n  train: \"a/*.bin\"\nout_dir: runs/x\n";
    write_bytes(tmp("c.yaml"), y, strlen(y));
    fuzz_file(tmp("c.yaml"), 3000, read_yaml);
}

// ---- the YAML tree and the value parsers every reader shares ----
static void yaml_fails(const char *text, unsigned flags, const char *want) {
    KilnYaml y;
    KilnErr err = {{0}};
    assert_int_equal(ky_parse(&y, text, strlen(text), "y.yaml", flags, &err), -1);
    if (!strstr(err.msg, want)) fail_msg("'%s' not in '%s'", want, err.msg);
    assert_int_equal(y.ndocs, 0);  // nothing left to free
}

static void test_yaml_tree(void **state) {
    (void)state;
    const char *t = "a: 1\nb:\n  - x\n  - 'q'\nc: {d: \"e\", f: &k [1, 2]}\ng: *k\na: 2\nh: |\n  text\n";
    KilnYaml y;
    KilnErr err;
    assert_int_equal(ky_parse(&y, t, strlen(t), "y.yaml", 0, &err), 0);
    const KyNode *r = ky_root(&y);
    assert_int_equal(y.ndocs, 1);
    assert_int_equal(r->type, KY_MAP);
    assert_int_equal(r->nkids, 12);
    assert_string_equal(ky_str(ky_get(r, "a")), "1");  // the first of a repeated key
    assert_false(ky_key_repeated(r, 0));
    assert_true(ky_key_repeated(r, 8));
    assert_false(ky_key_repeated(r, 10));
    const KyNode *b = ky_get(r, "b"), *c = ky_get(r, "c");
    assert_int_equal(b->type, KY_SEQ);
    assert_int_equal(b->line, 3);
    assert_int_equal(b->col, 3);
    assert_false(ky_quoted(b->kids[0]));
    assert_true(ky_quoted(b->kids[1]));
    assert_int_equal(b->kids[1]->style, '\'');
    assert_int_equal(ky_get(c, "d")->style, '"');
    assert_int_equal(ky_get(c, "d")->col, 8);
    assert_ptr_equal(ky_get(r, "g"), ky_get(c, "f"));  // an alias is its anchored node
    assert_int_equal(ky_key(r, "g")->line, 6);
    assert_string_equal(ky_str(ky_get(r, "h")), "text\n");
    assert_int_equal(ky_get(r, "h")->style, '|');
    assert_null(ky_get(r, "zz"));
    assert_null(ky_get(b, "x"));
    assert_null(ky_str(b));
    ky_free(&y);
    // several documents, or the first only
    const char *docs = "a: 1\n---\nb: 2\n--- [\n";
    yaml_fails(docs, 0, "y.yaml:5: YAML error: did not find expected node content");
    assert_int_equal(ky_parse(&y, docs, strlen(docs), "y.yaml", KY_FIRST_DOC, &err), 0);
    assert_int_equal(y.ndocs, 1);
    ky_free(&y);
    assert_int_equal(ky_parse(&y, docs, 13, "y.yaml", 0, &err), 0);
    assert_int_equal(y.ndocs, 2);
    assert_int_equal(y.doc_line[1], 2);
    assert_string_equal(ky_str(ky_get(y.docs[1], "b")), "2");
    ky_free(&y);
    assert_int_equal(ky_parse(&y, "", 0, "y.yaml", 0, &err), 0);
    assert_null(ky_root(&y));
    ky_free(&y);
    // errors name the file and line
    yaml_fails("a: [1,\n", 0, "y.yaml:2: YAML error: did not find expected");
    yaml_fails("a: *nowhere\n", 0, "y.yaml:1: YAML error: found undefined alias");
    yaml_fails("a: &x 1\nb: &x 2\n", 0, "y.yaml:2: YAML error: found duplicate anchor");
    yaml_fails("a: &x 1\nb: *x\n", KY_NO_ALIASES, "y.yaml:2: YAML aliases are not supported");
    yaml_fails("a: 1\n---\nb: 2\n", KY_STRICT, "y.yaml:2: more than one YAML document");
    yaml_fails("a: 1\n? [b]\n: 2\n", KY_STRICT, "y.yaml:2: a mapping key must be a plain value");
    yaml_fails("a: \"x\\0y\"\n", KY_STRICT, "y.yaml:1: a NUL character in a value");
    char deep[200] = "";
    for (int i = 0; i <= KY_MAX_DEPTH; i++) strcat(deep, "[");
    yaml_fails(deep, 0, "nesting deeper than 32");
    // KY_PARTIAL keeps what came before an error, for readers that check it first
    assert_int_equal(ky_parse(&y, "a: 1\nb: [\n", 10, "y.yaml", KY_PARTIAL, &err), -1);
    assert_non_null(strstr(err.msg, "y.yaml:3: YAML error: "));
    assert_string_equal(ky_str(ky_get(ky_root(&y), "a")), "1");
    assert_int_equal(ky_get(ky_root(&y), "b")->type, KY_SEQ);
    ky_free(&y);
    KilnConfig cfg;
    const char *two = "model:\n  n_layers: 4\n  x: [\n";
    kiln_config_defaults(&cfg);
    assert_int_equal(kiln_config_load_yaml_string(&cfg, two, strlen(two), "c.yaml", &err), -1);
    assert_non_null(strstr(err.msg, "c.yaml:2: unknown config key 'model.n_layers'"));  // not the YAML error below it
    // a NUL inside a quoted value keeps its length when allowed
    assert_int_equal(ky_parse(&y, "a: \"x\\0y\"\n", 10, "y.yaml", 0, &err), 0);
    assert_int_equal(ky_get(ky_root(&y), "a")->len, 3);
    ky_free(&y);
}

static void test_parse_values(void **state) {
    (void)state;
    static const char *const T[] = {"true", "True", "TRUE", "yes", "Yes", "on", "ON", "1"},
                             *const F[] = {"false", "False", "no", "NO", "off", "Off", "0"},
                             *const BAD[] = {"", "maybe", "2", "truee", " true", "y", "n"};
    int b = -1;
    for (size_t i = 0; i < sizeof T / sizeof *T; i++) assert_true(!kiln_parse_bool(T[i], &b) && b == 1);
    for (size_t i = 0; i < sizeof F / sizeof *F; i++) assert_true(!kiln_parse_bool(F[i], &b) && b == 0);
    for (size_t i = 0; i < sizeof BAD / sizeof *BAD; i++) assert_int_equal(kiln_parse_bool(BAD[i], &b), -1);
    long l = 0;
    assert_true(!kiln_parse_long("-42", -100, 100, &l) && l == -42);
    assert_true(!kiln_parse_long("+7", 0, 10, &l) && l == 7);
    assert_int_equal(kiln_parse_long("101", -100, 100, &l), -1);
    assert_int_equal(kiln_parse_long("", 0, 10, &l), -1);
    assert_int_equal(kiln_parse_long("4x", 0, 10, &l), -1);
    assert_int_equal(kiln_parse_long("1.5", 0, 10, &l), -1);
    assert_int_equal(kiln_parse_long("99999999999999999999", 0, LONG_MAX, &l), -1);
    uint64_t u = 0;
    assert_true(!kiln_parse_u64("18446744073709551615", &u) && u == UINT64_MAX);
    assert_int_equal(kiln_parse_u64("18446744073709551616", &u), -1);
    assert_int_equal(kiln_parse_u64("-1", &u), -1);
    assert_int_equal(kiln_parse_u64(" -1", &u), -1);
    double d = 0;
    float f = 0;
    assert_true(!kiln_parse_double("3e-4", &d) && d == 3e-4);
    assert_true(!kiln_parse_double("inf", &d) && isinf(d));  // finiteness is the caller's rule
    assert_int_equal(kiln_parse_double("nan", &d), -1);
    assert_int_equal(kiln_parse_double("1e999", &d), -1);
    assert_int_equal(kiln_parse_double("1.5 ", &d), -1);
    assert_int_equal(kiln_parse_double("", &d), -1);
    assert_true(!kiln_parse_float("0.5", &f) && f == 0.5f);
    assert_int_equal(kiln_parse_float("1e39", &f), -1);
    assert_int_equal(kiln_parse_float("fast", &f), -1);
}

// Mutants of every shipped YAML file through the tree, under each reader's
// flags: an error naming the file, or a tree whose nodes are well formed.
static void check_node(const KyNode *n, int depth) {
    assert_true(n->line >= 1 && n->col >= 1);
    if (n->type == KY_SCALAR) assert_true(n->str && n->str[n->len] == 0 && !n->kids);
    else assert_true(n->type == KY_MAP ? n->nkids % 2 == 0 : n->type == KY_SEQ);
    for (int i = 0; depth < KY_MAX_DEPTH && i < n->nkids; i++) check_node(n->kids[i], depth + 1);  // aliases may loop
}

static int read_tree(const char *path, void *ctx) {
    KilnYaml y;
    KilnErr err;
    if (ky_load(&y, path, *(const unsigned *)ctx, &err)) {
        assert_non_null(strstr(err.msg, path));
        return -1;
    }
    for (int d = 0; d < y.ndocs; d++) check_node(y.docs[d], 0);
    const KyNode *r = ky_root(&y);
    for (int i = 0; r && r->type == KY_MAP && i < r->nkids; i += 2) ky_key_repeated(r, i);
    ky_get(r, "name");
    ky_free(&y);
    return 0;
}

static void test_yaml_tree_fuzz(void **state) {
    (void)state;
    static const char *const FILES[] = {"tasks/crows_pairs_english.yaml", "tasks/gsm8k.yaml", "tasks/hellaswag.yaml",
                                        "tasks/lambada_openai.yaml", "tasks/piqa.yaml", "tasks/toxicity.yaml",
                                        "tasks/wikitext.yaml", "configs/debian-demo.yaml",
                                        "configs/debian-pipeline.yaml", "configs/shakespeare-baby.yaml"};
    static const unsigned FLAGS[] = {0, KY_FIRST_DOC, KY_NO_ALIASES, KY_STRICT};
    for (size_t i = 0; i < sizeof FILES / sizeof *FILES; i++) {
        char path[4200], *data;
        size_t len;
        KilnErr err;
        snprintf(path, sizeof path, "%s/%s", KILN_SOURCE_DIR, FILES[i]);
        assert_int_equal(kiln_read_file(path, &data, &len, &err), 0);
        for (int f = 0; f < 4; f++) {
            assert_int_equal(read_tree(path, (void *)&FLAGS[f]), 0);  // the file itself reads
            int refused = fuzz_mutants(data, len, 200, tmp("tree.yaml"), 150, 40 + i * 4 + (uint64_t)f, read_tree,
                                       (void *)&FLAGS[f]);
            assert_true(refused > 0 && refused < 150);
        }
        free(data);
    }
}

// The string field `field` of the JSON object in s[0..n), decoded into a
// malloc'd buffer: kiln_json_fields finds it, kiln_json_string decodes it.
static int field_text(const char *s, size_t n, const char *field, char **out, size_t *out_len) {
    size_t span[1][2];
    const char *names[1] = {field};
    if (kiln_json_fields(s, n, names, 1, span) || span[0][1] == 0) return -1;
    size_t vn = span[0][1] - span[0][0], len;
    char *buf = malloc(vn + 1);
    if (!buf) return -1;
    if (kiln_json_string(s + span[0][0], vn, buf, &len)) {
        free(buf);
        return -1;
    }
    *out = buf;
    *out_len = len;
    return 0;
}

static void expect_field(const char *line, const char *field, const char *want, size_t want_len) {
    char *out = NULL;
    size_t len = 0;
    int rc = field_text(line, strlen(line), field, &out, &len);
    if (!want) {
        assert_int_equal(rc, -1);
        return;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(len, want_len);
    assert_memory_equal(out, want, want_len);
    free(out);
}

static void test_jsonl_text(void **state) {
    expect_field("{\"text\": \"hello\"}", "text", "hello", 5);
    expect_field("{\"id\": 3, \"meta\": {\"text\": \"no\", \"a\": [1, \"}\"]}, \"text\": \"yes\"}", "text", "yes", 3);
    expect_field("{\"text\": \"a\\u0000b\"}", "text", "a\0b", 3);  // NUL inside text keeps its length
    expect_field("{\"text\": \"\\\"\\\\\\/\\b\\f\\n\\r\\t\"}", "text", "\"\\/\b\f\n\r\t", 8);
    expect_field("{\"text\": \"\\u00e9\\u6771\\ud83c\\udf89\"}", "text", "\xc3\xa9\xe6\x9d\xb1\xf0\x9f\x8e\x89", 9);
    expect_field("{\"text\": \"\\ud83c x\"}", "text", "\xef\xbf\xbd x", 5);  // lone surrogate -> U+FFFD
    expect_field("{\"content\": \"x\"}", "text", NULL, 0);
    expect_field("{\"text\": 42}", "text", NULL, 0);
    expect_field("[\"text\"]", "text", NULL, 0);
    expect_field("{\"text\": \"unterminated}", "text", NULL, 0);
    expect_field("{\"text\": \"bad \\x escape\"}", "text", NULL, 0);
}

static int read_jsonl(const char *path) {
    char *data, *out;
    size_t len, olen;
    KilnErr err;
    if (kiln_read_file(path, &data, &len, &err)) return -1;
    int rc = field_text(data, len, "text", &out, &olen);
    if (rc == 0) free(out);
    free(data);
    return rc;
}

static void test_jsonl_fuzz(void **state) {
    const char *line = "{\"id\": \"doc-1\", \"meta\": {\"a\": [1, 2, {\"b\": null}]}, \"text\": \"caf\\u00e9 \\ud83c\\udf89 \\\"q\\\" \\n end\"}";
    write_bytes(tmp("j.jsonl"), line, strlen(line));
    fuzz_file(tmp("j.jsonl"), 3000, read_jsonl);
}

// Paths shown and recorded are tidied lexically (issue 12: ids and messages
// carried "tasks/../../shared/data/..."); relative paths between real files.
static void test_paths(void **state) {
    (void)state;
    static const char *const cases[][2] = {
        {"tasks/../../shared/data/x.jsonl", "../shared/data/x.jsonl"}, {"a/./b//c/../d", "a/b/d"},
        {"/../x", "/x"}, {"", "."}, {"./", "."}, {"../..", "../.."}, {"a/..", "."}, {"/a/b/../../..", "/"},
        {"a/b/", "a/b"}, {"//x", "/x"}, {"../a/../../b", "../../b"}, {"/", "/"},
    };
    char out[256];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kiln_path_normalize(cases[i][0], out, sizeof out);
        assert_string_equal(out, cases[i][1]);
    }
    char dir[1024], tokdir[1100], outdir[1100], tok[1200];
    snprintf(dir, sizeof dir, "%s/paths", test_tmpdir());
    snprintf(tokdir, sizeof tokdir, "%s/tok", dir);
    snprintf(outdir, sizeof outdir, "%s/runs/corpus", dir);
    KilnErr err;
    assert_int_equal(kiln_mkdirs(tokdir, &err), 0);
    assert_int_equal(kiln_mkdirs(outdir, &err), 0);
    snprintf(tok, sizeof tok, "%s/t.tiktoken", tokdir);
    write_bytes(tok, "x", 1);
    assert_int_equal(kiln_path_relative(tok, outdir, out, sizeof out), 0);
    assert_string_equal(out, "../../tok/t.tiktoken");
    assert_int_equal(kiln_path_relative(tok, dir, out, sizeof out), 0);
    assert_string_equal(out, "tok/t.tiktoken");
    assert_int_equal(kiln_path_relative(tok, "/", out, sizeof out), 0);
    assert_string_equal(out, tok + 1);
    assert_int_equal(kiln_path_relative("/no/such/file", dir, out, sizeof out), -1);
    // a manifest's relative tokenizer path resolves from the manifest's directory, not the current one
    char man[1200];
    snprintf(man, sizeof man, "%s/manifest.json", outdir);
    const char *m = "{\"tokenizer\": \"../../tok/t.tiktoken\", \"shards\": []}";
    write_bytes(man, m, strlen(m));
    char spec[2048];
    assert_int_equal(manifest_tokenizer(man, spec, sizeof spec, &err), 0);
    assert_int_equal(access(spec, F_OK), 0);
    m = "{\"tokenizer\": \"bytes\", \"shards\": []}";
    write_bytes(man, m, strlen(m));
    assert_int_equal(manifest_tokenizer(man, spec, sizeof spec, &err), 0);
    assert_string_equal(spec, "bytes");
    m = "{\"shards\": []}";
    write_bytes(man, m, strlen(m));
    assert_int_equal(manifest_tokenizer(man, spec, sizeof spec, &err), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_yaml),        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_manifest_numbers),
        cmocka_unit_test(test_safetensors_roundtrip), cmocka_unit_test(test_safetensors_fuzz),
        cmocka_unit_test(test_shard_roundtrip),    cmocka_unit_test(test_shard_fuzz),
        cmocka_unit_test(test_loader),             cmocka_unit_test(test_checkpoint_roundtrip),
        cmocka_unit_test(test_state_fuzz),         cmocka_unit_test(test_yaml_fuzz),
        cmocka_unit_test(test_jsonl_text),         cmocka_unit_test(test_jsonl_fuzz),
        cmocka_unit_test(test_yaml_tree),          cmocka_unit_test(test_parse_values),
        cmocka_unit_test(test_yaml_tree_fuzz),
        cmocka_unit_test(test_atomic_planted_link), cmocka_unit_test(test_atomic_long_name),
        cmocka_unit_test(test_checkpoint_planted_link), cmocka_unit_test(test_paths),
    };
    return TEST_RUN("test_io", tests);
}
