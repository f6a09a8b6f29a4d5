// checkpoint.c: crash-safe checkpoints in safetensors plus a JSON state file.
#define _GNU_SOURCE  // renameat2
#include "kiln/checkpoint.h"

#include "backend/backend.h"
#include "core/safetensors.h"
#include "core/rundir.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

// Named views of flat buffers laid out like the parameters, each under a name
// prefix: ("", params) for weights; ("exp_avg.", m), ("exp_avg_sq.", v) for AdamW.
typedef struct {
    float *base;
    const char *prefix;
} Buffer;
enum { MAX_BUFFERS = 2 };

// Ends the host views of the first nb buffers; written: copy them back.
static int end_views(const KilnModel *m, const Buffer *bufs, int nb, float **views, int written,
                     KilnErr *err) {
    int rc = 0;
    for (int b = 0; b < nb; b++)
        if (backend_view_end(views[b], bufs[b].base, m->layout.total, written, err)) rc = -1;
    return rc;
}

// Host views of the buffers: the backend's memory need not be the host's.
static int view_buffers(const KilnModel *m, const Buffer *bufs, int nb, float **views, KilnErr *err) {
    for (int b = 0; b < nb; b++) {
        views[b] = backend_view(bufs[b].base, m->layout.total, err);
        if (!views[b]) return end_views(m, bufs, b, views, 0, NULL), -1;
    }
    return 0;
}

static int save_buffers(const char *path, const KilnModel *m, const Buffer *bufs, int nb,
                        const KilnConfig *cfg, KilnErr *err) {
    int per = gpt_named_tensors(m, m->params, NULL), n = per * nb;
    KilnNamedTensor *nt = calloc((size_t)per, sizeof *nt);
    KilnStTensor *st = calloc((size_t)n, sizeof *st);
    char(*names)[128] = calloc((size_t)n, sizeof *names);
    char *yaml = NULL;
    size_t ylen = 0;
    FILE *mf = open_memstream(&yaml, &ylen);
    if (!nt || !st || !names || !mf) {
        if (mf) fclose(mf);
        free(yaml);
        free(nt);
        free(st);
        free(names);
        return kiln_fail(err, "out of memory");
    }
    kiln_config_write_yaml(cfg, mf);
    fclose(mf);
    float *views[MAX_BUFFERS];
    if (view_buffers(m, bufs, nb, views, err)) {
        free(yaml);
        free(nt);
        free(st);
        free(names);
        return -1;
    }
    // a checkpoint of NaN weights would pass its checksum and kill every resume
    for (int b = 0; b < nb; b++)
        for (long i = 0; i < m->layout.total; i++)
            if (!isfinite(views[b][i])) {
                end_views(m, bufs, nb, views, 0, NULL);
                free(yaml);
                free(nt);
                free(st);
                free(names);
                return kiln_fail(err, "%s: %s value %ld is not finite: refusing to write it", path,
                                 bufs[b].prefix[0] ? bufs[b].prefix : "weight", i);
            }
    for (int b = 0; b < nb; b++) {
        gpt_named_tensors(m, views[b], nt);
        for (int i = 0; i < per; i++) {
            int k = b * per + i;
            snprintf(names[k], sizeof names[k], "%s%s", bufs[b].prefix, nt[i].name);
            st[k].name = names[k];
            st[k].data = nt[i].data;
            st[k].ndim = nt[i].ndim;
            st[k].shape[0] = nt[i].shape[0];
            st[k].shape[1] = nt[i].shape[1];
        }
    }
    const char *keys[] = {"format", "kiln.config"};
    const char *vals[] = {"pt", yaml};
    int rc = st_write(path, st, n, keys, vals, 2, err);
    if (end_views(m, bufs, nb, views, 0, rc ? NULL : err)) rc = -1;
    free(yaml);
    free(nt);
    free(st);
    free(names);
    return rc;
}

static int load_buffers(const char *path, const KilnModel *m, const Buffer *bufs, int nb,
                        KilnErr *err) {
    KilnStFile f;
    if (st_open(&f, path, err)) return -1;
    int per = gpt_named_tensors(m, m->params, NULL);
    KilnNamedTensor *nt = calloc((size_t)per, sizeof *nt);
    if (!nt) {
        st_close(&f);
        return kiln_fail(err, "out of memory");
    }
    float *views[MAX_BUFFERS];
    int rc = view_buffers(m, bufs, nb, views, err), viewed = rc == 0;
    for (int b = 0; b < nb && rc == 0; b++) {
        gpt_named_tensors(m, views[b], nt);
        for (int i = 0; i < per && rc == 0; i++) {
            char name[160];
            snprintf(name, sizeof name, "%s%s", bufs[b].prefix, nt[i].name);
            rc = st_read_f32(&f, name, nt[i].data, nt[i].ndim, nt[i].shape, err);
        }
    }
    if (viewed && end_views(m, bufs, nb, views, rc == 0, rc ? NULL : err)) rc = -1;
    free(nt);
    st_close(&f);
    return rc;
}

void train_state_init(KilnTrainState *st, const KilnConfig *cfg) {
    memset(st, 0, sizeof *st);
    st->val_loss = NAN;
    st->lr_mult = 1.0f;
    st->weight_decay = cfg->train.weight_decay;
    st->grad_clip = cfg->train.grad_clip;
    st->optimizer = (int)cfg->train.optimizer;
    st->act = (int)cfg->model.act;
}

int train_state_skips(const KilnTrainState *st, int step) {
    for (int i = 0; i < st->nskip; i++)
        if (st->skip_step[i] == step) return st->skip_count[i];
    return 0;
}

int train_state_add_skip(KilnTrainState *st, int step, int count) {
    for (int i = 0; i < st->nskip; i++)
        if (st->skip_step[i] == step) return st->skip_count[i] += count, 0;
    if (st->nskip == KILN_MAX_SKIPS) return -1;
    int i = st->nskip++;
    for (; i > 0 && st->skip_step[i - 1] > step; i--) {
        st->skip_step[i] = st->skip_step[i - 1];
        st->skip_count[i] = st->skip_count[i - 1];
    }
    st->skip_step[i] = step;
    st->skip_count[i] = count;
    return 0;
}

