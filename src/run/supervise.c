// supervise.c: restarts a crashed or hung training command (see supervise.h).
// One loop: launch -> watch (exit, heartbeat, stop signals) -> classify ->
// budget and back-off -> before_restart hook -> launch with --resume latest.
#include "kiln/supervise.h"

#include "core/rundir.h"
#include "kiln/core.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

extern char **environ;

// A signal handler gets no context pointer, so the stop request it records has
// to live at file level. Only the handler writes these; the loop reads them.
static volatile sig_atomic_t stop_signal_seen;  // the last SIGTERM/SIGINT received
static volatile sig_atomic_t stop_signal_count; // how many were received

static void on_stop_signal(int sig) {
    stop_signal_seen = sig;
    stop_signal_count++;
}

void supervise_defaults(KilnSuperviseOptions *o) {
    memset(o, 0, sizeof *o);
    o->max_restarts = 5;
    o->budget_window_s = 3600;
    o->heartbeat_timeout_s = 300;
    o->kill_grace_s = 30;
    o->backoff_initial_s = 5;
    o->backoff_max_s = 300;
}

// ---------------------------------------------------------------- parts

double supervise_backoff(const KilnSuperviseOptions *o, int k) {
    double b = o->backoff_initial_s;
    for (int i = 0; i < k && b < o->backoff_max_s; i++) b *= 2;
    return b < o->backoff_max_s ? b : o->backoff_max_s;
}

int supervise_resume_args(char *const argv[], const char **out, int cap) {
    static const char RESUME[] = "--resume", LATEST[] = "latest";
    int n = 0, replaced = 0;
    for (int i = 0; argv[i]; i++) {
        if (n + 3 > cap) return -1;  // room for a possible append and the NULL
        if (!strcmp(argv[i], RESUME)) {
            out[n++] = RESUME, out[n++] = LATEST, replaced = 1;
            if (argv[i + 1]) i++;  // its old value
        } else if (!strncmp(argv[i], "--resume=", 9)) {
            out[n++] = RESUME, out[n++] = LATEST, replaced = 1;
        } else {
            out[n++] = argv[i];
        }
    }
    if (!replaced) out[n++] = RESUME, out[n++] = LATEST;
    out[n] = NULL;
    return n;
}

// ---------------------------------------------------------------- state

// The heartbeat file as last seen. Any change of inode, mtime, size or text is
// a sign of life; comparing with the file as it was at launch means a heartbeat
// left over from the previous child never counts for the new one.
typedef struct {
    int exists;
    ino_t ino;
    struct timespec mtime;
    off_t size;
    char text[128];
    size_t len;
} HbSnap;

typedef struct {
    const KilnSuperviseOptions *o;
    char hb_path[1100], latest_path[1100], incidents_path[1100];
    int forwarded;   // stop signals already forwarded (compared with stop_signal_count)
    int stop_sig;    // the signal that asked us to stop; 0 while running normally
    HbSnap snap;
    int hb_seen;     // the current child changed the heartbeat at least once
    long hb_step;    // its last parsed step; -1 when none
    double hb_moved; // kiln_now() of the last change, or of the launch
    double *restart_t; // ring of the last max_restarts restart times (kiln_now)
    int nrestart;      // restarts so far (all time)
} Sup;

// One incident: numbers < 0 (signal 0, backoff < 0) are absent.
typedef struct {
    const char *kind;    // crash, hang, restart, giveup, stop
    int exit_code;       // -1: none
    int signal;          // 0: none
    long step;           // -1: unknown
    int restart;         // restarts so far (for kind restart: this one's number)
    double backoff_s;    // restart only
    double silent_s;     // hang only
    const char *reason;  // giveup, stop
    const char *resume;  // restart: "latest", or NULL (written as null)
} Incident;

static double wall_time(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + 1e-6 * (double)tv.tv_usec;
}

static void nap(double s) {
    if (s <= 0) return;
    struct timespec ts = {(time_t)s, (long)((s - floor(s)) * 1e9)};
    nanosleep(&ts, NULL);  // a signal cuts it short, which is what we want
}

