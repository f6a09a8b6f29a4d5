// pretrain.c: the training loop, and what keeps a run alive and observable:
// exact resume, checkpoint rotation, the spike guard with rollback, the
// control file, heartbeats, metrics and progress.
//
//   per step:  control file? -> eval due? -> skipped batches? -> micro-batches
//              (forward/backward) -> guard -> clip -> optimizer -> metrics ->
//              heartbeat -> checkpoint due?
//
// Under mpirun every rank runs this loop on its replica, or its share of one,
// of the model (step.c, layout.c): the gradients and the loss are summed over
// ranks, and every rank takes the same optimizer step from the same numbers.
// Rank 0 alone writes (run directory, checkpoints, metrics, progress) and
// reads the control file; what it decides reaches the others at the top of
// each step (sync_step). parallel.mode async runs async.c instead of the loop.
#include "kiln/train.h"

#include "kiln/core.h"
#include "kiln/eval.h"
#include "kiln/guard.h"
#include "kiln/manifest.h"
#include "kiln/toxicity.h"

#include "backend/backend.h"
#include "core/rundir.h"
#include "dist/comm.h"
#include "run/control.h"
#include "run/kernels.h"
#include "run/pipeline.h"
#include "run/run.h"
#include "run/track.h"
#include "train/loss.h"
#include "train/optim.h"
#include "train/schedule.h"

#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>


void run_say(Run *r, const char *fmt, ...) {
    if (!r->log) return;
    if (r->tty) fputs("\r\033[K", r->log);  // clear the progress bar first
    va_list ap;
    va_start(ap, fmt);
    vfprintf(r->log, fmt, ap);
    va_end(ap);
    fflush(r->log);
}

double run_wall_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

// Records an event in metrics.jsonl (detail: a JSON object's text or NULL).
int run_event(Run *r, const char *kind, const char *detail, KilnErr *err) {
    if (!r->have_tracker) return 0;
    return tracker_event(&r->tr, r->st.step, run_wall_now(), kind, detail, err);
}

// RUN/heartbeat for the supervisor, at most once a second unless forced.
void run_heartbeat(Run *r, int force) {
    if (!r->writer) return;
    double now = kiln_now();
    if (!force && now - r->t_beat < 1.0) return;
    r->t_beat = now;
    rundir_write_heartbeat(r->dir, (long)getpid(), r->st.step, run_wall_now());  // a lost beat only delays a restart
}

// Applies the state's live settings to the trainer (after start, resume or rollback).
static void apply_live(Run *r) {
    r->live = r->cfg->train;
    r->live.weight_decay = r->st.weight_decay;
    r->live.grad_clip = r->st.grad_clip;
    r->live.optimizer = (KilnOptimizer)r->st.optimizer;
    r->m.cfg.act = (KilnAct)r->st.act;
}

// A resume with more train.steps than the checkpoint's run was planned for
// would re-plan the schedule over the new steps: a finished cosine would climb
// back up. Unless train.extend is stretch, the schedule up to the planned
// steps stays as it was (its decay end pinned) and the extension continues
// from its final lr (lr_at). A checkpoint written during an extension carries
// extend_from and its decay end, so resuming it changes nothing. A run whose
// train.decay_steps was set apart from its steps has a schedule that does not
// depend on them, and goes on as configured.
static void settle_extension(Run *r, const KilnConfig *saved) {
    KilnTrainConfig *t = &r->cfg_own.train;
    const KilnTrainConfig *s = &saved->train;
    if (t->extend == KILN_EXTEND_STRETCH || t->extend_from > 0) return;
    // a new extension (of a planned run, or of an extension) of a schedule whose
    // decay ended with the run; a decay_steps set apart from steps needs nothing
    if (t->steps > s->steps && s->decay_steps == s->steps) {
        t->extend_from = s->steps;
        t->extend_lr = lr_at(s, s->steps - 1);
        t->decay_steps = s->decay_steps;
    } else if (s->extend_from > 0 && s->extend_from < t->steps) {  // resuming one
        t->extend_from = s->extend_from;
        t->extend_lr = s->extend_lr;
        t->decay_steps = s->decay_steps;
    }
}

// The line said at resume about the learning rate, when the steps changed.
static void note_extension(Run *r, const KilnConfig *saved) {
    const KilnTrainConfig *t = &r->cfg_own.train, *s = &saved->train;
    if (t->steps == s->steps) return;
    if (t->steps < s->steps) {
        snprintf(r->extend_note, sizeof r->extend_note,
                 "train.steps %d -> %d: the %s schedule is re-planned over %d steps\n", s->steps, t->steps,
                 kiln_config_enum_name("train.schedule", t->schedule), t->steps);
        return;
    }
    if (t->extend != KILN_EXTEND_STRETCH && !t->extend_from) {
        snprintf(r->extend_note, sizeof r->extend_note,
                 "extending %d -> %d steps: the lr follows the %s schedule as configured (train.decay_steps = %d "
                 "was set apart from train.steps)\n",
                 s->steps, t->steps, kiln_config_enum_name("train.schedule", t->schedule), t->decay_steps);
        return;
    }
    int from = t->extend_from ? t->extend_from : s->steps;
    float before = lr_at(s, from - 1), after = lr_at(t, from), last = lr_at(t, t->steps - 1);
    if (t->extend == KILN_EXTEND_STRETCH)
        snprintf(r->extend_note, sizeof r->extend_note,
                 "extending %d -> %d steps (train.extend: stretch): the %s schedule is re-planned over %d steps; "
                 "the lr goes from %.3g (planned for step %d) to %.3g at step %d, %.3g at the end\n",
                 s->steps, t->steps, kiln_config_enum_name("train.schedule", t->schedule), t->steps, before, from,
                 lr_at(t, from - 1), from, last);
    else if (t->extend == KILN_EXTEND_DECAY)
        snprintf(r->extend_note, sizeof r->extend_note,
                 "extending %d -> %d steps (train.extend: decay): the lr holds at its final %.3g, then its last "
                 "%.0f%% decays linearly to min_lr %.3g (%.3g at the end); train.extend: constant holds it, "
                 "stretch re-plans the schedule\n",
                 s->steps, t->steps, after, 100.0 * t->wsd_decay_frac, t->min_lr, last);
    else
        snprintf(r->extend_note, sizeof r->extend_note,
                 "extending %d -> %d steps (train.extend: constant): the lr stays at its final %.3g; "
                 "train.extend: decay decays the extension's end to min_lr, stretch re-plans the schedule\n",
                 s->steps, t->steps, after);
}

// A sharded checkpoint written with this run's layout: every rank reads its
// own part (bit for bit, nothing gathered): 0. 1 when the checkpoint has
// another layout or is not sharded (the caller reads it whole); -1 on error.
static int load_own_parts(Run *r, const char *path, KilnErr *err) {
    KilnShardInfo l, me = run_part(r);
    int kind = checkpoint_layout(path, &l, err);
    if (kind < 0) return -1;
    if (kind == 1 || l.dp != me.dp || l.tp != me.tp || l.pp != me.pp || l.zero != me.zero) return 1;
    int bad = checkpoint_load_shard(path, &r->m, &me, 1, err) != 0, mine = bad;
    comm_allreduce_max_int(&r->comm, &bad, 1);  // all go on, or all stop
    if (bad && !mine) kiln_fail(err, "%s: another rank could not read its part", path);
    return bad ? -1 : 0;
}

// Loads a checkpoint's state, weights, moments and loader position (at_resume:
// the run starts from it; else the spike guard rolls back to it).
static int load_checkpoint(Run *r, const char *path, int at_resume, KilnErr *err) {
    KilnConfig saved;
    if (checkpoint_read_state(path, &saved, &r->st, err)) return KILN_TRAIN_BAD_INPUT;
    if (at_resume) {  // a rollback finds the extension settled
        settle_extension(r, &saved);
        note_extension(r, &saved);
        // the kernels' order of sums is part of a bit-exact resume: keep the run's
        if (r->cfg_own.train.bf16_kernels == KILN_BF16K_AUTO && saved.train.bf16_kernels != KILN_BF16K_AUTO) {
            r->cfg_own.train.bf16_kernels = saved.train.bf16_kernels;
            r->kernels.bf16_resumed = 1;
        }
        if (r->cfg_own.train.sgemm == KILN_SGEMM_AUTO && saved.train.sgemm != KILN_SGEMM_AUTO) {
            r->cfg_own.train.sgemm = saved.train.sgemm;
            r->kernels.sgemm_resumed = 1;
        }
    }
    if (checkpoint_same_shape(&saved.model, &r->cfg->model, path, err)) return KILN_TRAIN_BAD_INPUT;
    if (saved.train.seq_len != r->cfg->train.seq_len)
        return kiln_fail(err, "%s was trained with train.seq_len = %d but the config says %d: the data position "
                              "counts sequences of that length", path, saved.train.seq_len, r->cfg->train.seq_len),
               KILN_TRAIN_BAD_INPUT;
    int own = load_own_parts(r, path, err);  // 1: another layout's, read whole on rank 0 or every rank
    if (own < 0 || (own == 1 && (r->mp > 1 ? run_load_shares(r, path, err)
                                 : r->zero ? run_load_sharded(r, path, err)
                                           : checkpoint_load(path, &r->m, 1, err))))
        return KILN_TRAIN_BAD_INPUT;
    if (loader_seek(&r->train, r->st.loader_epoch, r->st.loader_shard, r->st.loader_pos, err))
        return kiln_wrap(err, "%s", path), KILN_TRAIN_BAD_INPUT;
    apply_live(r);
    return 0;
}