static cJSON *float_array(const float *x, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(x[i]));
    return a;
}

// state.json; sums ({file: sha256}) and shards (a sharded checkpoint's
// layout, or NULL) are taken over.
static int write_state(const char *path, const KilnConfig *cfg, const KilnTrainState *st, cJSON *sums,
                       cJSON *shards, KilnErr *err) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "step", st->step);
    cJSON_AddNumberToObject(j, "tokens_seen", (double)st->tokens_seen);
    cJSON *ld = cJSON_AddObjectToObject(j, "loader");
    cJSON_AddNumberToObject(ld, "shard", st->loader_shard);
    cJSON_AddNumberToObject(ld, "pos", (double)st->loader_pos);
    cJSON_AddNumberToObject(ld, "epoch", (double)st->loader_epoch);
    if (isfinite(st->val_loss)) cJSON_AddNumberToObject(j, "val_loss", st->val_loss);
    cJSON_AddNumberToObject(j, "train_seconds", st->train_seconds);
    cJSON *live = cJSON_AddObjectToObject(j, "live");
    cJSON_AddNumberToObject(live, "lr_mult", st->lr_mult);
    cJSON_AddNumberToObject(live, "weight_decay", st->weight_decay);
    cJSON_AddNumberToObject(live, "grad_clip", st->grad_clip);
    cJSON_AddNumberToObject(live, "optimizer", st->optimizer);
    cJSON_AddNumberToObject(live, "act", st->act);
    cJSON_AddNumberToObject(live, "opt_step", st->opt_step);
    cJSON *g = cJSON_AddObjectToObject(j, "guard");
    cJSON_AddNumberToObject(g, "head", st->guard.head);
    cJSON_AddItemToObject(g, "loss", float_array(st->guard.loss, st->guard.n));
    cJSON_AddItemToObject(g, "norm", float_array(st->guard.norm, st->guard.n));
    cJSON_AddNumberToObject(g, "spikes", st->spikes);
    cJSON *sk = cJSON_AddArrayToObject(j, "skip");
    for (int i = 0; i < st->nskip; i++) {
        int pair[2] = {st->skip_step[i], st->skip_count[i]};
        cJSON_AddItemToArray(sk, cJSON_CreateIntArray(pair, 2));
    }
    // randomness is counter-based (see checkpoint.h): the seed is all there is
    cJSON *rng = cJSON_AddObjectToObject(j, "rng");
    cJSON_AddStringToObject(rng, "kind", "counter-based: kiln_hash64(seed, step, micro-batch)");
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", cfg->train.seed);
    cJSON_AddStringToObject(rng, "seed", seed);
    cJSON_AddItemToObject(j, "sha256", sums);
    if (shards) cJSON_AddItemToObject(j, "shards", shards);
    cJSON_AddStringToObject(j, "kiln_version", kiln_version());
    cJSON_AddStringToObject(j, "git_commit", kiln_git_commit());
    char *yaml = NULL;
    size_t ylen = 0;
    FILE *mf = open_memstream(&yaml, &ylen);
    if (!mf) {
        cJSON_Delete(j);
        return kiln_fail(err, "out of memory");
    }
    kiln_config_write_yaml(cfg, mf);
    fclose(mf);
    cJSON_AddStringToObject(j, "config", yaml);
    free(yaml);
    int rc = kiln_write_json(path, j, err);
    cJSON_Delete(j);
    return rc;
}

// ckpt/state.json.sha256: the sha256 of state.json, so that an edited step or
// loader position is refused like a corrupt tensor file.
static int write_state_sha(const char *ckpt_dir, KilnErr *err) {
    char p[1200], sha[65], line[80];
    snprintf(p, sizeof p, "%s/" RUNDIR_CKPT_STATE, ckpt_dir);
    if (kiln_sha256_file(p, sha, err)) return -1;
    snprintf(p, sizeof p, "%s/" RUNDIR_CKPT_STATE_SHA, ckpt_dir);
    KilnAtomicFile af;
    if (kiln_atomic_open(&af, p, err)) return -1;
    int n = snprintf(line, sizeof line, "%s\n", sha);
    kiln_atomic_write(&af, line, (size_t)n, err);
    return kiln_atomic_commit(&af, err);
}

// 0: state.json matches its recorded sha256; 1: none is recorded (a checkpoint
// of an older kiln, accepted: see checkpoint_find_good); -1: it does not match.
static int check_state_sha(const char *ckpt_dir, KilnErr *err) {
    char p[1200], got[65], *text;
    size_t len;
    snprintf(p, sizeof p, "%s/" RUNDIR_CKPT_STATE_SHA, ckpt_dir);
    if (access(p, F_OK) != 0) return 1;
    if (kiln_read_file(p, &text, &len, err)) return -1;
    while (len && (text[len - 1] == '\n' || text[len - 1] == ' ')) text[--len] = 0;
    snprintf(p, sizeof p, "%s/" RUNDIR_CKPT_STATE, ckpt_dir);
    int rc = kiln_sha256_file(p, got, err);
    if (rc == 0 && (len != 64 || strcmp(got, text)))
        rc = kiln_fail(err, "%s: sha256 %.12s... does not match the %.12s... recorded in " RUNDIR_CKPT_STATE_SHA
                            " (edited or corrupt)", p, got, text);
    free(text);
    return rc;
}

// shard-NNNNN.safetensors: one rank's part of a sharded checkpoint.
#define SHARD_FMT "shard-%05d.safetensors"
static int is_shard_name(const char *name) {
    int rank, end = 0;
    return sscanf(name, "shard-%5d.safetensors%n", &rank, &end) == 1 && end == (int)strlen(name) &&
           strlen(name) == strlen("shard-00000.safetensors");
}