// ---------------------------------------------------------------- incidents

static void json_num_or_null(KilnBuf *b, const char *key, int present, double v) {
    if (present) kbuf_printf(b, ",\"%s\":%.9g", key, v);
    else kbuf_printf(b, ",\"%s\":null", key);
}

// {"time":..,"kind":..,"detail":{"exit_code":..,"signal":..,"step":..,"restart":n,...}}
static int incident_json(const Incident *in, KilnBuf *b) {
    kbuf_printf(b, "{\"time\":%.3f,\"kind\":\"%s\",\"detail\":{\"restart\":%d", wall_time(), in->kind,
                in->restart);
    if (strcmp(in->kind, "restart")) {  // how the child ended: null where it does not apply
        json_num_or_null(b, "exit_code", in->exit_code >= 0, in->exit_code);
        json_num_or_null(b, "signal", in->signal > 0, in->signal);
        json_num_or_null(b, "step", in->step >= 0, (double)in->step);
    }
    if (in->backoff_s >= 0) kbuf_printf(b, ",\"backoff_s\":%.9g", in->backoff_s);
    if (in->silent_s >= 0) kbuf_printf(b, ",\"silent_s\":%.3f", in->silent_s);
    if (!strcmp(in->kind, "restart")) {  // always there for a restart: "latest" or null
        if (in->resume) kbuf_printf(b, ",\"resume\":\"%s\"", in->resume);
        else kbuf_puts(b, ",\"resume\":null");
    }
    if (in->reason) {
        kbuf_puts(b, ",\"reason\":\"");
        kbuf_json_escape(b, in->reason, strlen(in->reason));
        kbuf_putc(b, '"');
    }
    return kbuf_puts(b, "}}\n");
}

static int append_line(const char *path, const KilnBuf *b, KilnErr *err) {
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return kiln_fail(err, "%s: %s", path, strerror(errno));
    ssize_t w = write(fd, b->data, b->len);  // one write: lines never interleave
    int e = errno;
    close(fd);
    if (w != (ssize_t)b->len) return kiln_fail(err, "%s: %s", path, w < 0 ? strerror(e) : "short write");
    return 0;
}

static void log_incident(const Sup *s, const Incident *in) {
    FILE *f = s->o->log;
    if (!f) return;
    fprintf(f, "kiln supervise: %s", in->kind);
    if (in->exit_code >= 0) fprintf(f, ", exit %d", in->exit_code);
    if (in->signal > 0) fprintf(f, ", signal %d (%s)", in->signal, strsignal(in->signal));
    if (in->step >= 0) fprintf(f, ", last heartbeat step %ld", in->step);
    if (in->silent_s >= 0) fprintf(f, ", heartbeat silent for %.1f s", in->silent_s);
    if (!strcmp(in->kind, "restart"))
        fprintf(f, ": restart %d in %.3g s%s", in->restart, in->backoff_s, in->resume ? " with --resume latest" : "");
    if (in->reason) fprintf(f, ": %s", in->reason);
    fputc('\n', f);
    fflush(f);
}

// Appends the incident to RUN/incidents.jsonl and the log. A failed append
// after the start is only logged: keeping the child alive matters more.
static void record(const Sup *s, const Incident *in) {
    KilnBuf b = {0};
    KilnErr err = {"out of memory"};
    log_incident(s, in);
    if ((incident_json(in, &b) || append_line(s->incidents_path, &b, &err)) && s->o->log)
        fprintf(s->o->log, "kiln supervise: cannot record incident: %s\n", err.msg);
    kbuf_free(&b);
}

static Incident incident(const char *kind, int restart) {
    Incident in = {kind, -1, 0, -1, restart, -1, -1, NULL, NULL};
    return in;
}

// ---------------------------------------------------------------- heartbeat

static void hb_read(const char *path, HbSnap *h) {
    memset(h, 0, sizeof *h);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    struct stat st;
    if (!fstat(fd, &st)) {
        h->exists = 1, h->ino = st.st_ino, h->mtime = st.st_mtim, h->size = st.st_size;
        ssize_t r = read(fd, h->text, sizeof h->text - 1);
        h->len = r > 0 ? (size_t)r : 0;
    }
    close(fd);
}