// The starting point: a resumed checkpoint, a warm start, or a fresh init.
static int start_state(Run *r, KilnErr *err) {
    const KilnPretrainOptions *o = r->opt;
    train_state_init(&r->st, r->cfg);
    if (o->resume) {
        char path[1024], warn[4096];
        if (!strcmp(o->resume, "latest")) {
            if (checkpoint_find_good(r->dir, path, sizeof path, warn, sizeof warn, err)) return KILN_TRAIN_BAD_INPUT;
            if (warn[0]) run_say(r, "warning: %s\n", warn);
        } else {
            if (checkpoint_verify(o->resume, err)) return KILN_TRAIN_BAD_INPUT;
            snprintf(path, sizeof path, "%s", o->resume);
        }
        int rc = load_checkpoint(r, path, 1, err);
        if (rc) return kiln_wrap(err, "resume"), rc;
        run_say(r, "resumed from %s at step %d\n", path, r->st.step);
        if (r->extend_note[0]) run_say(r, "%s", r->extend_note);
        return 0;
    }
    if (o->init_from) {
        KilnConfig saved;
        KilnTrainState *tmp = malloc(sizeof *tmp);
        if (!tmp) return kiln_fail(err, "out of memory");
        int rc = checkpoint_verify(o->init_from, err) || checkpoint_read_state(o->init_from, &saved, tmp, err) ||
                 checkpoint_same_shape(&saved.model, &r->cfg->model, o->init_from, err) ||
                 ((r->mp == 1 || r->writer) && checkpoint_load(o->init_from, run_whole(r), 0, err));
        int from_step = tmp->step;
        free(tmp);
        if (rc) return kiln_wrap(err, "warm start"), KILN_TRAIN_BAD_INPUT;
        if (r->mp > 1) run_share_distribute(r, 0);
        run_say(r, "warm start from %s (its step %d); fresh optimizer and schedule\n", o->init_from, from_step);
        return 0;
    }
    // model parallelism: the whole model's init, the same as one process's, shared out
    if (r->mp == 1 || r->writer) gpt_init_weights(run_whole(r), r->cfg->train.seed);
    if (r->mp > 1) run_share_distribute(r, 0);
    return 0;
}

// A name a run writes into its directory (RUN/lock and the supervisor's
// incidents.jsonl exist before a run's first step, so they do not count).
static int run_file(const char *name) {
    static const char *const names[] = {RUNDIR_LATEST, RUNDIR_METRICS, RUNDIR_ENV, RUNDIR_CONFIG, RUNDIR_TB,
                                        RUNDIR_HEARTBEAT, RUNDIR_PID, RUNDIR_CONTROL ".applied",
                                        RUNDIR_CONTROL ".rejected"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(name, names[i])) return 1;
    // checkpoints, and the leftovers of one written when a trainer died
    return !strncmp(name, "ckpt-", 5) || !strncmp(name, ".ckpt-", 6);
}

// What a trainer killed in the middle of a write leaves: a checkpoint's temp
// directory (RUN/.ckpt-N-<random>.tmp), one being replaced (.old-*.tmp), a
// heartbeat's temp file. Removed under the lock, so no live trainer's; other
// temp files (.kiln-*.tmp) may be a `kiln report`'s at work and are left.
static void remove_leftovers(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    char p[2048];
    for (struct dirent *e; (e = readdir(d));) {
        const char *n = e->d_name;
        size_t l = strlen(n);
        if (l < 5 || strcmp(n + l - 4, ".tmp") || snprintf(p, sizeof p, "%s/%s", dir, n) >= (int)sizeof p) continue;
        if (!strncmp(n, ".ckpt-", 6) || !strncmp(n, ".old-", 5)) kiln_remove_tree(p);
        else if (!strncmp(n, "." RUNDIR_HEARTBEAT "-", sizeof RUNDIR_HEARTBEAT + 1)) unlink(p);
    }
    closedir(d);
}

// A fresh start must not mix with an earlier run's checkpoints and metrics: it
// refuses a directory that holds any of a run's files (not only RUN/latest: a
// run killed before writing it leaves checkpoints and metrics all the same).
// Runs under the lock, so the files are no live trainer's.
static int check_fresh_dir(Run *r, KilnErr *err) {
    if (r->opt->resume) return 0;
    // the supervisor restarting its own run that died before a first checkpoint
    const char *restart = getenv(RUNDIR_RESTART_ENV);
    if (restart && !strcmp(restart, "1")) return 0;
    DIR *d = opendir(r->dir);
    if (!d) return 0;  // not there yet: nothing to mix with
    KilnBuf found = {0};
    int n = 0, ckpts = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (!run_file(e->d_name)) continue;
        if (!strncmp(e->d_name, "ckpt-", 5)) ckpts++;
        if (n++ < 4) kbuf_printf(&found, "%s%s", n > 1 ? ", " : "", e->d_name);
    }
    closedir(d);
    if (n > 4) kbuf_printf(&found, " and %d more", n - 4);
    int rc = 0;
    if (n && ckpts)
        rc = kiln_fail(err, "%s already holds a run (%s): continue it with --resume latest, or choose another out_dir",
                       r->dir, found.data);
    else if (n)
        rc = kiln_fail(err, "%s already holds a run (%s) with no checkpoint to resume: choose another out_dir, or "
                            "remove those files to start over", r->dir, found.data);
    kbuf_free(&found);
    return rc;
}

// After a checkpoint is in place at path (rank 0): prunes old ones and records it.
static int recorded(Run *r, const char *path, const char *why, KilnErr *err) {
    run_heartbeat(r, 1);
    if (checkpoint_prune(r->dir, r->cfg->train.keep_last, r->cfg->train.keep_every, err)) return -1;
    r->t_ckpt = kiln_now();
    KilnBuf d = {0};
    kbuf_puts(&d, "{\"path\":");
    kbuf_json_str(&d, path);
    kbuf_printf(&d, ",\"why\":\"%s\"}", why);
    int rc = run_event(r, "checkpoint", d.data, err);
    kbuf_free(&d);
    if (rc == 0 && r->have_tracker) rc = tracker_flush(&r->tr, err);
    if (rc == 0) run_say(r, "checkpoint %s (%s)\n", path, why);
    return rc;
}

// Before a checkpoint (rank 0): a big one may take a while, so the supervisor
// must not think us hung; and metrics first, so that a run resumed from it
// finds every step up to it logged.
static int before(Run *r, KilnErr *err) {
    run_heartbeat(r, 1);
    return r->have_tracker ? tracker_flush(&r->tr, err) : 0;
}