// Removes a checkpoint directory: only the files kiln writes there, so a
// user's own file keeps it; a symlink at dir is never entered (O_NOFOLLOW),
// so pruning cannot delete files in a directory it points to.
static int remove_checkpoint(const char *dir) {
    static const char *const files[] = {RUNDIR_CKPT_MODEL, RUNDIR_CKPT_OPTIM, RUNDIR_CKPT_STATE,
                                          RUNDIR_CKPT_STATE_SHA};
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return -1;
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) unlinkat(fd, files[i], 0);
    DIR *d = fdopendir(dup(fd));
    for (struct dirent *e; d && (e = readdir(d));)  // a sharded checkpoint's parts
        if (is_shard_name(e->d_name)) unlinkat(fd, e->d_name, 0);
    if (d) closedir(d);
    close(fd);
    return rmdir(dir);
}

// Puts the finished temp directory TMP in place as FINAL. The same step
// written again (e.g. after a resume) swaps the two atomically, so a failure
// never leaves neither; where the file system cannot swap, the earlier one is
// moved aside onto a fresh empty directory (never a predictable name that
// could be a planted link) and put back if the new one cannot take its place.
static int install_checkpoint(const char *tmp, const char *final, const char *run_dir, KilnErr *err) {
    struct stat sb;
    if (stat(final, &sb) != 0) {
        if (rename(tmp, final) == 0) return 0;
        return kiln_fail(err, "%s: rename failed: %s", final, strerror(errno));
    }
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, final, RENAME_EXCHANGE) == 0) {
        remove_checkpoint(tmp);  // now the earlier one
        return 0;
    }
    if (errno != EINVAL && errno != ENOSYS)
        return kiln_fail(err, "%s: rename failed: %s", final, strerror(errno));
    char old[1200];
    if (kiln_temp_create(old, sizeof old, run_dir, "old", 1) != 0)
        return kiln_fail(err, "%s: cannot create a temp directory: %s", run_dir, strerror(errno));
    if (rename(final, old) != 0) {
        int e = errno;
        rmdir(old);
        return kiln_fail(err, "%s: rename failed: %s", final, strerror(e));
    }
    if (rename(tmp, final) != 0) {
        int e = errno;
        rename(old, final);
        return kiln_fail(err, "%s: rename failed: %s", final, strerror(e));
    }
    remove_checkpoint(old);
    return 0;
}

int checkpoint_begin(const char *run_dir, int step, char *tmp, size_t n, KilnErr *err) {
    if (kiln_mkdirs(run_dir, err)) return -1;
    char name[64];
    snprintf(name, sizeof name, RUNDIR_CKPT_FMT, step);
    // a fresh uniquely named directory (RUN/.ckpt-N-<random>.tmp), made with
    // mkdir so that nothing planted under a predictable name is followed
    if (kiln_temp_create(tmp, n, run_dir, name, 1) != 0)
        return kiln_fail(err, "%s: cannot create a temp directory: %s", run_dir, strerror(errno));
    return 0;
}

void checkpoint_abort(const char *tmp) { kiln_remove_tree(tmp); }

// Adds file's sha256 to sums.
static int add_sum(cJSON *sums, const char *tmp, const char *file, KilnErr *err) {
    char p[1200], sha[65];
    snprintf(p, sizeof p, "%s/%s", tmp, file);
    if (kiln_sha256_file(p, sha, err)) return -1;
    cJSON_AddStringToObject(sums, file, sha);
    return 0;
}

// The state of a checkpoint whose files are in tmp (sums: their sha256, taken
// over, as shards), then tmp installed as RUN/ckpt-<step> and RUN/latest.
static int commit(const char *run_dir, const char *tmp, const KilnConfig *cfg, const KilnTrainState *st,
                  cJSON *sums, cJSON *shards, char *path, KilnErr *err) {
    char p[1200], final[1100], name[64];
    snprintf(name, sizeof name, RUNDIR_CKPT_FMT, st->step);
    snprintf(final, sizeof final, "%s/%s", run_dir, name);
    snprintf(p, sizeof p, "%s/" RUNDIR_CKPT_STATE, tmp);
    int rc = write_state(p, cfg, st, sums, shards, err);
    if (rc == 0) rc = write_state_sha(tmp, err);
    if (rc == 0) rc = kiln_fsync_dir(tmp, err);
    if (rc == 0) rc = install_checkpoint(tmp, final, run_dir, err);
    if (rc != 0) {
        kiln_remove_tree(tmp);
        return kiln_wrap(err, "checkpoint step %d", st->step);
    }
    if (kiln_fsync_dir(run_dir, err)) return -1;
    // RUN/latest: the newest checkpoint's directory name
    snprintf(p, sizeof p, "%s/" RUNDIR_LATEST, run_dir);
    KilnAtomicFile af;
    if (kiln_atomic_open(&af, p, err)) return -1;
    int nl = snprintf(name, sizeof name, RUNDIR_CKPT_FMT "\n", st->step);
    kiln_atomic_write(&af, name, (size_t)nl, err);
    if (kiln_atomic_commit(&af, err)) return -1;
    if (path) snprintf(path, 1024, "%s", final);
    return 0;
}

int checkpoint_save(const char *run_dir, const KilnConfig *cfg, const KilnModel *m,
                    const KilnTrainState *st, char *path, KilnErr *err) {
    char tmp[1100], p[1200];
    if (checkpoint_begin(run_dir, st->step, tmp, sizeof tmp, err)) return -1;
    Buffer weights[] = {{m->params, ""}};
    Buffer moments[] = {{m->m, "exp_avg."}, {m->v, "exp_avg_sq."}};
    snprintf(p, sizeof p, "%s/" RUNDIR_CKPT_MODEL, tmp);
    int rc = save_buffers(p, m, weights, 1, cfg, err);
    if (rc == 0) {
        snprintf(p, sizeof p, "%s/" RUNDIR_CKPT_OPTIM, tmp);
        rc = save_buffers(p, m, moments, 2, cfg, err);
    }
    cJSON *sums = cJSON_CreateObject();
    if (rc == 0) rc = add_sum(sums, tmp, RUNDIR_CKPT_MODEL, err);
    if (rc == 0) rc = add_sum(sums, tmp, RUNDIR_CKPT_OPTIM, err);
    if (rc != 0) {
        cJSON_Delete(sums);
        kiln_remove_tree(tmp);
        return kiln_wrap(err, "checkpoint step %d", st->step);
    }
    return commit(run_dir, tmp, cfg, st, sums, NULL, path, err);
}