static int hb_same(const HbSnap *a, const HbSnap *b) {
    return a->exists == b->exists && a->ino == b->ino && a->mtime.tv_sec == b->mtime.tv_sec &&
           a->mtime.tv_nsec == b->mtime.tv_nsec && a->size == b->size && a->len == b->len &&
           !memcmp(a->text, b->text, a->len);
}

static void hb_start(Sup *s) {
    hb_read(s->hb_path, &s->snap);
    s->hb_seen = 0, s->hb_step = -1, s->hb_moved = kiln_now();
}

static void hb_poll(Sup *s) {
    HbSnap h;
    hb_read(s->hb_path, &h);
    if (!h.exists || hb_same(&h, &s->snap)) return;
    s->snap = h;
    s->hb_seen = 1, s->hb_moved = kiln_now();
    KilnHeartbeat hb;
    if (!rundir_parse_heartbeat(h.text, h.len, &hb)) s->hb_step = hb.step;
}

// ---------------------------------------------------------------- processes

// fork + exec in a new process group (pgid = pid). envp NULL: execvp with the
// current environment; otherwise execve (argv[0] must then be a path). An exec
// failure comes back through a close-on-exec pipe as an error, not as a child
// that "crashed".
static int spawn(char *const argv[], char *const envp[], pid_t *pid, KilnErr *err) {
    int fds[2];
    if (pipe(fds)) return kiln_fail(err, "pipe: %s", strerror(errno));
    fcntl(fds[0], F_SETFD, FD_CLOEXEC);
    fcntl(fds[1], F_SETFD, FD_CLOEXEC);
    pid_t p = fork();
    if (p < 0) {
        int e = errno;
        close(fds[0]), close(fds[1]);
        return kiln_fail(err, "fork: %s", strerror(e));
    }
    if (p == 0) {
        setpgid(0, 0);
#ifdef __linux__
        prctl(PR_SET_PDEATHSIG, SIGTERM);  // a supervisor killed by SIGKILL still stops its child cleanly
#endif
        if (envp) execve(argv[0], argv, envp);
        else execvp(argv[0], argv);
        int e = errno;
        if (write(fds[1], &e, sizeof e) < 0) _exit(127);
        _exit(127);
    }
    setpgid(p, p);  // also here: whichever of the two runs first wins the race
    close(fds[1]);
    int e = 0;
    ssize_t r;
    while ((r = read(fds[0], &e, sizeof e)) < 0 && errno == EINTR) {
    }
    close(fds[0]);
    if (r == (ssize_t)sizeof e) {
        while (waitpid(p, NULL, 0) < 0 && errno == EINTR) {
        }
        return kiln_fail(err, "cannot run %s: %s", argv[0], strerror(e));
    }
    *pid = p;
    return 0;
}

// Sends sig to the child's process group (all of a launcher's local processes,
// as a terminal's Ctrl-C would), or to the child alone if it left the group.
static void signal_group(pid_t pid, int sig) {
    if (kill(-pid, sig) && errno == ESRCH) kill(pid, sig);
}

// Forwards stop signals that arrived since the last call.
static void forward_stops(Sup *s, pid_t pid) {
    while (s->forwarded < stop_signal_count) {
        s->forwarded++;
        s->stop_sig = stop_signal_seen;
        if (pid > 0) signal_group(pid, s->stop_sig);
        if (s->o->log) {
            fprintf(s->o->log, "kiln supervise: %s received%s\n", strsignal(s->stop_sig),
                    pid > 0 ? ", forwarded to the child; no restart after it exits" : "; stopping");
            fflush(s->o->log);
        }
    }
}

// Kills what is left of a finished child's group (ranks of a crashed launcher)
// and waits up to grace seconds for it to be gone, so that a restart does not
// run beside the remains of the last one.
static void reap_group(pid_t pid, double grace) {
    if (kill(-pid, SIGKILL)) return;  // ESRCH: nothing left
    double until = kiln_now() + grace;
    while (kiln_now() < until && !kill(-pid, 0)) nap(0.05);
}