// A sharded checkpoint (tensor or pipeline parallelism, ZeRO): rank 0 opens
// it and writes the whole weights (gathered from replica 0's shares), every
// rank its part, rank 0 the manifest once all parts are in; on any failure
// nothing is installed and every rank returns the error.
static int save_sharded(Run *r, const char *why, KilnErr *err) {
    char tmp[1100] = "";
    int bad = r->writer && (before(r, err) || checkpoint_begin(r->dir, r->st.step, tmp, sizeof tmp, err));
    comm_bcast(&r->comm, &bad, sizeof bad, 0);
    if (bad) return r->writer ? -1 : kiln_fail(err, "rank 0 could not start the checkpoint of step %d", r->st.step);
    comm_bcast(&r->comm, tmp, sizeof tmp, 0);
    if (r->mp > 1 && r->dpc.rank == 0) run_share_gather(r);
    int rc = r->writer ? checkpoint_write_weights(tmp, r->cfg, run_whole(r), err) : 0;
    ShardRecord mine = {0, "", run_part(r)};
    if (mine.si.has_params || mine.si.opt_n > 0)
        mine.failed = checkpoint_write_shard(tmp, &r->m, &mine.si, mine.sha, err) != 0;
    if (rc) mine.failed = 1;
    ShardRecord *all = r->writer ? r->shard_recs : NULL;
    comm_gather_bytes(&r->comm, &mine, sizeof mine, all);
    int failed = 0, who = -1;
    for (int i = 0; r->writer && i < r->comm.size; i++)
        if (all[i].failed) failed = 1, who = who < 0 ? i : who;
    if (r->writer && !failed) {
        KilnShardInfo *parts = r->shard_parts;
        char(*shas)[65] = r->shard_shas;
        for (int i = 0; i < r->comm.size; i++) parts[i] = all[i].si, memcpy(shas[i], all[i].sha, 65);
        char path[1024];
        failed = checkpoint_commit_shards(r->dir, tmp, r->cfg, &r->st, parts, shas, r->comm.size, path, err) ||
                 recorded(r, path, why, err);
    } else if (r->writer) {
        checkpoint_abort(tmp);
        if (who > 0) kiln_fail(err, "checkpoint of step %d: rank %d could not write its part (its error is on "
                                    "its stderr)", r->st.step, who);
    }
    comm_bcast(&r->comm, &failed, sizeof failed, 0);
    if (failed && !r->writer && !mine.failed)
        kiln_fail(err, "checkpoint of step %d: another rank failed (rank 0 says which)", r->st.step);
    return failed ? -1 : 0;
}

// Writes a checkpoint of the current state, prunes old ones and records it.
// Every rank calls it at the same step. With one replica of the whole model
// per rank (no ZeRO) rank 0 writes it alone; otherwise it is sharded.
int run_save_checkpoint(Run *r, const char *why, KilnErr *err) {
    if (r->mp > 1 || r->zero) return save_sharded(r, why, err);
    if (!r->writer) return 0;
    char path[1024];
    if (before(r, err) || checkpoint_save(r->dir, r->cfg, &r->m, &r->st, path, err)) return -1;
    return recorded(r, path, why, err);
}

// JSON array of the documents under this step's rows ([source, id] pairs as
// objects), from the shard manifest; at most 64, then a count of the rest.
static void rows_documents(Run *r, KilnBuf *out) {
    kbuf_putc(out, '[');
    int listed = 0, more = 0;
    const char *prev_id = NULL;
    for (int i = 0; i < r->nrows && r->manifest; i++) {
        char shard[1024];
        snprintf(shard, sizeof shard, "%s", r->train.shards[r->rows_shard[i]].path);
        const char *base = basename(shard);
        for (long pos = r->rows_start[i], end = pos + r->train.T + 1; pos < end;) {
            const char *src, *id;
            long start, n;
            if (manifest_find(r->manifest, base, pos, &src, &id, &start, &n, NULL)) break;
            if (id != prev_id) {
                if (listed < 64) {
                    kbuf_puts(out, listed ? ",{\"shard\":" : "{\"shard\":");
                    kbuf_json_str(out, base);
                    kbuf_printf(out, ",\"pos\":%ld,\"source\":", pos);
                    kbuf_json_str(out, src);
                    kbuf_puts(out, ",\"id\":");
                    kbuf_json_str(out, id);
                    kbuf_putc(out, '}');
                    listed++;
                } else {
                    more++;
                }
                prev_id = id;
            }
            pos = start + n > pos ? start + n : pos + 1;
        }
    }
    kbuf_putc(out, ']');
    if (more) kbuf_printf(out, ",\"more_documents\":%d", more);
}

// The next micro-batch into tok/tgt, its rows' origins appended to this step's.
void run_next_micro_batch(Run *r) {
    int B = r->live.batch_size;
    loader_next(&r->train, r->tok, r->tgt);
    memcpy(r->rows_shard + r->nrows, r->train.row_shard, sizeof(int) * B);
    memcpy(r->rows_start + r->nrows, r->train.row_start, sizeof(long) * B);
    r->nrows += B;
}

// Throws away the batches of a step in the skip list (sets x micro_batches),
// recording the documents of each set.
static int skip_batches(Run *r, int sets, int micro_batches, KilnErr *err) {
    int B = r->live.batch_size;
    for (int set = 0; set < sets; set++) {
        r->nrows = 0;
        for (int i = 0; i < micro_batches; i++) run_next_micro_batch(r);
        r->st.tokens_seen += (long long)micro_batches * B * r->live.seq_len;
        KilnBuf d = {0};
        kbuf_printf(&d, "{\"set\":%d,\"of\":%d,\"micro_batches\":%d,\"documents\":", set + 1, sets, micro_batches);
        rows_documents(r, &d);
        kbuf_putc(&d, '}');
        int rc = run_event(r, "skip", d.data, err);
        kbuf_free(&d);
        if (rc) return -1;
    }
    run_say(r, "step %5d | throwing away %d step(s) of batches (spike guard)\n", r->st.step + 1, sets);
    r->consumed_skip = r->st.step;
    return 0;
}

// A spike at this step (its update not applied): skip, roll back or stop.
// must_roll_back: the update was applied and broke the weights, so skipping
// the batches is not enough.
static int handle_spike(Run *r, const KilnSpikeVerdict *v, double loss, double norm, int must_roll_back,
                        KilnErr *err) {
    const KilnTrainConfig *t = &r->cfg->train;
    int step = r->st.step;
    r->st.spikes++;
    r->st.lr_mult *= t->spike_lr_factor;
    char ckpt[1024] = "", warn[4096] = "";
    int rollback = t->spike_action == KILN_SPIKE_ROLLBACK &&
                   checkpoint_find_good(r->dir, ckpt, sizeof ckpt, warn, sizeof warn, NULL) == 0;
    const char *action = t->spike_action == KILN_SPIKE_STOP ? "stop" : rollback ? "rollback" : "skip";
    KilnBuf d = {0};
    kbuf_printf(&d, "{\"why\":\"%s\",\"loss\":%.9g,\"grad_norm\":%.9g,\"z_loss\":%.4g,\"z_norm\":%.4g,"
                    "\"window_loss_mean\":%.6g,\"window_loss_std\":%.6g,\"action\":\"%s\",\"lr_mult\":%.6g,"
                    "\"spikes\":%d,\"documents\":",
                v->why, isfinite(loss) ? loss : -1.0, isfinite(norm) ? norm : -1.0, v->z_loss, v->z_norm,
                v->mean_loss, v->std_loss, action, r->st.lr_mult, r->st.spikes);
    rows_documents(r, &d);
    kbuf_putc(&d, '}');
    int rc = run_event(r, "spike", d.data, err);
    kbuf_free(&d);
    run_say(r, "step %5d | spike: %s (loss %.4f, z %.1f, grad norm %.3f, z %.1f) -> %s\n", step + 1, v->why, loss, v->z_loss,
        norm, v->z_norm, action);
    if (rc) return -1;
    if (t->spike_action == KILN_SPIKE_STOP)
        return kiln_fail(err, "loss spike at step %d (%s) and train.spike_action is stop", step + 1, v->why);
    if (r->st.spikes > t->spike_max)
        return kiln_fail(err, "%d loss spikes, more than train.spike_max = %d: giving up (last at step %d: %s)",
                         r->st.spikes, t->spike_max, step + 1, v->why);
    if (!rollback && must_roll_back)
        return kiln_fail(err, "step %d: %s and there is no good checkpoint to roll back to (lower train.lr, or set "
                              "train.grad_clip)", step + 1, v->why);
    if (!rollback) {
        // the step's batches are gone from the loader already; the update is not applied
        if (train_state_add_skip(&r->st, step, 1)) return kiln_fail(err, "too many skipped steps (%d)", KILN_MAX_SKIPS);
        r->consumed_skip = step;
        return 0;
    }
    // roll back: the checkpoint's state, plus what this spike taught us
    KilnTrainState *keep = malloc(sizeof *keep);
    if (!keep) return kiln_fail(err, "out of memory");
    *keep = r->st;
    if ((rc = load_checkpoint(r, ckpt, 0, err))) {
        free(keep);
        return kiln_wrap(err, "rollback"), -1;
    }
    r->st.spikes = keep->spikes;
    r->st.lr_mult = keep->lr_mult;
    // the skip list as it was, plus one more set of batches for each step that fed the spike
    r->st.nskip = keep->nskip;
    memcpy(r->st.skip_step, keep->skip_step, sizeof keep->skip_step);
    memcpy(r->st.skip_count, keep->skip_count, sizeof keep->skip_count);
    int first = step - t->spike_skip_steps + 1;
    if (first < r->st.step) first = r->st.step;  // steps before the checkpoint are history
    for (int s = first; s <= step; s++)
        if (train_state_add_skip(&r->st, s, 1)) rc = kiln_fail(err, "too many skipped steps (%d)", KILN_MAX_SKIPS);
    free(keep);
    r->consumed_skip = -1;
    if (rc) return -1;
    if (warn[0]) run_say(r, "warning: %s\n", warn);
    run_say(r, "rolled back to %s (step %d); steps %d..%d will skip their batches\n", ckpt, r->st.step, first + 1, step + 1);
    // metrics past the checkpoint are replayed: drop them, as on resume
    if (r->writer) {
        tracker_close(&r->tr);
        r->have_tracker = 0;
        if (tracker_open(&r->tr, r->dir, r->st.step, run_wall_now(), err)) return -1;
        r->have_tracker = 1;
    }
    d = (KilnBuf){0};
    kbuf_printf(&d, "{\"from_step\":%d,\"to_step\":%d,\"skip_from\":%d,\"skip_to\":%d}", step, r->st.step, first, step);
    rc = run_event(r, "rollback", d.data, err);
    kbuf_free(&d);
    return rc;
}