// ---- sharded checkpoints ----

int checkpoint_write_weights(const char *tmp, const KilnConfig *cfg, const KilnModel *m, KilnErr *err) {
    char p[1200];
    Buffer weights[] = {{m->params, ""}};
    snprintf(p, sizeof p, "%s/" RUNDIR_CKPT_MODEL, tmp);
    return save_buffers(p, m, weights, 1, cfg, err);
}

// A run of values none of which may be written if one is not finite.
static int all_finite(const float *x, long n, const char *path, const char *what, KilnErr *err) {
    for (long i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return kiln_fail(err, "%s: %s value %ld is not finite: refusing to write it", path, what, i);
    return 0;
}

int checkpoint_write_shard(const char *tmp, const KilnModel *m, const KilnShardInfo *si, char *sha, KilnErr *err) {
    char p[1200];
    snprintf(p, sizeof p, "%s/" SHARD_FMT, tmp, si->rank);
    long P = m->layout.total;
    KilnStTensor ts[3];
    int n = 0;
    if (si->has_params) {
        if (all_finite(m->params, P, p, "weight", err)) return -1;
        ts[n++] = (KilnStTensor){"params", m->params, 1, {P}};
    }
    if (si->opt_n > 0) {
        if (all_finite(m->m, si->opt_n, p, "exp_avg", err) || all_finite(m->v, si->opt_n, p, "exp_avg_sq", err))
            return -1;
        ts[n++] = (KilnStTensor){"exp_avg", m->m, 1, {si->opt_n}};
        ts[n++] = (KilnStTensor){"exp_avg_sq", m->v, 1, {si->opt_n}};
    }
    const char *keys[] = {"format"}, *vals[] = {"kiln-shard"};
    if (st_write(p, ts, n, keys, vals, 1, err)) return -1;
    return kiln_sha256_file(p, sha, err);
}

int checkpoint_commit_shards(const char *run_dir, const char *tmp, const KilnConfig *cfg, const KilnTrainState *st,
                             const KilnShardInfo *parts, char (*shas)[65], int nparts, char *path, KilnErr *err) {
    cJSON *sums = cJSON_CreateObject(), *sh = cJSON_CreateObject(), *files = cJSON_CreateArray();
    int rc = add_sum(sums, tmp, RUNDIR_CKPT_MODEL, err);
    const KilnShardInfo *l = &parts[0];
    cJSON_AddNumberToObject(sh, "dp", l->dp);
    cJSON_AddNumberToObject(sh, "tp", l->tp);
    cJSON_AddNumberToObject(sh, "pp", l->pp);
    cJSON_AddNumberToObject(sh, "zero", l->zero);
    for (int i = 0; i < nparts && rc == 0; i++) {
        const KilnShardInfo *x = &parts[i];
        if (!x->has_params && x->opt_n <= 0) continue;  // a replica with nothing of its own
        char file[64];
        snprintf(file, sizeof file, SHARD_FMT, x->rank);
        cJSON_AddStringToObject(sums, file, shas[i]);
        cJSON *f = cJSON_CreateObject();
        cJSON_AddStringToObject(f, "file", file);
        cJSON_AddNumberToObject(f, "rank", x->rank);
        cJSON_AddNumberToObject(f, "dp_rank", x->dp_rank);
        cJSON_AddNumberToObject(f, "tp_rank", x->tp_rank);
        cJSON_AddNumberToObject(f, "stage", x->stage);
        cJSON_AddBoolToObject(f, "params", x->has_params);
        cJSON_AddNumberToObject(f, "opt_lo", (double)x->opt_lo);
        cJSON_AddNumberToObject(f, "opt_n", (double)x->opt_n);
        cJSON_AddItemToArray(files, f);
    }
    cJSON_AddItemToObject(sh, "files", files);
    if (rc != 0) {
        cJSON_Delete(sums);
        cJSON_Delete(sh);
        kiln_remove_tree(tmp);
        return kiln_wrap(err, "checkpoint step %d", st->step);
    }
    return commit(run_dir, tmp, cfg, st, sums, sh, path, err);
}

int checkpoint_read_state(const char *ckpt_dir, KilnConfig *cfg, KilnTrainState *st, KilnErr *err) {
    char p[1200], *text;
    size_t len;
    snprintf(p, sizeof p, "%s/" RUNDIR_CKPT_STATE, ckpt_dir);
    if (kiln_read_file(p, &text, &len, err)) return -1;
    int rc = checkpoint_parse_state(text, len, p, cfg, st, err);
    free(text);
    return rc;
}

// A whole number in [0, hi], so the conversions below are exact.
static int whole(const cJSON *x, double hi) {
    return cJSON_IsNumber(x) && x->valuedouble >= 0 && x->valuedouble <= hi && x->valuedouble == floor(x->valuedouble);
}

static const cJSON *item(const cJSON *o, const char *key) { return o ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL; }

// The optional sections (live settings, guard window, skip list): absent in
// older checkpoints, where the config's values stand.
static int parse_live(const cJSON *j, KilnTrainState *st) {
    const cJSON *live = item(j, "live"), *g = item(j, "guard"), *sk = item(j, "skip"), *ts = item(j, "train_seconds");
    if (cJSON_IsNumber(ts)) st->train_seconds = ts->valuedouble;
    if (live) {
        const cJSON *lm = item(live, "lr_mult"), *wd = item(live, "weight_decay"), *gc = item(live, "grad_clip");
        const cJSON *op = item(live, "optimizer"), *ac = item(live, "act"), *os = item(live, "opt_step");
        if (!cJSON_IsNumber(lm) || !cJSON_IsNumber(wd) || !cJSON_IsNumber(gc) || !whole(op, 16) ||
            !whole(ac, KILN_ACT_SWIGLU) || !whole(os, 2147483647.0))
            return -1;
        st->lr_mult = (float)lm->valuedouble;
        st->weight_decay = (float)wd->valuedouble;
        st->grad_clip = (float)gc->valuedouble;
        st->optimizer = (int)op->valuedouble;
        st->act = (int)ac->valuedouble;
        st->opt_step = (int)os->valuedouble;
    }
    if (g) {
        const cJSON *head = item(g, "head"), *loss = item(g, "loss"), *norm = item(g, "norm"), *sp = item(g, "spikes");
        int n = cJSON_GetArraySize(loss);
        if (!whole(head, KILN_SPIKE_WINDOW_MAX - 1) || !cJSON_IsArray(loss) || !cJSON_IsArray(norm) ||
            n > KILN_SPIKE_WINDOW_MAX || cJSON_GetArraySize(norm) != n || !whole(sp, 2147483647.0))
            return -1;
        for (int i = 0; i < n; i++) {
            const cJSON *a = cJSON_GetArrayItem(loss, i), *b = cJSON_GetArrayItem(norm, i);
            if (!cJSON_IsNumber(a) || !cJSON_IsNumber(b)) return -1;
            st->guard.loss[i] = (float)a->valuedouble;
            st->guard.norm[i] = (float)b->valuedouble;
        }
        st->guard.n = n;
        st->guard.head = (int)head->valuedouble;
        st->spikes = (int)sp->valuedouble;
    }
    if (sk) {
        if (!cJSON_IsArray(sk) || cJSON_GetArraySize(sk) > KILN_MAX_SKIPS) return -1;
        const cJSON *x;
        cJSON_ArrayForEach(x, sk) {  // [step, count] pairs
            const cJSON *a = cJSON_GetArrayItem(x, 0), *b = cJSON_GetArrayItem(x, 1);
            if (cJSON_GetArraySize(x) != 2 || !whole(a, 2147483647.0) || !whole(b, 1e6) || b->valuedouble < 1)
                return -1;
            train_state_add_skip(st, (int)a->valuedouble, (int)b->valuedouble);
        }
    }
    return 0;
}

int checkpoint_parse_state(const char *text, size_t len, const char *p, KilnConfig *cfg,
                           KilnTrainState *st, KilnErr *err) {
    cJSON *j = cJSON_ParseWithLength(text, len);
    if (!j) return kiln_fail(err, "%s: not valid JSON (truncated?)", p);
    const cJSON *step = item(j, "step"), *tok = item(j, "tokens_seen"), *ld = item(j, "loader");
    const cJSON *conf = item(j, "config"), *vl = item(j, "val_loss");
    const cJSON *ls = item(ld, "shard"), *lp = item(ld, "pos"), *le = item(ld, "epoch");
    if (!whole(step, 2147483647.0) || !whole(tok, 9e15) || !whole(ls, 2147483647.0) || !whole(lp, 9e15) ||
        !whole(le, 9e15) || !cJSON_IsString(conf)) {
        cJSON_Delete(j);
        return kiln_fail(err, "%s: missing or malformed step, tokens_seen, loader or config", p);
    }
    kiln_config_defaults(cfg);
    char origin[1300];
    snprintf(origin, sizeof origin, "%s (config)", p);
    int rc = kiln_config_load_yaml_string(cfg, conf->valuestring, strlen(conf->valuestring), origin, err);
    if (rc == 0) rc = kiln_config_finalize(cfg, err);
    if (rc == 0) {
        train_state_init(st, cfg);
        st->step = (int)step->valuedouble;
        st->tokens_seen = (long long)tok->valuedouble;
        st->loader_shard = (int)ls->valuedouble;
        st->loader_pos = (long)lp->valuedouble;
        st->loader_epoch = (long)le->valuedouble;
        st->val_loss = cJSON_IsNumber(vl) ? (float)vl->valuedouble : NAN;
        if (parse_live(j, st)) rc = kiln_fail(err, "%s: malformed live, guard or skip section", p);
    }
    cJSON_Delete(j);
    return rc;
}

// A sharded checkpoint's layout and parts, from its state.json.
typedef struct {
    KilnShardInfo layout;
    int n;
    KilnShardInfo *part;
    char (*file)[64];
} Shards;

static void shards_free(Shards *sh) {
    free(sh->part);
    free(sh->file);
    memset(sh, 0, sizeof *sh);
}

static int number(const cJSON *o, const char *key, double lo, double hi, double *out) {
    const cJSON *x = item(o, key);
    if (!cJSON_IsNumber(x) || x->valuedouble < lo || x->valuedouble > hi || x->valuedouble != (long)x->valuedouble)
        return -1;
    *out = x->valuedouble;
    return 0;
}

// From the text of a state.json (p: its name in messages): 0 and sh filled
// when it is a sharded checkpoint's; 1: a whole-model checkpoint's; -1: error.
static int parse_shards(const char *text, size_t len, const char *p, Shards *sh, KilnErr *err) {
    memset(sh, 0, sizeof *sh);
    cJSON *j = cJSON_ParseWithLength(text, len);
    if (!j) return kiln_fail(err, "%s: not JSON", p);
    const cJSON *o = item(j, "shards"), *files = item(o, "files");
    if (!o) {
        cJSON_Delete(j);
        return 1;
    }
    double v[4] = {0, 0, 0, 0};
    int n = cJSON_GetArraySize(files), rc = 0;
    if (number(o, "dp", 1, 1 << 20, &v[0]) || number(o, "tp", 1, 1 << 20, &v[1]) || number(o, "pp", 1, 1 << 20, &v[2]) ||
        number(o, "zero", 0, 2, &v[3]) || !cJSON_IsArray(files) || n < 1)
        rc = kiln_fail(err, "%s: malformed shards section", p);
    sh->layout = (KilnShardInfo){.dp = (int)v[0], .tp = (int)v[1], .pp = (int)v[2], .zero = (int)v[3]};
    if (rc == 0) {
        sh->part = calloc((size_t)n, sizeof *sh->part);
        sh->file = calloc((size_t)n, sizeof *sh->file);
        if (!sh->part || !sh->file) rc = kiln_fail(err, "out of memory");
    }
    for (int i = 0; i < n && rc == 0; i++) {
        const cJSON *f = cJSON_GetArrayItem(files, i), *name = item(f, "file"), *par = item(f, "params");
        double r, d, t, st, lo, on;
        KilnShardInfo *x = &sh->part[i];
        if (!cJSON_IsString(name) || !is_shard_name(name->valuestring) || !cJSON_IsBool(par) ||
            number(f, "rank", 0, 1 << 30, &r) || number(f, "dp_rank", 0, sh->layout.dp - 1, &d) ||
            number(f, "tp_rank", 0, sh->layout.tp - 1, &t) || number(f, "stage", 0, sh->layout.pp - 1, &st) ||
            number(f, "opt_lo", 0, 0x1p50, &lo) || number(f, "opt_n", 0, 0x1p50, &on)) {
            rc = kiln_fail(err, "%s: malformed shards.files[%d]", p, i);
            break;
        }
        *x = sh->layout;
        x->rank = (int)r, x->dp_rank = (int)d, x->tp_rank = (int)t, x->stage = (int)st;
        x->has_params = cJSON_IsTrue(par), x->opt_lo = (long)lo, x->opt_n = (long)on;
        snprintf(sh->file[i], sizeof sh->file[i], "%s", name->valuestring);
        sh->n++;
    }
    cJSON_Delete(j);
    if (rc) shards_free(sh);
    return rc;
}

static int read_shards(const char *ckpt_dir, Shards *sh, KilnErr *err) {
    char p[1200], *text;
    size_t len;
    snprintf(p, sizeof p, "%s/" RUNDIR_CKPT_STATE, ckpt_dir);
    if (kiln_read_file(p, &text, &len, err)) return -1;
    int rc = parse_shards(text, len, p, sh, err);
    free(text);
    return rc;
}

int checkpoint_parse_layout(const char *text, size_t len, const char *name, KilnShardInfo *layout, int *nparts,
                            KilnErr *err) {
    Shards sh;
    int rc = parse_shards(text, len, name, &sh, err);
    if (rc == 0) *layout = sh.layout, *nparts = sh.n, shards_free(&sh);
    return rc;
}

int checkpoint_layout(const char *ckpt_dir, KilnShardInfo *layout, KilnErr *err) {
    Shards sh;
    int rc = read_shards(ckpt_dir, &sh, err);
    if (rc == 0) *layout = sh.layout, shards_free(&sh);
    return rc;
}

// Reads a part's tensor (n floats) from ckpt_dir/file.
static int read_part(const char *ckpt_dir, const char *file, const char *name, float *dst, long n, KilnErr *err) {
    char p[1200];
    snprintf(p, sizeof p, "%s/%s", ckpt_dir, file);
    KilnStFile f;
    if (st_open(&f, p, err)) return -1;
    long shape[1] = {n};
    int rc = st_read_f32(&f, name, dst, 1, shape, err);
    st_close(&f);
    return rc;
}

// The moments of the share (tp rank t, stage s) from a sharded checkpoint's
// parts into mv (2 x the share's size: m, then v).
static int share_moments(const char *ckpt_dir, const Shards *sh, int t, int s, long P, float *mv, KilnErr *err) {
    long covered = 0;
    for (int i = 0; i < sh->n; i++) {
        const KilnShardInfo *x = &sh->part[i];
        if (x->tp_rank != t || x->stage != s || x->opt_n <= 0) continue;
        if (x->opt_lo + x->opt_n > P)
            return kiln_fail(err, "%s/%s: moments [%ld, %ld) beyond its share's %ld values", ckpt_dir, sh->file[i],
                             x->opt_lo, x->opt_lo + x->opt_n, P);
        if (read_part(ckpt_dir, sh->file[i], "exp_avg", mv + x->opt_lo, x->opt_n, err) ||
            read_part(ckpt_dir, sh->file[i], "exp_avg_sq", mv + P + x->opt_lo, x->opt_n, err))
            return -1;
        covered += x->opt_n;
    }
    if (covered != P)
        return kiln_fail(err, "%s: the parts hold %ld of the %ld moments of tensor-parallel rank %d, stage %d",
                         ckpt_dir, covered, P, t, s);
    return 0;
}

// A sharded checkpoint's moments into the whole model m: each share's
// assembled from its parts, then put in its place.
static int consolidate_moments(const char *ckpt_dir, const Shards *sh, KilnModel *m, KilnErr *err) {
    int rc = 0;
    for (int s = 0; s < sh->layout.pp && rc == 0; s++)
        for (int t = 0; t < sh->layout.tp && rc == 0; t++) {
            KilnModel plan;
            KilnTensorParallel tp = {sh->layout.tp, t, NULL, NULL};
            KilnPipeStage pp = {sh->layout.pp, s, 0};
            if (gpt_plan(&plan, &m->cfg, &tp, &pp, err)) return kiln_wrap(err, "%s: its layout", ckpt_dir);
            long P = plan.layout.total;
            float *mv = malloc(sizeof(float) * 2 * (size_t)P);
            if (!mv) return kiln_fail(err, "out of memory");
            rc = share_moments(ckpt_dir, sh, t, s, P, mv, err);
            if (rc == 0) {
                gpt_share_copy(&plan, t, mv, m, m->m, 1);
                gpt_share_copy(&plan, t, mv + P, m, m->v, 1);
            }
            free(mv);
        }
    return rc;
}

int checkpoint_load(const char *ckpt_dir, KilnModel *m, int with_optimizer, KilnErr *err) {
    char p[1200];
    Buffer weights[] = {{m->params, ""}};
    Buffer moments[] = {{m->m, "exp_avg."}, {m->v, "exp_avg_sq."}};
    snprintf(p, sizeof p, "%s/" RUNDIR_CKPT_MODEL, ckpt_dir);
    if (load_buffers(p, m, weights, 1, err)) return -1;
    if (!with_optimizer) return 0;
    Shards sh;
    int rc = read_shards(ckpt_dir, &sh, err);
    if (rc < 0) return -1;
    if (rc == 0) {  // the moments are in the ranks' parts
        rc = consolidate_moments(ckpt_dir, &sh, m, err);
        shards_free(&sh);
        return rc;
    }
    snprintf(p, sizeof p, "%s/" RUNDIR_CKPT_OPTIM, ckpt_dir);
    return load_buffers(p, m, moments, 2, err);
}

int checkpoint_load_shard(const char *ckpt_dir, KilnModel *m, const KilnShardInfo *si, int with_optimizer,
                          KilnErr *err) {
    Shards sh;
    int rc = read_shards(ckpt_dir, &sh, err);
    if (rc) return rc < 0 ? -1 : kiln_fail(err, "%s is not a sharded checkpoint", ckpt_dir);
    const KilnShardInfo *l = &sh.layout;
    if (l->dp != si->dp || l->tp != si->tp || l->pp != si->pp || l->zero != si->zero) {
        shards_free(&sh);
        return kiln_fail(err, "%s was written with dp %d, tp %d, pp %d, zero %d, not this run's layout", ckpt_dir,
                         l->dp, l->tp, l->pp, l->zero);
    }
    int wi = -1, mi = -1;  // the parts with this share's weights and with this rank's moments
    for (int i = 0; i < sh.n; i++) {
        const KilnShardInfo *x = &sh.part[i];
        if (x->tp_rank == si->tp_rank && x->stage == si->stage && x->has_params) wi = i;
        if (x->tp_rank == si->tp_rank && x->stage == si->stage && x->opt_lo == m->opt_lo && x->opt_n == m->opt_n &&
            (!si->zero || x->dp_rank == si->dp_rank))
            mi = i;
    }
    with_optimizer = with_optimizer && m->opt_n > 0;  // ZeRO's last ranks may hold no moments
    if (wi < 0 || (with_optimizer && mi < 0))
        rc = kiln_fail(err, "%s: no part holds the %s of tensor-parallel rank %d, stage %d", ckpt_dir,
                       wi < 0 ? "weights" : "moments", si->tp_rank, si->stage);
    if (rc == 0) rc = read_part(ckpt_dir, sh.file[wi], "params", m->params, m->layout.total, err);
    if (rc == 0 && with_optimizer)
        rc = read_part(ckpt_dir, sh.file[mi], "exp_avg", m->m, m->opt_n, err) ||
             read_part(ckpt_dir, sh.file[mi], "exp_avg_sq", m->v, m->opt_n, err);
    shards_free(&sh);
    return rc ? -1 : 0;
}

int checkpoint_latest(const char *run_dir, char *path, size_t n, KilnErr *err) {
    char p[1200], *text;
    size_t len;
    snprintf(p, sizeof p, "%s/" RUNDIR_LATEST, run_dir);
    if (access(p, F_OK) != 0) return kiln_fail(err, "%s: no checkpoint in this run directory", run_dir);
    if (kiln_read_file(p, &text, &len, err)) return -1;
    while (len && (text[len - 1] == '\n' || text[len - 1] == ' ')) text[--len] = 0;
    if (!len || strchr(text, '/')) {
        free(text);
        return kiln_fail(err, "%s: malformed", p);
    }
    snprintf(path, n, "%s/%s", run_dir, text);
    free(text);
    return 0;
}

int checkpoint_verify(const char *ckpt_dir, KilnErr *err) {
    char p[1200], *text;
    size_t len;
    snprintf(p, sizeof p, "%s/" RUNDIR_CKPT_STATE, ckpt_dir);
    if (kiln_read_file(p, &text, &len, err)) return -1;
    KilnConfig cfg;
    KilnTrainState *st = malloc(sizeof *st);
    if (!st) {
        free(text);
        return kiln_fail(err, "out of memory");
    }
    int rc = checkpoint_parse_state(text, len, p, &cfg, st, err);
    free(st);
    // after the parse, so that a truncated file is called that; then an edit is caught
    if (rc == 0 && check_state_sha(ckpt_dir, err) < 0) rc = -1;
    cJSON *j = rc == 0 ? cJSON_ParseWithLength(text, len) : NULL;
    free(text);
    // every file the state names: model and optimizer, or the model and the ranks' parts
    const cJSON *sums = item(j, "sha256"), *want;
    if (rc == 0 && (!cJSON_IsObject(sums) || !item(sums, RUNDIR_CKPT_MODEL)))
        rc = kiln_fail(err, "%s/" RUNDIR_CKPT_STATE ": no sha256 for " RUNDIR_CKPT_MODEL, ckpt_dir);
    if (rc == 0 && !item(sums, RUNDIR_CKPT_OPTIM) && !item(j, "shards"))
        rc = kiln_fail(err, "%s/" RUNDIR_CKPT_STATE ": no sha256 for " RUNDIR_CKPT_OPTIM, ckpt_dir);
    const cJSON *each = rc == 0 ? sums : NULL;
    cJSON_ArrayForEach(want, each) {
        char got[65];
        const char *file = want->string;
        if (strcmp(file, RUNDIR_CKPT_MODEL) && strcmp(file, RUNDIR_CKPT_OPTIM) && !is_shard_name(file)) {
            rc = kiln_fail(err, "%s/" RUNDIR_CKPT_STATE ": sha256 of an unknown file %s", ckpt_dir, file);
            break;
        }
        snprintf(p, sizeof p, "%s/%s", ckpt_dir, file);
        if (!cJSON_IsString(want)) {
            rc = kiln_fail(err, "%s/" RUNDIR_CKPT_STATE ": no sha256 for %s", ckpt_dir, file);
        } else if (kiln_sha256_file(p, got, err) == 0) {
            if (strcmp(got, want->valuestring))
                rc = kiln_fail(err, "%s: sha256 %.12s... does not match the %.12s... recorded in " RUNDIR_CKPT_STATE
                                    " (corrupt)", p, got, want->valuestring);
        } else {
            rc = -1;
        }
        if (rc) break;
    }
    cJSON_Delete(j);
    return rc;
}

// Steps of RUN's ckpt-* directories, newest first; returns the count (at most cap).
static int list_checkpoints(const char *run_dir, int *steps, int cap) {
    DIR *d = opendir(run_dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < cap) {
        int step;
        if (!rundir_ckpt_step(e->d_name, &step)) steps[n++] = step;
    }
    closedir(d);
    for (int i = 1; i < n; i++)  // insertion sort, descending
        for (int k = i; k > 0 && steps[k] > steps[k - 1]; k--) {
            int t = steps[k];
            steps[k] = steps[k - 1];
            steps[k - 1] = t;
        }
    return n;
}

int checkpoint_find_good(const char *run_dir, char *path, size_t n, char *warn, size_t warn_n, KilnErr *err) {
    enum { CAP = 4096 };
    int *steps = malloc(sizeof(int) * CAP);
    if (!steps) return kiln_fail(err, "out of memory");
    int count = list_checkpoints(run_dir, steps, CAP);
    char latest[1024], cand[1100];
    int have_latest = checkpoint_latest(run_dir, latest, sizeof latest, NULL) == 0;
    size_t wlen = 0;
    if (warn_n) warn[0] = 0;
    int found = 0;
    for (int i = -1; i < count && !found; i++) {
        if (i < 0) {
            if (!have_latest) continue;
            snprintf(cand, sizeof cand, "%s", latest);
        } else {
            snprintf(cand, sizeof cand, "%s/" RUNDIR_CKPT_FMT, run_dir, steps[i]);
            if (have_latest && !strcmp(cand, latest)) continue;  // already tried
        }
        KilnErr why;
        if (checkpoint_verify(cand, &why) == 0) {
            snprintf(path, n, "%s", cand);
            found = 1;
            if (check_state_sha(cand, NULL) == 1 && wlen + 1 < warn_n)  // an older kiln's checkpoint
                snprintf(warn + wlen, warn_n - wlen, "%s%s has no " RUNDIR_CKPT_STATE_SHA " (written by an older kiln): "
                         RUNDIR_CKPT_STATE " accepted unchecked", wlen ? "\n" : "", cand);
        } else if (wlen + 1 < warn_n) {
            int w = snprintf(warn + wlen, warn_n - wlen, "%sskipping %s: %s", wlen ? "\n" : "", cand, why.msg);
            if (w > 0) wlen += (size_t)w < warn_n - wlen ? (size_t)w : warn_n - wlen - 1;
        }
    }
    free(steps);
    if (!found) return kiln_fail(err, "%s: no checkpoint that verifies%s", run_dir, count || have_latest ? "" : " (none written yet)");
    return 0;
}

int checkpoint_prune(const char *run_dir, int keep_last, int keep_every, KilnErr *err) {
    (void)err;
    if (keep_last <= 0) return 0;
    enum { CAP = 4096 };
    int *steps = malloc(sizeof(int) * CAP);
    if (!steps) return kiln_fail(err, "out of memory");
    int count = list_checkpoints(run_dir, steps, CAP);
    char latest[1024], p[1100];
    int have_latest = checkpoint_latest(run_dir, latest, sizeof latest, NULL) == 0;
    for (int i = keep_last; i < count; i++) {
        if (keep_every > 0 && steps[i] % keep_every == 0) continue;
        snprintf(p, sizeof p, "%s/" RUNDIR_CKPT_FMT, run_dir, steps[i]);
        if (have_latest && !strcmp(p, latest)) continue;
        remove_checkpoint(p);
    }
    free(steps);
    return 0;
}

int checkpoint_same_shape(const KilnModelConfig *a, const KilnModelConfig *b, const char *ckpt_dir, KilnErr *err) {
    // the keys that decide the parameter shapes (swiglu changes the MLP's)
    int a_glu = a->act == KILN_ACT_SWIGLU, b_glu = b->act == KILN_ACT_SWIGLU;
    const struct {
        const char *key;
        long saved, now;
    } k[] = {{"model.vocab_size", a->vocab_size, b->vocab_size}, {"model.block_size", a->block_size, b->block_size},
             {"model.n_layer", a->n_layer, b->n_layer},          {"model.n_head", a->n_head, b->n_head},
             {"model.n_kv_head", a->n_kv_head, b->n_kv_head},    {"model.n_embd", a->n_embd, b->n_embd},
             {"model.ffn_hidden", a->ffn_hidden, b->ffn_hidden}, {"model.pos", a->pos, b->pos},
             {"model.norm", a->norm, b->norm},                   {"model.act (swiglu or not)", a_glu, b_glu},
             {"model.bias", a->bias, b->bias},                   {"model.tied", a->tied, b->tied}};
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
        if (k[i].saved != k[i].now)
            return kiln_fail(err, "%s was trained with %s = %ld but the config says %ld: the model's shape would change "
                             "(start a new out_dir, or keep the checkpoint's model section)",
                             ckpt_dir, k[i].key, k[i].saved, k[i].now);
    return 0;
}

int checkpoint_open_model(const char *path, KilnConfig *cfg, KilnModel *m, char *resolved, KilnErr *err) {
    char dir[1024], latest[1100], warn[4096];
    snprintf(latest, sizeof latest, "%s/" RUNDIR_LATEST, path);
    if (access(latest, F_OK) == 0) {  // a run directory
        if (checkpoint_find_good(path, dir, sizeof dir, warn, sizeof warn, err)) return -1;
    } else {
        if (checkpoint_verify(path, err)) return -1;
        snprintf(dir, sizeof dir, "%s", path);
    }
    KilnTrainState *st = malloc(sizeof *st);
    if (!st) return kiln_fail(err, "out of memory");
    int rc = checkpoint_read_state(dir, cfg, st, err);
    free(st);
    if (rc) return -1;
    if (gpt_create(m, &cfg->model, 1, 1, err)) return -1;  // inference needs no training activations
    if (checkpoint_load(dir, m, 0, err)) {
        gpt_destroy(m);
        return -1;
    }
    if (resolved) snprintf(resolved, 1024, "%s", dir);
    return 0;
}