typedef struct {
    int status;      // waitpid status
    int hung;        // killed because the heartbeat stopped
    double silent_s; // how long it had been silent then
} Ended;

// Waits for pid to end. Meanwhile forwards stop signals and, when watch_hb,
// SIGTERMs the group of a child whose heartbeat stopped and SIGKILLs it
// kill_grace_s later.
static int wait_child(Sup *s, pid_t pid, int watch_hb, Ended *out, KilnErr *err) {
    const KilnSuperviseOptions *o = s->o;
    double period = fmin(1.0, fmax(0.05, o->heartbeat_timeout_s / 20));
    double next_poll = 0, term_at = -1;
    int killed = 0;
    memset(out, 0, sizeof *out);
    for (;;) {
        pid_t r = waitpid(pid, &out->status, WNOHANG);
        if (r == pid) return 0;
        if (r < 0 && errno != EINTR) return kiln_fail(err, "waitpid %ld: %s", (long)pid, strerror(errno));
        forward_stops(s, pid);
        double now = kiln_now();
        if (watch_hb && now >= next_poll) {
            hb_poll(s);  // decide on a fresh look only, never on a stale one
            next_poll = now + period;
            double silent = now - s->hb_moved;
            if (term_at < 0 && silent > o->heartbeat_timeout_s) {
                out->hung = 1, out->silent_s = silent;
                if (o->log) {
                    fprintf(o->log, "kiln supervise: heartbeat silent for %.1f s: SIGTERM to the child's group\n",
                            silent);
                    fflush(o->log);
                }
                signal_group(pid, SIGTERM);
                term_at = now;
            }
        }
        if (term_at >= 0 && !killed && now - term_at > o->kill_grace_s) {
            signal_group(pid, SIGKILL);
            killed = 1;
        }
        nap(0.05);
    }
}

// ---------------------------------------------------------------- the loop

static int code_of(int status) {
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    return 128 + WTERMSIG(status);
}

// Restarts in the budget window (all of them when the window is 0).
static int restarts_in_window(const Sup *s) {
    int n = s->nrestart < s->o->max_restarts ? s->nrestart : s->o->max_restarts, k = 0;
    double now = kiln_now();
    for (int i = 0; i < n; i++)
        if (s->o->budget_window_s <= 0 || now - s->restart_t[i] < s->o->budget_window_s) k++;
    return k;
}

// Sleeps t seconds unless a stop signal comes; returns 1 if one did.
static int backoff_sleep(Sup *s, double t) {
    double until = kiln_now() + t;
    for (;;) {
        forward_stops(s, 0);
        if (s->stop_sig) return 1;
        double left = until - kiln_now();
        if (left <= 0) return 0;
        nap(fmin(left, 0.05));
    }
}