// Moves a handled control file aside, keeping only the last of each kind.
static void control_move(Run *r, const char *suffix) {
    char from[1100], to[1200];
    snprintf(from, sizeof from, "%s/" RUNDIR_CONTROL, r->dir);
    snprintf(to, sizeof to, "%s/" RUNDIR_CONTROL ".%s", r->dir, suffix);
    rename(from, to);
}

// Reads RUN/control if present and applies it (see control.h). A bad file is
// rejected whole and logged; training goes on.
int run_read_control(Run *r, int signalled, KilnErr *err) {
    char path[1100], *text;
    size_t len;
    snprintf(path, sizeof path, "%s/" RUNDIR_CONTROL, r->dir);
    if (access(path, F_OK) != 0) {
        if (signalled) r->want_checkpoint = 1;  // SIGUSR1 without a control file: checkpoint now
        return 0;
    }
    KilnControl c;
    KilnErr why;
    int bad = kiln_read_file(path, &text, &len, &why);
    if (!bad) {
        bad = control_parse(text, len, path, &c, &why);
        free(text);
    }
    if (bad) {
        run_say(r, "step %5d | control file rejected, nothing applied: %s\n", r->st.step, why.msg);
        KilnBuf d = {0};
        kbuf_puts(&d, "{\"error\":");
        kbuf_json_str(&d, why.msg);
        kbuf_putc(&d, '}');
        int rc = run_event(r, "control_rejected", d.data, err);
        kbuf_free(&d);
        control_move(r, "rejected");
        return rc;
    }
    KilnTrainState *st = &r->st;
    KilnBuf d = {0}, msg = {0};
    char num[32];
    kbuf_putc(&d, '{');
    if (c.set_lr_mult) {
        kbuf_printf(&msg, " lr_mult %g -> %g;", st->lr_mult, c.lr_mult);
        kbuf_printf(&d, "\"lr_mult\":%s,", kiln_float_str(c.lr_mult, num));
        st->lr_mult = c.lr_mult;
    }
    if (c.set_weight_decay) {
        kbuf_printf(&msg, " weight_decay %g -> %g;", st->weight_decay, c.weight_decay);
        kbuf_printf(&d, "\"weight_decay\":%s,", kiln_float_str(c.weight_decay, num));
        st->weight_decay = c.weight_decay;
    }
    if (c.set_grad_clip) {
        kbuf_printf(&msg, " grad_clip %g -> %g;", st->grad_clip, c.grad_clip);
        kbuf_printf(&d, "\"grad_clip\":%s,", kiln_float_str(c.grad_clip, num));
        st->grad_clip = c.grad_clip;
    }
    if (c.set_optimizer && c.optimizer != st->optimizer) {
        const char *from = kiln_config_enum_name("train.optimizer", st->optimizer),
                   *to = kiln_config_enum_name("train.optimizer", c.optimizer);
        kbuf_printf(&msg, " optimizer %s -> %s (fresh state);", from, to);
        kbuf_printf(&d, "\"optimizer\":\"%s\",", to);
        st->optimizer = c.optimizer;
        st->opt_step = 0;
        optimizer_reset_state(&r->m);
    }
    if (c.set_act && (int)c.act != st->act) {
        const char *from = kiln_config_enum_name("model.act", st->act), *to = kiln_config_enum_name("model.act", c.act);
        kbuf_printf(&msg, " activation %s -> %s;", from, to);
        kbuf_printf(&d, "\"activation\":\"%s\",", to);
        st->act = (int)c.act;
    }
    if (c.checkpoint_now) kbuf_puts(&d, "\"checkpoint\":\"now\","), kbuf_puts(&msg, " checkpoint now;");
    if (c.eval_now) kbuf_puts(&d, "\"eval\":\"now\","), kbuf_puts(&msg, " eval now;");
    if (c.stop) kbuf_puts(&d, "\"stop\":\"now\","), kbuf_puts(&msg, " stop;");
    if (d.len > 1) d.len--;  // the last comma
    kbuf_putc(&d, '}');
    r->want_checkpoint |= c.checkpoint_now;
    r->want_eval |= c.eval_now;
    r->want_stop |= c.stop;
    apply_live(r);
    run_say(r, "step %5d | control:%s\n", st->step, msg.len ? msg.data : " nothing to change");
    int rc = run_event(r, "control", d.data, err);
    kbuf_free(&d);
    kbuf_free(&msg);
    control_move(r, "applied");
    return rc;
}

// Rank 0 alone evaluates: the ranks hold the same weights.
int run_eval(Run *r, KilnErr *err) {
    if (r->mp > 1 && r->dpc.rank == 0) run_share_gather(r);
    if (!r->writer) return 0;
    double vl;
    run_heartbeat(r, 1);
    if (evaluate_loss(run_whole(r), &r->val, r->live.eval_batches, &vl, err)) return -1;
    run_heartbeat(r, 1);
    r->st.val_loss = (float)vl;
    run_say(r, "step %5d | val loss %.4f\n", r->st.step, vl);
    if (!r->have_tracker) return 0;
    KilnMetric m = {"val_loss", vl};
    return tracker_log(&r->tr, r->st.step, run_wall_now(), &m, 1, err);
}