// Runs before_restart with /bin/sh; its status in *code (-1: it was stopped).
static int run_hook(Sup *s, const char *kind, int *code, KilnErr *err) {
    char e_run[1200], e_n[64], e_kind[64];
    snprintf(e_run, sizeof e_run, "KILN_RUN_DIR=%s", s->o->run_dir);
    snprintf(e_n, sizeof e_n, "KILN_RESTART=%d", s->nrestart + 1);
    snprintf(e_kind, sizeof e_kind, "KILN_INCIDENT=%s", kind);
    size_t n = 0;
    while (environ && environ[n]) n++;
    char **envp = malloc((n + 4) * sizeof *envp);
    if (!envp) return kiln_fail(err, "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < n; i++)  // ours replace inherited ones of the same name
        if (strncmp(environ[i], "KILN_RUN_DIR=", 13) && strncmp(environ[i], "KILN_RESTART=", 13) &&
            strncmp(environ[i], "KILN_INCIDENT=", 14))
            envp[k++] = environ[i];
    envp[k++] = e_run, envp[k++] = e_n, envp[k++] = e_kind, envp[k] = NULL;
    char *argv[] = {"/bin/sh", "-c", (char *)s->o->before_restart, NULL};
    pid_t pid;
    int rc = spawn(argv, envp, &pid, err);
    free(envp);
    if (rc) return kiln_wrap(err, "before-restart");
    Ended end;
    if (wait_child(s, pid, 0, &end, err)) return -1;
    *code = s->stop_sig ? -1 : code_of(end.status);
    return 0;
}

static int file_exists(const char *path) {
    struct stat st;
    return !stat(path, &st);
}

// Ends supervision because of a stop signal: stop incident, exit 75 unless the
// child gave its own code.
static int stopped(Sup *s, int child_code, long step, int *exit_code) {
    Incident in = incident("stop", s->nrestart);
    in.signal = s->stop_sig, in.step = step, in.reason = "stop signal";
    if (child_code >= 0) in.exit_code = child_code;
    record(s, &in);
    *exit_code = child_code >= 0 ? child_code : 75;
    return 0;
}

static int give_up(Sup *s, Incident *in, int *exit_code, KilnErr *err, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int give_up(Sup *s, Incident *in, int *exit_code, KilnErr *err, const char *fmt, ...) {
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    in->kind = "giveup", in->reason = why, in->backoff_s = -1, in->silent_s = -1;
    record(s, in);
    *exit_code = 1;
    return kiln_fail(err, "gave up: %s", why);
}

// The loop proper; s is set up and signal handlers are installed.
static int supervise_loop(Sup *s, char *const argv[], const char **rargv, int rcap, int *exit_code, KilnErr *err) {
    const KilnSuperviseOptions *o = s->o;
    char *const *args = argv;
    int fresh_restart = 0;  // a restart without --resume (RUN/latest was absent)
    for (;;) {
        hb_start(s);
        pid_t pid;
        // A fresh start refuses a directory holding a run's files; this one holds
        // the dead child's, which the child may replace (the hook does not see it).
        if (fresh_restart) setenv(RUNDIR_RESTART_ENV, "1", 1);
        else unsetenv(RUNDIR_RESTART_ENV);  // never the first start's, whatever our caller set
        int rc = spawn(args, NULL, &pid, err);
        unsetenv(RUNDIR_RESTART_ENV);
        if (rc) return -1;
        if (o->log) {
            fprintf(o->log, "kiln supervise: started %s (pid %ld)%s\n", args[0], (long)pid,
                    args != argv ? " with --resume latest" : "");
            fflush(o->log);
        }
        Ended end;
        if (wait_child(s, pid, 1, &end, err)) return -1;
        hb_poll(s);  // the step it reached, if it wrote one just before ending
        int code = code_of(end.status);
        if (s->stop_sig) {
            reap_group(pid, o->kill_grace_s);
            return stopped(s, code, s->hb_step, exit_code);
        }
        if (!end.hung && (code == 0 || code == 2 || code == 75 || code == 126 || code == 127)) {
            if (code) {
                Incident in = incident("stop", s->nrestart);
                in.exit_code = code, in.step = s->hb_step;
                in.reason = code == 2    ? "bad usage or config: not restartable"
                            : code == 75 ? "the child stopped cleanly"
                                         : "the command cannot be run: not restartable";
                record(s, &in);
            } else if (o->log) {
                fprintf(o->log, "kiln supervise: finished after %d restart%s\n", s->nrestart,
                        s->nrestart == 1 ? "" : "s");
            }
            *exit_code = code;
            return 0;
        }
        reap_group(pid, o->kill_grace_s);
        Incident in = incident(end.hung ? "hang" : "crash", s->nrestart);
        if (WIFEXITED(end.status)) in.exit_code = WEXITSTATUS(end.status);
        else in.signal = WTERMSIG(end.status);
        in.step = s->hb_step;
        if (end.hung) in.silent_s = end.silent_s;
        if (!end.hung && !s->hb_seen) in.reason = "ended before its first heartbeat";
        record(s, &in);

        int k = restarts_in_window(s);
        if (k >= o->max_restarts) {
            if (o->budget_window_s > 0)
                return give_up(s, &in, exit_code, err,
                               "%d restart%s within %g s, the budget (--max-restarts %d); last: %s", k,
                               k == 1 ? "" : "s", o->budget_window_s, o->max_restarts, in.kind);
            return give_up(s, &in, exit_code, err, "%d restart%s, the budget (--max-restarts %d); last: %s", k,
                           k == 1 ? "" : "s", o->max_restarts, in.kind);
        }
        const char *kind = in.kind;
        int resume = file_exists(s->latest_path);
        Incident r = incident("restart", s->nrestart + 1);
        r.backoff_s = supervise_backoff(o, k), r.resume = resume ? "latest" : NULL;
        record(s, &r);
        if (backoff_sleep(s, r.backoff_s)) return stopped(s, -1, in.step, exit_code);
        if (o->before_restart && *o->before_restart) {
            int hook = 0;
            if (run_hook(s, kind, &hook, err)) return -1;
            if (hook < 0) return stopped(s, -1, in.step, exit_code);
            if (hook) return give_up(s, &in, exit_code, err, "before-restart command exited with %d", hook);
        }
        s->restart_t[s->nrestart % o->max_restarts] = kiln_now();
        s->nrestart++;
        args = argv;
        fresh_restart = !resume;
        if (resume) {
            if (supervise_resume_args(argv, rargv, rcap) < 0) return kiln_fail(err, "too many arguments");
            args = (char *const *)rargv;
        }
    }
}

int supervise_run(const KilnSuperviseOptions *o, char *const argv[], int *exit_code, KilnErr *err) {
    *exit_code = 1;
    if (!argv || !argv[0]) return kiln_fail(err, "supervise: no command to run");
    if (!o->run_dir[0]) return kiln_fail(err, "supervise: no run directory");
    if (o->max_restarts < 0 || !(o->heartbeat_timeout_s > 0) || !(o->kill_grace_s >= 0) ||
        !(o->backoff_initial_s >= 0) || !(o->backoff_max_s >= 0) || !(o->budget_window_s >= 0))
        return kiln_fail(err, "supervise: negative or zero limits (max_restarts %d, heartbeat timeout %g s)",
                         o->max_restarts, o->heartbeat_timeout_s);
    Sup s;
    memset(&s, 0, sizeof s);
    s.o = o;
    snprintf(s.hb_path, sizeof s.hb_path, "%s/" RUNDIR_HEARTBEAT, o->run_dir);
    snprintf(s.latest_path, sizeof s.latest_path, "%s/" RUNDIR_LATEST, o->run_dir);
    snprintf(s.incidents_path, sizeof s.incidents_path, "%s/" RUNDIR_INCIDENTS, o->run_dir);
    if (kiln_mkdirs(o->run_dir, err)) return -1;
    // refuse to start if incidents cannot be recorded at all
    int fd = open(s.incidents_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return kiln_fail(err, "%s: %s", s.incidents_path, strerror(errno));
    close(fd);

    int argc = 0;
    while (argv[argc]) argc++;
    int rcap = argc + 3;
    const char **rargv = malloc((size_t)rcap * sizeof *rargv);
    s.restart_t = calloc((size_t)(o->max_restarts > 0 ? o->max_restarts : 1), sizeof *s.restart_t);
    if (!rargv || !s.restart_t) {
        free(rargv), free(s.restart_t);
        return kiln_fail(err, "out of memory");
    }
    struct sigaction sa, old_term, old_int;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;  // no SA_RESTART: a signal wakes the loop's sleep
    sigemptyset(&sa.sa_mask);
    s.forwarded = stop_signal_count;  // only signals from now on count
    sigaction(SIGTERM, &sa, &old_term);
    sigaction(SIGINT, &sa, &old_int);
    int rc = supervise_loop(&s, argv, rargv, rcap, exit_code, err);
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGINT, &old_int, NULL);
    free(rargv);
    free(s.restart_t);
    if (rc) *exit_code = 1;
    return rc;
}