// eval.tasks: load the task files and the model's codec once.
static int open_benchmarks(Run *r, KilnErr *err) {
    const KilnEvalConfig *e = &r->cfg->eval;
    if (!r->writer || !e->tasks[0]) return 0;
    if (codec_for_model(&r->codec, &r->tokenizer, e->tokenizer[0] ? e->tokenizer : NULL, r->cfg, err))
        return kiln_wrap(err, "eval.tokenizer");
    char list[sizeof e->tasks], *save = NULL;
    snprintf(list, sizeof list, "%s", e->tasks);
    for (char *name = strtok_r(list, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
        char path[2200], dir[1024];
        if (e->task_dir[0]) snprintf(dir, sizeof dir, "%s", e->task_dir);
        else task_default_dir(dir, sizeof dir);  // as kiln eval finds them
        task_file_path(dir, name, path, sizeof path);
        const char *data = e->data_dir[0] ? e->data_dir : "../shared/data";
        if (toxicity_task_is(path)) {
            KilnToxOptions *t = realloc(r->tox, sizeof *t * (size_t)(r->ntox + 1));
            if (!t) return kiln_fail(err, "out of memory");
            r->tox = t;
            if (toxicity_task_options(path, data, e->limit, r->dir, &r->tox[r->ntox], err))
                return kiln_wrap(err, "eval.tasks");
            r->ntox++;
            continue;
        }
        KilnTask **grown = realloc(r->tasks, sizeof *grown * (size_t)(r->ntasks + 1));
        if (!grown) return kiln_fail(err, "out of memory");
        r->tasks = grown;
        if (task_load(&r->tasks[r->ntasks], path, data, 0, err))
            return kiln_wrap(err, "eval.tasks");
        r->ntasks++;
    }
    return 0;
}

static void benchmark_progress(void *ctx, long done, long n) {
    (void)done, (void)n;
    run_heartbeat(ctx, 0);  // a long evaluation must not look like a hang to the supervisor
}

// Scores eval.tasks with the current weights and logs eval/<task>/<metric>.
static int run_benchmarks(Run *r, KilnErr *err) {
    if (!r->ntasks && !r->ntox && !(r->mp > 1 && r->cfg->eval.tasks[0])) return 0;
    if (r->mp > 1 && r->dpc.rank == 0) run_share_gather(r);
    if (!r->writer) return 0;
    run_heartbeat(r, 1);
    double t0 = kiln_now();
    KilnEvalOptions o = {r->cfg->eval.shots, r->cfg->eval.limit, r->cfg->train.seed, NULL, 0, NULL, NULL, NULL,
                         benchmark_progress, r};
    KilnEvalResults res = {0};
    int rc = 0;
    for (int i = 0; i < r->ntasks && rc == 0; i++) rc = eval_task(run_whole(r), &r->codec, r->tasks[i], &o, &res, err);
    for (int i = 0; i < r->ntox && rc == 0; i++) {
        KilnToxResult tr;
        rc = toxicity_eval(run_whole(r), &r->codec, &r->tox[i], &tr, err);
        if (rc == 0) {
            rc = toxicity_add_results(&tr, r->tox[i].task, &res, err);
            toxicity_result_free(&tr);
        }
        run_heartbeat(r, 0);
    }
    // each metric, with its standard error and chance level beside it (NAME_stderr,
    // NAME_chance), which the report draws as a band and a line: noise seen as noise
    KilnMetric *ms = rc ? NULL : calloc((size_t)res.n * 3, sizeof *ms);
    char(*names)[180] = rc ? NULL : calloc((size_t)res.n * 3, sizeof *names);
    if (rc == 0 && (!ms || !names)) rc = kiln_fail(err, "out of memory");
    KilnBuf line = {0};
    int nm = 0;
    for (int i = 0; rc == 0 && i < res.n; i++) {
        const KilnMetricResult *x = &res.r[i];
        char base[160];
        snprintf(base, sizeof base, "eval/%s/%s%s%s", x->task, x->metric, x->filter[0] ? "/" : "", x->filter);
        snprintf(names[nm], sizeof names[nm], "%s", base);
        ms[nm] = (KilnMetric){names[nm], x->value}, nm++;
        if (isfinite(x->stderr_)) {
            snprintf(names[nm], sizeof names[nm], "%s_stderr", base);
            ms[nm] = (KilnMetric){names[nm], x->stderr_}, nm++;
        }
        if (x->chance > 0) {
            snprintf(names[nm], sizeof names[nm], "%s_chance", base);
            ms[nm] = (KilnMetric){names[nm], x->chance}, nm++;
        }
        kbuf_printf(&line, " %s/%s%s%s %.4f", x->task, x->metric, x->filter[0] ? ":" : "", x->filter, x->value);
    }
    if (rc == 0 && r->have_tracker) rc = tracker_log(&r->tr, r->st.step, run_wall_now(), ms, nm, err);
    if (rc == 0) run_say(r, "step %5d | eval%s (%.1f s)\n", r->st.step, line.len ? line.data : "", kiln_now() - t0);
    kbuf_free(&line);
    free(ms);
    free(names);
    eval_results_free(&res);
    run_heartbeat(r, 1);
    return rc ? kiln_wrap(err, "benchmarks at step %d", r->st.step) : 0;
}

static void progress_bar(Run *r, double loss, double tok_s, double eta) {
    if (!r->tty || !r->log) return;
    double now = kiln_now();  // redraw at most 10 times a second
    if (now - r->t_bar < 0.1 && r->st.step < r->live.steps) return;
    r->t_bar = now;
    int width = 24, done = (int)((double)r->st.step / r->live.steps * width);
    char bar[32];
    for (int i = 0; i < width; i++) bar[i] = i < done ? '#' : '-';
    bar[width] = 0;
    int e = (int)(eta + 0.5);
    fprintf(r->log, "\r\033[K[%s] step %d/%d | loss %.4f | %.0f tok/s | eta %dm%02ds", bar, r->st.step,
            r->live.steps, loss, tok_s, e / 60, e % 60);
    fflush(r->log);
}


// One optimizer step: 0, or 1 when a spike was handled instead (no step taken).
static int train_step(Run *r, KilnErr *err) {
    KilnTrainState *st = &r->st;
    int step = st->step;
    int sets = train_state_skips(st, step);
    if (sets && r->consumed_skip != step && skip_batches(r, sets, batch_micro_steps(&r->live, st->tokens_seen), err))
        return -1;
    int micro = batch_micro_steps(&r->live, st->tokens_seen);
    kiln_peak_rss_reset();  // the step's own peak, not the run's
    double t0 = kiln_now(), loss;
    if (run_forward_backward(r, micro, &loss, err)) return -1;
    // pipeline stages: the share of the forward and backward passes rank 0 (the first stage) spent waiting
    KilnMetric bubble = {"pp_bubble", r->pipe_wait_s / (kiln_now() - t0)};
    r->bubble_since_log += bubble.value;
    return run_apply_step(r, micro, loss, t0, &bubble, r->pp > 1, err);
}

// The update from the gradients in m.grads (their batch's mean loss: loss)
// and the step's records; t0: when the step began. extra: metrics the caller
// adds (the parameter server's staleness).
int run_apply_step(Run *r, int micro, double loss, double t0, const KilnMetric *extra, int nextra,
                      KilnErr *err) {
    const KilnTrainConfig *t = &r->cfg->train;
    KilnTrainState *st = &r->st;
    int step = st->step;
    double norm = run_grad_norm(r);
    // A non-finite loss or norm is a spike even with the z checks off: its
    // update would turn every weight into NaN (grad_clip cannot save it), so it
    // is never applied and the guard's rollback takes over.
    if (guard_enabled(t) || !isfinite(loss) || !isfinite(norm)) {
        KilnSpikeVerdict v;
        guard_check(&st->guard, t, loss, norm, &v);
        if (v.spike) return handle_spike(r, &v, loss, norm, 0, err) ? -1 : 1;
    }
    float lr = lr_at(&r->live, step) * st->lr_mult;
    st->opt_step++;
    int finite = optimizer_step(&r->m, &r->live, lr, st->opt_step, grad_clip_coef(norm, r->live.grad_clip));
    if (r->zero) {  // each rank updated its shard: all agree on the verdict, then share the weights
        int bad = !finite;
        comm_allreduce_max_int(&r->comm, &bad, 1);
        finite = !bad;
        if (finite) comm_allgather_f32(&r->dpc, r->m.params, r->m.layout.total);
    }
    if (!finite) {
        // a finite step that overflowed the weights or moments
        KilnSpikeVerdict v = {.spike = 1, .why = "weights became non-finite"};
        return handle_spike(r, &v, loss, norm, 1, err) ? -1 : 1;
    }
    if (guard_enabled(t)) guard_push(&st->guard, t, loss, norm);
    long batch_tokens = (long)micro * r->live.batch_size * r->live.seq_len;
    double dt = kiln_now() - t0;
    st->step++;
    st->tokens_seen += batch_tokens;
    st->loader_shard = r->train.shard;
    st->loader_pos = r->train.pos;
    st->loader_epoch = r->train.epoch;
    st->train_seconds += dt;
    double tok_s = batch_tokens / dt, mfu = r->peak_flops > 0 ? r->flops_per_token * tok_s / r->peak_flops : NAN;
    double rss_mb = kiln_peak_rss_bytes() / (1 << 20);
    if (rss_mb > r->rss_mb_since_log) r->rss_mb_since_log = rss_mb;
    double comm_s, comm_bytes;
    comm_take_stats(&r->comm, &comm_s, &comm_bytes);
    r->comm_s_since_log += comm_s;
    if (r->have_tracker) {
        KilnMetric ms[] = {{"loss", loss},          {"lr", lr},          {"grad_norm", norm},
                           {"batch_tokens", (double)batch_tokens},  {"tokens", (double)st->tokens_seen},
                           {"tokens_per_s", tok_s}, {"mfu", mfu},        {"ms", dt * 1e3},
                           {"peak_rss_mb", rss_mb > 0 ? rss_mb : NAN},
                           // rank 0's time in collectives and bytes it sent (several ranks only)
                           {"comm_ms", comm_s * 1e3},                {"comm_bytes", comm_bytes}};
        int n = (int)(sizeof ms / sizeof ms[0]) - (r->comm.size > 1 ? 0 : 2);
        if (tracker_log(&r->tr, st->step, run_wall_now(), ms, n, err)) return -1;
        if (nextra && tracker_log(&r->tr, st->step, run_wall_now(), extra, nextra, err)) return -1;
    }
    r->steps_since_log++;
    double eta = (t->steps - st->step) * (st->train_seconds / (st->step > 0 ? st->step : 1));
    if (st->step % t->log_every == 0 || st->step == t->steps) {
        // the line's rates are over the steps since the last line, evals and checkpoints included
        double now = kiln_now(), per = (now - r->t_log) / r->steps_since_log, rate = batch_tokens / per;
        int e = (int)(eta + 0.5);
        char comm_part[80] = "";
        if (r->comm.size > 1)
            snprintf(comm_part, sizeof comm_part, " | comm %.1f ms", 1e3 * r->comm_s_since_log / r->steps_since_log);
        if (r->pp > 1)
            snprintf(comm_part + strlen(comm_part), sizeof comm_part - strlen(comm_part), " | bubble %.0f%%",
                     100.0 * r->bubble_since_log / r->steps_since_log);
        run_say(r, "step %5d/%d | loss %.4f | lr %.2e | norm %.4f | %.1f ms%s | %.0f tok/s | mfu %.1f%% of %s | "
               "rss %.0f MiB | eta %dm%02ds\n",
            st->step, t->steps, loss, lr, norm, per * 1e3, comm_part, rate,
            r->peak_flops > 0 ? 100.0 * r->flops_per_token * rate / r->peak_flops : 0.0, r->peak_label,
            r->rss_mb_since_log, e / 60, e % 60);
        r->t_log = now;
        r->steps_since_log = 0;
        r->rss_mb_since_log = 0;
        r->comm_s_since_log = 0;
        r->bubble_since_log = 0;
    }
    progress_bar(r, loss, tok_s, eta);
    return 0;
}

// manifest.json beside the training shards, if there is one (to name documents).
static void open_manifest(Run *r) {
    char dir[1024], path[1100];
    snprintf(dir, sizeof dir, "%s", r->train.shards[0].path);
    snprintf(path, sizeof path, "%s/manifest.json", dirname(dir));
    KilnErr why;
    if (access(path, F_OK) == 0 && manifest_load(&r->manifest, path, &why))
        run_say(r, "warning: %s: cannot name the documents behind skipped batches: %s\n", path, why.msg);
}

static int checkpoint_due(Run *r) {
    const KilnTrainConfig *t = &r->cfg->train;
    if (r->st.step >= t->steps) return 0;  // the final one follows
    if (t->checkpoint_every > 0 && r->st.step % t->checkpoint_every == 0) return 1;
    return t->checkpoint_minutes > 0 && kiln_now() - r->t_ckpt >= t->checkpoint_minutes * 60.0;
}

// What follows a step that was taken: evaluation and benchmarks when due, then
// a checkpoint when due (evaluating first, so that a run resumed there does not
// evaluate again).
int run_after_step(Run *r, KilnErr *err) {
    const KilnTrainConfig *t = &r->cfg->train;
    int s = r->st.step, last = s == t->steps, every = r->cfg->eval.every;
    if (r->have_val && (last || (t->eval_every > 0 && s % t->eval_every == 0)) && run_eval(r, err)) return -1;
    if ((last || (every > 0 && s % every == 0)) && run_benchmarks(r, err)) return -1;
    int due = checkpoint_due(r);  // train.checkpoint_minutes: rank 0's clock decides
    if (r->zero || r->mp > 1) comm_bcast(&r->comm, &due, sizeof due, 0);
    return due && run_save_checkpoint(r, "scheduled", err) ? -1 : 0;
}

// Rank 0's decisions for this step (control file, signals, the results of its
// evaluations) to every rank, so that all take the same step.
static void sync_step(Run *r) {
    r->comm.step = r->st.step;  // for the watchdog's message
    if (r->comm.size == 1) return;
    int optimizer = r->st.optimizer;
    int want[3] = {r->want_checkpoint, r->want_eval, r->want_stop};
    comm_bcast(&r->comm, &r->st, sizeof r->st, 0);
    comm_bcast(&r->comm, want, sizeof want, 0);
    r->want_checkpoint = want[0], r->want_eval = want[1], r->want_stop = want[2];
    if (!r->writer && r->st.optimizer != optimizer) optimizer_reset_state(&r->m);  // as read_control did on rank 0
    apply_live(r);
}

static int run_loop(Run *r, KilnErr *err) {
    const KilnTrainConfig *t = &r->cfg->train;
    const KilnPretrainOptions *o = r->opt;
    while (r->st.step < t->steps) {
        // a signal to any rank is a signal to the job (mpirun forwards SIGTERM to every rank)
        int signals[2] = {o->control_requested && *o->control_requested, o->stop_requested && *o->stop_requested};
        if (signals[0]) *o->control_requested = 0;
        comm_allreduce_max_int(&r->comm, signals, 2);
        if (r->writer && run_read_control(r, signals[0], err)) return -1;
        if (signals[1]) r->want_stop = 1;
        sync_step(r);
        if (r->want_checkpoint || r->want_stop) {
            if (run_save_checkpoint(r, r->want_stop ? "stop" : "requested", err)) return -1;
            r->want_checkpoint = 0;
        }
        if (r->want_stop) {
            run_say(r, "stopped at step %d with a checkpoint; resume with --resume latest\n", r->st.step);
            return run_event(r, "stop", NULL, err) ? -1 : KILN_TRAIN_STOPPED;
        }
        if (r->have_val && r->want_eval) {
            if (run_eval(r, err)) return -1;
            r->want_eval = 0;
        }
        int rc = train_step(r, err);
        if (rc < 0) return -1;
        run_heartbeat(r, 0);
        if (rc > 0) continue;  // a spike: the step was skipped or rolled back
        if (run_after_step(r, err)) return -1;
    }
    if (run_save_checkpoint(r, "final", err)) return -1;
    run_say(r, "finished: %d steps, %.1f s of training\n", r->st.step, r->st.train_seconds);
    return run_event(r, "end", NULL, err);
}

static int run_open(Run *r, KilnErr *err) {
    const KilnConfig *cfg = r->cfg;
    const KilnTrainConfig *t = &cfg->train;
    int B = t->batch_size, T = t->seq_len, ranks = r->comm.size;
    if (!cfg->data.train[0]) return kiln_fail(err, "data.train is not set: no training shards"), KILN_TRAIN_BAD_INPUT;
    r->async = cfg->parallel.mode == KILN_PAR_ASYNC;
    if (r->async && ranks < 2)
        return kiln_fail(err, "parallel.mode: async needs a parameter server and at least one worker: run "
                              "`mpirun -np 3 kiln pretrain ...` (rank 0 serves, the others compute)"),
               KILN_TRAIN_BAD_INPUT;
    if (r->async && (t->batch_ramp_start || cfg->parallel.dp))
        return kiln_fail(err, "parallel.mode: async takes neither train.batch_ramp_start nor parallel.dp: each "
                              "worker computes whole steps of train.grad_accum micro-batches"),
               KILN_TRAIN_BAD_INPUT;
    int tp = cfg->parallel.tp, pp = cfg->parallel.pp, mpr = tp * pp;
    int dp = cfg->parallel.dp ? cfg->parallel.dp : ranks / mpr;
    if (ranks % mpr)
        return kiln_fail(err, "parallel.tp x parallel.pp = %d x %d does not divide the job's %d ranks (mpirun -np): "
                              "each data-parallel replica is tp x pp ranks", tp, pp, ranks), KILN_TRAIN_BAD_INPUT;
    if (dp * mpr != ranks && ranks == 1)
        return kiln_fail(err, "parallel.dp = %d, parallel.tp = %d and parallel.pp = %d need %d ranks, but this process "
                              "was not started by an MPI launcher: run `mpirun -np %d kiln pretrain ...`", dp, tp, pp,
                         dp * mpr, dp * mpr),
               KILN_TRAIN_BAD_INPUT;
    if (dp * mpr != ranks)
        return kiln_fail(err, "parallel.dp = %d, parallel.tp = %d and parallel.pp = %d make %d ranks, but the job has "
                              "%d (mpirun -np): the layout must use every rank (parallel.dp 0 takes ranks / (tp x pp))",
                         dp, tp, pp, dp * mpr, ranks),
               KILN_TRAIN_BAD_INPUT;
    if (!r->async && t->grad_accum % dp)
        return kiln_fail(err, "train.grad_accum = %d does not divide among %d data-parallel replicas: each step's "
                              "micro-batches are shared out, so make it a multiple of %d", t->grad_accum, dp, dp),
               KILN_TRAIN_BAD_INPUT;
    r->dp = dp, r->tp = tp, r->pp = pp, r->mp = mpr;
    // world rank w = (p x dp + d) x tp + t
    int w = r->comm.rank, tr = w % tp, dr = w / tp % dp, pr = w / (tp * dp);
    int ends = pp > 1 && cfg->model.tied && (pr == 0 || pr == pp - 1);  // the stages that hold the embedding
    if (comm_split(&r->comm, pr * dp + dr, tr, &r->tpc, err) || comm_split(&r->comm, pr * tp + tr, dr, &r->dpc, err) ||
        comm_split(&r->comm, dr * tp + tr, pr, &r->ppc, err) || comm_split(&r->comm, dr, pr * tp + tr, &r->mpc, err) ||
        comm_split(&r->comm, ends ? dr * tp + tr : ranks + w, pr, &r->embc, err))
        return -1;
    if (loader_open(&r->train, cfg->data.train, B, T, cfg->model.vocab_size, cfg->data.shuffle,
                    kiln_hash64(t->seed + 1), err))
        return kiln_wrap(err, "data.train"), KILN_TRAIN_BAD_INPUT;
    r->have_val = cfg->data.val[0] != 0;
    if (r->have_val && loader_open(&r->val, cfg->data.val, B, T, cfg->model.vocab_size, 0, 0, err)) {
        r->have_val = 0;
        return kiln_wrap(err, "data.val"), KILN_TRAIN_BAD_INPUT;
    }
    KilnModelConfig mc = cfg->model;
    mc.recompute = t->recompute;
    mc.precision = t->precision;
    KilnTensorParallel tpg = {tp, tr, run_tp_allreduce, &r->tpc};
    KilnPipeStage stage = {pp, pr, pp - pr};
    if (gpt_create_share(&r->m, &mc, B, T, &tpg, &stage, err)) return KILN_TRAIN_BAD_INPUT;
    r->zero = dp > 1 ? cfg->parallel.zero : 0;
    if (mpr > 1 && r->writer) {
        if (gpt_create(&r->full, &mc, B, T, err))
            return kiln_wrap(err, "rank 0's whole model (checkpoints and evaluations under parallel.tp and pp)");
        long most = 0;
        for (int j = 1; j < mpr; j++) {
            KilnModel plan;
            run_share_plan(r, j, &plan);
            most = plan.layout.total > most ? plan.layout.total : most;
        }
        if (!(r->sharebuf = backend_alloc(most > 0 ? most : 1, err))) return kiln_wrap(err, "a share in passing");
    }
    if (r->writer && (mpr > 1 || r->zero)) {  // the parts of a sharded checkpoint, heard of
        r->shard_recs = calloc((size_t)ranks, sizeof *r->shard_recs);
        r->shard_parts = calloc((size_t)ranks, sizeof *r->shard_parts);
        r->shard_shas = calloc((size_t)ranks, sizeof *r->shard_shas);
        if (!r->shard_recs || !r->shard_parts || !r->shard_shas) return kiln_fail(err, "out of memory");
    }
    if (mpr > 1 && r->zero && dr == 0 && !(r->mvbuf = backend_alloc(2 * r->m.layout.total, err)))
        return kiln_wrap(err, "parallel.zero: this share's moments in passing");
    if (pp > 1) {
        long BT = (long)B * T, n = t->grad_accum / dp;
        r->pipe_tok = malloc(sizeof(int32_t) * (size_t)(n * BT));
        r->pipe_tgt = malloc(sizeof(int32_t) * (size_t)(n * BT));
        r->pipe_micro = malloc(sizeof(int) * (size_t)n);
        if (!r->pipe_tok || !r->pipe_tgt || !r->pipe_micro) return kiln_fail(err, "out of memory");
    }
    if (r->zero) {
        long lo, hi, P = r->m.layout.total;
        if (P > 2147483647L)
            return kiln_fail(err, "parallel.zero: %ld parameters do not fit MPI's int counts", P),
                   KILN_TRAIN_BAD_INPUT;
        comm_shard(P, dp, r->dpc.rank, &lo, &hi);
        if (gpt_shard_optimizer(&r->m, lo, hi, err)) return -1;
        long n = hi - lo > 0 ? hi - lo : 1;
        r->gshard = malloc(sizeof(float) * (size_t)n);
        r->gpiece = r->zero == 2 ? malloc(sizeof(float) * (size_t)n) : NULL;
        if (!r->gshard || (r->zero == 2 && !r->gpiece)) return kiln_fail(err, "out of memory");
        r->m.gopt = r->gshard;
        if (r->zero == 2 && gpt_shard_grads(&r->m, err)) return -1;
    }
    r->tok = malloc(sizeof(int32_t) * B * T);
    r->tgt = malloc(sizeof(int32_t) * B * T);
    r->rows_shard = malloc(sizeof(int) * B * t->grad_accum);
    r->rows_start = malloc(sizeof(long) * B * t->grad_accum);
    if (!r->tok || !r->tgt || !r->rows_shard || !r->rows_start) return kiln_fail(err, "out of memory");
    // one trainer per run directory, and nothing of another run's in it on a fresh start
    if (r->writer) {
        if (kiln_mkdirs(r->dir, err)) return KILN_TRAIN_BAD_INPUT;
        if (rundir_lock(r->dir, "kiln pretrain", &r->lock_fd, err)) return KILN_TRAIN_BAD_INPUT;
        if (check_fresh_dir(r, err)) return KILN_TRAIN_BAD_INPUT;
        remove_leftovers(r->dir);
    }
    int rc = start_state(r, err);
    if (rc) return rc;
    if (kernels_choose(&r->m, &r->cfg_own, &r->comm, &r->kernels, err)) return KILN_TRAIN_BAD_INPUT;
    if (r->full.params) {  // rank 0's whole model evaluates on the same kernels
        memcpy(r->full.sgemm_onednn, r->m.sgemm_onednn, sizeof r->m.sgemm_onednn);
        if (r->m.bk && gpt_bf16_kernels(&r->full, 1, err)) return -1;
    }
    apply_live(r);
    r->consumed_skip = -1;
    double now = run_wall_now();
    if (r->writer) {
        if (tracker_open(&r->tr, r->dir, r->opt->resume ? r->st.step : -1, now, err)) return -1;
        r->have_tracker = 1;
    }
    KilnPeak peak = {0};
    int bf16k = r->m.bk && t->peak_tflops <= 0;  // MFU against the bf16 kernels' own peak, from fp32's figures
    if (t->peak_tflops > 0) peak.peak = t->peak_tflops * 1e12, peak.peak_is = "train.peak_tflops";
    else backend_peak(&peak, bf16k ? 0 : 2048);
    if (bf16k) bf16_gemm_peak(r->m.bk, &peak, 2048);
    if (r->writer && run_env_write(r->dir, r->cfg, r->opt->argc, r->opt->argv, omp_get_max_threads(), &peak,
                                  bf16k ? "oneDNN bf16 matmul" : "sgemm", err))
        return -1;
    open_manifest(r);
    if ((rc = open_benchmarks(r, err))) return KILN_TRAIN_BAD_INPUT;
    r->flops_per_token = gpt_flops_per_token(&r->m, T);
    r->peak_flops = peak.peak * (r->async ? ranks - 1 : ranks);  // rank 0's peak for each computing rank
    // bf16 on the sgemm (rounded operands) has fp32's peak; on bf16 kernels their own
    snprintf(r->peak_label, sizeof r->peak_label, "%s",
             t->peak_tflops > 0                       ? "peak_tflops"
             : strcmp(peak.peak_is, "theoretical") ? (bf16k ? "bf16 matmul peak" : "fp32 sgemm peak")
                                                   : (bf16k ? "bf16 peak" : "fp32 peak"));
    if (ranks > 1) {
        size_t n = strlen(r->peak_label);
        snprintf(r->peak_label + n, sizeof r->peak_label - n, " x %d ranks", r->async ? ranks - 1 : ranks);
    }
    run_say(r, "model: %ld parameters, %d layers, %d heads (%d kv), width %d, vocab %d\n", gpt_num_params(&r->m),
        cfg->model.n_layer, cfg->model.n_head, cfg->model.n_kv_head, cfg->model.n_embd, cfg->model.vocab_size);
    run_say(r, "data: %ld training tokens in %d shard(s)%s; %ld tokens per step%s; %d threads\n",
        loader_total_tokens(&r->train), r->train.nshards, r->have_val ? "" : ", no validation split",
        (long)B * T * t->grad_accum, t->batch_ramp_start ? " after the batch ramp" : "", omp_get_max_threads());
    if (r->async)
        run_say(r, "parallel: asynchronous SGD, rank 0 a parameter server for %d workers (each computes whole steps of "
               "%d micro-batches on the weights it last received; gradients more than %d updates stale are dropped; "
               "the spike guard's skipped batches do not apply), %d threads per rank\n",
            ranks - 1, t->grad_accum, cfg->parallel.staleness, omp_get_max_threads());
    else if (mpr > 1) {
        char tp_part[200] = "", pp_part[300] = "";
        if (tp > 1)
            snprintf(tp_part, sizeof tp_part, "; tensor parallel over %d ranks (each holds 1/%d of the heads, MLP and "
                     "vocabulary; 4 all-reduces of the activations per block)", tp, tp);
        if (pp > 1)
            snprintf(pp_part, sizeof pp_part, "; %d pipeline stages of %d blocks, %d micro-batches a step in the 1F1B "
                     "order (bubble %.0f%% in theory, (stages-1)/(micro-batches+stages-1))", pp, cfg->model.n_layer / pp,
                     t->grad_accum / dp, 100 * pipeline_bubble(pp, t->grad_accum / dp));
        run_say(r, "parallel: %d ranks, %d data-parallel replica(s) of %d rank(s)%s%s; %s; rank 0 also holds the whole "
               "model for checkpoints and evaluations; %d threads per rank\n", ranks, dp, mpr, tp_part, pp_part,
            dp == 1      ? "one replica"
            : r->zero    ? (r->zero == 2 ? "ZeRO-2 over the replicas" : "ZeRO-1 over the replicas")
                         : "gradients all-reduced over the replicas",
            omp_get_max_threads());
    }
    else if (ranks > 1)
        run_say(r, "parallel: %d ranks, data parallel (each computes %d of a step's %d micro-batches; %s), %d threads "
               "per rank\n", ranks, t->grad_accum / ranks, t->grad_accum,
            r->zero == 2 ? "ZeRO-2: each block's gradients reduce-scattered as its backward pass ends, on every "
                           "micro-batch, the other tensors' after the last; each rank keeps only its shard of the summed "
                           "gradients and of the optimizer state and updates its shard of the weights, weights "
                           "all-gathered"
            : r->zero    ? "ZeRO-1: gradients reduce-scattered, each rank updates its shard of the weights with its "
                           "shard of the optimizer state, weights all-gathered"
                    : "gradients all-reduced while the backward pass goes on",
            omp_get_max_threads());
    if (t->peak_tflops > 0)
        run_say(r, "MFU against %.1f GFLOP/s (train.peak_tflops)\n", r->peak_flops / 1e9);
    else
        run_say(r, "MFU against %.1f GFLOP/s, the %s%s peak: %d cores x %.2f GHz (%s) x %d FLOP/cycle (%s); "
               "%s measured %.1f\n", r->peak_flops / 1e9, bf16k ? "bf16 " : "", peak.peak_is, peak.cores, peak.ghz,
            peak.clock_from, peak.flops_per_cycle, peak.per_cycle_why, bf16k ? "bf16 matmul" : "sgemm",
            peak.measured / 1e9);
    KilnMemPlan mp = gpt_memory_plan(&r->m);
    const double MiB = 1 << 20;
    char bf16_part[64] = "";
    if (mp.bf16_weights > 0) snprintf(bf16_part, sizeof bf16_part, ", bf16 weight copies %.1f", mp.bf16_weights / MiB);
    run_say(r, "memory%s: weights %.1f MiB, gradients %.1f, optimizer state %.1f, activations %.1f (batch %d x %d)%s; "
           "%.1f MiB in all\n", ranks > 1 ? " per rank" : "", mp.weights / MiB, mp.grads / MiB, mp.optim / MiB, mp.acts / MiB, B, T, bf16_part,
        (mp.weights + mp.grads + mp.optim + mp.acts + mp.bf16_weights) / MiB);
    KilnBackendInfo be = backend_info();
    if (be.blas && getenv(KILN_CORETYPE_ENV))  // kiln replaced the library's choice: say so
        run_say(r, "kernels: %s %s (%s)\n", be.blas, be.blas_core, be.blas_core_why);
    run_say(r, "sgemm: %s for the forward, input-gradient and weight-gradient products: %s\n",
        kiln_config_enum_name("train.sgemm", t->sgemm), r->kernels.sgemm);
    if (t->precision == KILN_PREC_BF16)
        run_say(r, "precision: bf16 matmuls; the linear layers %s; the attention's on the fp32 sgemm with bf16-rounded "
               "operands; weights, optimizer, norms, softmax and loss in fp32\n", r->kernels.bf16);
    KilnBuf d = {0};
    kbuf_printf(&d, "{\"pid\":%ld,\"threads\":%d,\"from\":", (long)getpid(), omp_get_max_threads());
    const char *from = r->opt->resume ? r->opt->resume : r->opt->init_from ? r->opt->init_from : "init";
    kbuf_json_str(&d, from);
    // each session's command, for the report (env.json holds only the last one)
    kbuf_puts(&d, ",\"command\":[");
    for (int i = 0; i < r->opt->argc; i++) {
        if (i) kbuf_putc(&d, ',');
        kbuf_json_str(&d, r->opt->argv[i]);
    }
    kbuf_puts(&d, "]}");
    rc = run_event(r, r->opt->resume ? "resume" : "start", d.data, err);
    kbuf_free(&d);
    if (r->writer) rundir_write_pid(r->dir, (long)getpid());  // only for `kiln report`: training goes on without it
    r->t_ckpt = r->t_log = kiln_now();
    run_heartbeat(r, 1);
    char beat[1100];
    snprintf(beat, sizeof beat, "%s/" RUNDIR_HEARTBEAT, r->dir);
    if (rc == 0 && comm_watchdog_start(&r->comm, cfg->parallel.timeout_s, beat, err)) rc = -1;
    return rc;
}

static void run_close(Run *r) {
    if (r->have_tracker) tracker_close(&r->tr);
    if (r->writer) rundir_remove_pid(r->dir);
    if (r->manifest) manifest_free(r->manifest);
    for (int i = 0; i < r->ntasks; i++) task_free(r->tasks[i]);
    free(r->tasks);
    free(r->tox);
    if (r->tokenizer) tokenizer_free(r->tokenizer);
    free(r->tok);
    free(r->tgt);
    free(r->rows_shard);
    free(r->rows_start);
    free(r->gshard);
    free(r->gpiece);
    backend_free(r->sharebuf);
    backend_free(r->mvbuf);
    free(r->shard_recs);
    free(r->shard_parts);
    free(r->shard_shas);
    free(r->pipe_tok);
    free(r->pipe_tgt);
    free(r->pipe_micro);
    if (r->m.params) gpt_destroy(&r->m);
    if (r->full.params) gpt_destroy(&r->full);
    if (r->train.shards) loader_close(&r->train);
    if (r->have_val) loader_close(&r->val);
    rundir_unlock(r->lock_fd);  // last: the run's files are complete
}

int pretrain_run(const KilnConfig *cfg, const KilnPretrainOptions *opt, KilnErr *err) {
    backend_set_threads(cfg->train.threads);
    Run *r = calloc(1, sizeof *r);
    if (!r) return kiln_fail(err, "out of memory");
    r->cfg_own = *cfg;
    r->cfg = &r->cfg_own;
    r->opt = opt;
    r->dir = cfg->out_dir;
    r->lock_fd = -1;
    if (comm_init(&r->comm, err)) {
        free(r);
        return KILN_TRAIN_BAD_INPUT;
    }
    r->writer = r->comm.rank == 0;
    r->log = r->writer ? opt->log : NULL;
    r->tty = r->log && isatty(fileno(r->log));
    int rc = run_open(r, err);
    if (rc == 0) rc = !r->async ? run_loop(r, err) : r->writer ? run_async_server(r, err) : run_async_worker(r, err);
    if (r->tty && r->log) fputc('\n', r->log);
    if (rc < 0 && r->have_tracker) {
        KilnBuf d = {0};
        kbuf_puts(&d, "{\"error\":");
        kbuf_json_str(&d, err->msg);
        kbuf_putc(&d, '}');
        run_event(r, "error", d.data, NULL);
        kbuf_free(&d);
        tracker_flush(&r->tr, NULL);
    }
    run_close(r);
    // after an error a rank leaves without it: its launcher then ends the others,
    // which may be waiting in a collective for it
    if (rc >= 0) {
        comm_group_free(&r->embc);
        comm_group_free(&r->mpc);
        comm_group_free(&r->ppc);
        comm_group_free(&r->tpc);
        comm_group_free(&r->dpc);
        comm_finalize(&r->comm);
    }
    free(r);
    return rc < 0 ? (rc == KILN_TRAIN_BAD_INPUT ? KILN_TRAIN_BAD_INPUT : KILN_TRAIN_FAILED) : rc;
}
