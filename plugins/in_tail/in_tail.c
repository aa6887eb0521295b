/* in_tail: follow log files named by globs through rotation, emit each line (or multiline record) as a log record, checkpoint offsets once durable. */
#define _GNU_SOURCE
#include <pipit/plugin.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <glob.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tail_checkpoint.h"
#include "tail_parse.h"

#define TAIL_LAST        64             /* bytes before the offset kept per file */
#define TAIL_READ_CHUNK  65536          /* one read() */
#define TAIL_TICK_MS     250            /* timer period with inotify */
#define TAIL_MAX_PEND    (1u << 20)     /* checkpoint updates waiting for an ack */
#define TAIL_CKPT_NAME   "checkpoints"

static const struct pipit_api *api;     /* borrowed from the host */

/* One followed file. */
struct tail_file {
    char *path;
    int fd;
    dev_t dev;
    ino_t ino;
    uint64_t off;                       /* next byte read() returns */
    uint64_t fp;                        /* FNV-1a of the first fp_len bytes */
    uint32_t fp_len;
    unsigned char last[TAIL_LAST];      /* the last_len bytes before off */
    size_t last_len;
    int wd;                             /* inotify watch, or -1 */
    bool dirty;                         /* inotify said it changed */
    bool rotated;                       /* its path names another file now */
    bool seen;                          /* matched by the last scan */
    int64_t rotated_ms;
    int64_t data_ms;                    /* when bytes last arrived */
    uint64_t marked;                    /* safe offset of the last mark */
    struct tail_parser ps;
};

/* A committed (or to be committed) position: a file by device and inode,
 * with the fingerprint of its head against inode reuse. */
struct tail_pos {
    uint64_t token;                     /* pending updates: the mark's token */
    dev_t dev;
    ino_t ino;
    uint64_t off, fp;
    uint32_t fp_len;
    char *path;
};

struct tail_ctx {
    /* options */
    struct pipit_strlist paths;
    struct pipit_strlist exclude;
    const char *read_from;              /* "end" or "beginning" */
    const char *watcher;                /* "auto", "inotify" or "poll" */
    int64_t poll_ms, scan_ms, rotate_wait_ms;
    const char *multiline_start;
    int64_t multiline_flush_ms;
    int64_t max_line, max_record, max_files, read_max;
    const char *format, *regex;
    int64_t stats_ms;
    int64_t ckpt_ms;                    /* checkpoint_interval */

    /* state */
    pipit_instance *ins;
    struct tail_parse_conf conf;
    struct tail_counts counts;
    struct tail_file **files;
    size_t nfiles;
    int ifd;                            /* inotify fd, or -1: polling */
    int *dir_wds;                       /* watches on the patterns' folders */
    size_t ndir_wds;
    bool need_scan, first_scan_done, more, refused_logged, bad_logged;
    uint64_t refused, io_errors;
    int64_t last_scan_ms, last_stats_ms;
    int64_t ckpt_saved_ms;              /* when the checkpoint file was last written */
    bool ckpt_dirty;                    /* committed positions not written yet */
    struct tail_pos *ckpt;              /* committed positions */
    size_t nckpt;
    struct tail_pos *pend;              /* waiting for ack, token order */
    size_t npend, pend_cap;
    uint64_t token;
    bool can_mark;
    struct tail_file *cur;              /* file being fed (for the emitter) */
    uint64_t refused_at;                /* offset of a record the host refused */
    bool stopped;
    bool ckpt_bad;                      /* checkpoint entries were lost at load */
    uint64_t ckpt_damaged;              /* how many */
    char ckpt_path[PATH_MAX];
    char buf[TAIL_READ_CHUNK];
};

static const struct pipit_option tail_options[] = {
    PIPIT__OPT("path", PIPIT_OPT_T_LIST, NULL, struct tail_ctx, paths, PIPIT_OPT_REQUIRED,
               1, 0, "Files to follow: paths or glob patterns ([/var/log/app/*.log])"),
    PIPIT_OPT_LIST("exclude", struct tail_ctx, exclude,
                   "Glob patterns of paths never followed (e.g. rotated copies: *.1, *.gz)"),
    PIPIT_OPT_STRING("read_from", "end", struct tail_ctx, read_from,
                     "Where files found at start without a checkpoint are read from: end or beginning"),
    PIPIT_OPT_STRING("watcher", "auto", struct tail_ctx, watcher,
                     "How changes are noticed: auto (inotify when available), inotify or poll"),
    PIPIT_OPT_DURATION("poll_interval", "250ms", 10, 60000, struct tail_ctx, poll_ms,
                       "Period of the checks for new data when polling"),
    PIPIT_OPT_DURATION("scan_interval", "2s", 10, 3600000, struct tail_ctx, scan_ms,
                       "How often the globs are expanded again to find new files"),
    PIPIT_OPT_DURATION("rotate_wait", "5s", 0, 3600000, struct tail_ctx, rotate_wait_ms,
                       "How long a file renamed away is still read before it is closed"),
    PIPIT_OPT_STRING("multiline_start", NULL, struct tail_ctx, multiline_start,
                     "PCRE2 regex matching the first line of a record; other lines join it"),
    PIPIT_OPT_DURATION("multiline_flush", "1s", 10, 3600000, struct tail_ctx,
                       multiline_flush_ms, "A multiline record with no new line for this long is emitted"),
    PIPIT_OPT_SIZE("max_line_size", "64KiB", 64, 16 << 20, struct tail_ctx, max_line,
                   "Longer lines are split into pieces of this size, each flagged split=true"),
    PIPIT_OPT_SIZE("max_record_size", "1MiB", 64, 64 << 20, struct tail_ctx, max_record,
                   "A multiline record is cut at this size and flagged truncated=true"),
    PIPIT_OPT_INT("max_files", "1024", 1, 65536, struct tail_ctx, max_files,
                  "Most files followed at once; more are refused (counted and logged)"),
    PIPIT_OPT_SIZE("read_max", "1MiB", 4096, 1 << 30, struct tail_ctx, read_max,
                   "Most bytes read from all files in one wakeup"),
    PIPIT_OPT_STRING("format", "none", struct tail_ctx, format,
                     "How lines are parsed: none, json (an object per line) or regex"),
    PIPIT_OPT_STRING("regex", NULL, struct tail_ctx, regex,
                     "PCRE2 regex with named groups for format=regex; message and level are special"),
    PIPIT_OPT_DURATION("checkpoint_interval", "1s", 0, 3600000, struct tail_ctx, ckpt_ms,
                       "Committed positions are written (fsync'd) at most this often, and at "
                       "stop; 0 writes them at every acknowledgement"),
    PIPIT_OPT_DURATION("stats_interval", "60s", 0, 86400000, struct tail_ctx, stats_ms,
                       "How often the tail.* counters are emitted; 0 never"),
    PIPIT_OPT_END
};

static int tail_load(const struct pipit_api *host)
{
    api = host;
    return PIPIT_OK;
}

static int64_t tail_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Fingerprint the first len bytes of fd. Returns false when the file has
 * fewer bytes. */
static bool tail_fingerprint(int fd, uint32_t len, uint64_t *fp)
{
    unsigned char b[TAIL_FP_MAX];
    ssize_t n = len ? pread(fd, b, len, 0) : 0;

    if (n < 0 || (uint32_t)n != len)
        return false;
    *fp = tail_fnv(b, len);
    return true;
}

/* ---- checkpoints -------------------------------------------------------- */

/* Add one loaded position to the table; false when out of memory. */
static bool tail_ckpt_add(void *arg, const struct tail_ckpt_entry *e)
{
    struct tail_ctx *ctx = arg;
    struct tail_pos *a = realloc(ctx->ckpt, (ctx->nckpt + 1) * sizeof *a);

    if (!a)
        return false;
    ctx->ckpt = a;
    a[ctx->nckpt] = (struct tail_pos){ 0, (dev_t)e->dev, (ino_t)e->ino, e->off, e->fp,
                                       e->fp_len, strdup(e->path) };
    if (!a[ctx->nckpt].path)
        return false;
    ctx->nckpt++;
    return true;
}

/*
 * Load <state_dir>/checkpoints (tail_checkpoint.c, docs/plugins/tail.md).
 * Entries lost to damage are counted and logged with the bad lines, and
 * every file found at start without a valid checkpoint is then read from
 * its beginning, whatever read_from says: duplicates rather than loss. A
 * missing file is no checkpoint.
 */
static void tail_ckpt_load(struct tail_ctx *ctx)
{
    FILE *f = fopen(ctx->ckpt_path, "re");
    struct tail_ckpt_damage d;

    if (!f) {
        if (errno != ENOENT)
            api->log(ctx->ins, PIPIT_LOG_WARN, "%s: %s; starting without checkpoints",
                     ctx->ckpt_path, strerror(errno));
        return;
    }
    tail_ckpt_read(f, tail_ckpt_add, ctx, &d);
    fclose(f);
    if (!d.lost && !d.bad_lines)
        return;
    ctx->ckpt_damaged += d.lost;
    ctx->ckpt_bad = d.lost > 0;
    api->log(ctx->ins, PIPIT_LOG_WARN, "%s is damaged: %" PRIu64 " checkpoint entries lost "
             "(bad lines: %s); files found at start without a valid checkpoint are read from "
             "their beginning", ctx->ckpt_path, d.lost,
             d.bad_lines ? d.bad : "none, the file is empty");
}

static struct tail_file *tail_find_ino(struct tail_ctx *ctx, dev_t dev, ino_t ino)
{
    for (size_t i = 0; i < ctx->nfiles; i++)
        if (ctx->files[i]->dev == dev && ctx->files[i]->ino == ino)
            return ctx->files[i];
    return NULL;
}

/* Write the committed positions to a temporary file, fsync it and rename
 * it over the checkpoint file. Positions of files no longer followed whose
 * path names another file now are dropped. */
static void tail_ckpt_save(struct tail_ctx *ctx)
{
    char tmp[PATH_MAX + 8];
    size_t keep = 0;
    FILE *f;

    for (size_t i = 0; i < ctx->nckpt; i++) {
        struct tail_pos *c = &ctx->ckpt[i];
        struct stat st;

        if (!tail_find_ino(ctx, c->dev, c->ino) &&
            (stat(c->path, &st) < 0 || st.st_dev != c->dev || st.st_ino != c->ino)) {
            free(c->path);
            continue;
        }
        ctx->ckpt[keep++] = *c;
    }
    ctx->nckpt = keep;
    snprintf(tmp, sizeof tmp, "%s.tmp", ctx->ckpt_path);
    f = fopen(tmp, "we");
    if (!f)
        goto fail;
    int err = ctx->nckpt == 0 ? tail_ckpt_print(f, 0, 0, NULL) : 0;
    for (size_t i = 0; i < ctx->nckpt && !err; i++) {
        struct tail_pos *c = &ctx->ckpt[i];
        struct tail_ckpt_entry e = { c->dev, c->ino, c->off, c->fp, c->fp_len, c->path };

        err = tail_ckpt_print(f, i + 1, ctx->nckpt, &e);
    }
    if (err || fflush(f) != 0 || fsync(fileno(f)) != 0) {
        fclose(f);
        goto fail;
    }
    if (fclose(f) != 0 || rename(tmp, ctx->ckpt_path) != 0)
        goto fail;
    ctx->ckpt_dirty = false;
    ctx->ckpt_saved_ms = tail_now_ms();
    return;
fail:
    ctx->io_errors++;
    api->log(ctx->ins, PIPIT_LOG_WARN, "cannot write checkpoint %s: %s", tmp, strerror(errno));
    unlink(tmp);
}

/*
 * Positions were committed: write them now if checkpoint_interval has
 * passed since the last write, else at a later wakeup (tail_work) or at
 * stop. An fsync'd rename per acknowledged batch would cost the loop more
 * than reading and encoding the lines; what a crash can re-read is at most
 * the last interval's lines (duplicates, never a loss).
 */
static void tail_ckpt_commit(struct tail_ctx *ctx)
{
    ctx->ckpt_dirty = true;
    if (ctx->ckpt_ms == 0 || tail_now_ms() - ctx->ckpt_saved_ms >= ctx->ckpt_ms)
        tail_ckpt_save(ctx);
}

/* Commit one position into the table (replacing that of the same file). */
static void tail_ckpt_put(struct tail_ctx *ctx, const struct tail_pos *p)
{
    struct tail_pos *a;

    for (size_t i = 0; i < ctx->nckpt; i++) {
        struct tail_pos *c = &ctx->ckpt[i];

        if (c->dev == p->dev && c->ino == p->ino) {
            free(c->path);
            *c = *p;
            return;
        }
    }
    a = realloc(ctx->ckpt, (ctx->nckpt + 1) * sizeof *a);
    if (!a) {
        free(p->path);
        return;
    }
    ctx->ckpt = a;
    a[ctx->nckpt++] = *p;
}

/*
 * After a wakeup: for each file whose safe offset moved, queue its new
 * position under the next token and ask the host for ack(token) once the
 * records before are durable. A host without marks (the harness) commits
 * at once.
 */
static void tail_mark(struct tail_ctx *ctx)
{
    uint64_t token = ctx->token + 1;
    bool any = false;

    for (size_t i = 0; i < ctx->nfiles; i++) {
        struct tail_file *f = ctx->files[i];
        uint64_t safe = tail_parser_safe(&f->ps);

        if (safe == f->marked)
            continue;
        if (f->fp_len < TAIL_FP_MAX) {
            struct stat st;
            uint32_t want = TAIL_FP_MAX;

            if (fstat(f->fd, &st) == 0 && (uint64_t)st.st_size < want)
                want = (uint32_t)st.st_size;
            if (want > f->fp_len && tail_fingerprint(f->fd, want, &f->fp))
                f->fp_len = want;
        }
        struct tail_pos p = { token, f->dev, f->ino, safe, f->fp, f->fp_len, strdup(f->path) };

        if (!p.path)
            continue;
        if (!ctx->can_mark) {
            tail_ckpt_put(ctx, &p);
        } else {
            if (ctx->npend == ctx->pend_cap) {
                size_t cap = ctx->pend_cap ? ctx->pend_cap * 2 : 64;
                struct tail_pos *a = ctx->npend < TAIL_MAX_PEND
                                         ? realloc(ctx->pend, cap * sizeof *a) : NULL;

                if (!a) {
                    free(p.path);
                    continue;           /* committed with the next mark */
                }
                ctx->pend = a;
                ctx->pend_cap = cap;
            }
            ctx->pend[ctx->npend++] = p;
        }
        f->marked = safe;
        any = true;
    }
    if (!any)
        return;
    if (!ctx->can_mark) {
        tail_ckpt_commit(ctx);
        return;
    }
    ctx->token = token;
    if (api->mark(ctx->ins, token) != PIPIT_OK) {
        /* the host has no marks after all: commit now */
        ctx->can_mark = false;
        for (size_t i = 0; i < ctx->npend; i++)
            tail_ckpt_put(ctx, &ctx->pend[i]);
        ctx->npend = 0;
        tail_ckpt_commit(ctx);
    }
}

/* The records of every mark up to token are durable: commit their
 * positions and write the checkpoint file. */
static void tail_ack(pipit_instance *ins, void *data, uint64_t token)
{
    struct tail_ctx *ctx = data;
    size_t n = 0;

    (void)ins;
    while (n < ctx->npend && ctx->pend[n].token <= token) {
        tail_ckpt_put(ctx, &ctx->pend[n]);
        n++;
    }
    if (!n)
        return;
    memmove(ctx->pend, ctx->pend + n, (ctx->npend - n) * sizeof *ctx->pend);
    ctx->npend -= n;
    tail_ckpt_commit(ctx);
}

/* ---- emitting ----------------------------------------------------------- */

/* Emit one parsed record of ctx->cur. Stops the feed when the host
 * refuses it (pipeline full), so it is read again later. */
static int tail_emit(void *arg, const struct tail_rec *r)
{
    struct tail_ctx *ctx = arg;
    struct pipit_label labels[TAIL_MAX_LABELS + 2];
    size_t n = 0;
    struct pipit_record rec = { .struct_size = sizeof rec, .kind = PIPIT_LOG };

    for (size_t i = 0; i < r->nlabels; i++)
        labels[n++] = r->labels[i];
    if (r->split)
        labels[n++] = (struct pipit_label){ "split", "true" };
    if (r->truncated)
        labels[n++] = (struct pipit_label){ "truncated", "true" };
    rec.message = r->message;
    rec.level = r->level;
    rec.source = ctx->cur->path;
    rec.offset = r->offset;
    rec.labels = n ? labels : NULL;
    rec.nlabels = n;
    if (api->emit(ctx->ins, &rec) == PIPIT_EFULL) {
        ctx->refused_at = r->offset;
        ctx->stopped = true;
        return 1;
    }
    return 0;
}

/* The host refused a record: read the file again from that record. */
static void tail_rewind(struct tail_ctx *ctx, struct tail_file *f)
{
    f->off = ctx->refused_at;
    f->last_len = 0;
    if (lseek(f->fd, (off_t)f->off, SEEK_SET) < 0)
        ctx->io_errors++;
    tail_parser_reset(&f->ps, f->off);
}

static int tail_feed(struct tail_ctx *ctx, struct tail_file *f, const char *b, size_t n)
{
    ctx->cur = f;
    if (tail_parser_feed(&f->ps, b, n, tail_emit, ctx)) {
        tail_rewind(ctx, f);
        return 1;
    }
    return 0;
}

static int tail_flush(struct tail_ctx *ctx, struct tail_file *f, bool partial)
{
    ctx->cur = f;
    if (tail_parser_flush(&f->ps, partial, tail_emit, ctx)) {
        tail_rewind(ctx, f);
        return 1;
    }
    return 0;
}

/* ---- files -------------------------------------------------------------- */

static void tail_close_file(struct tail_ctx *ctx, size_t i)
{
    struct tail_file *f = ctx->files[i];

    if (f->wd >= 0 && ctx->ifd >= 0) {
        /* the watch of a deleted file is gone already; that is fine */
        (void)inotify_rm_watch(ctx->ifd, f->wd);
    }
    close(f->fd);
    tail_parser_free(&f->ps);
    free(f->path);
    free(f);
    ctx->files[i] = ctx->files[--ctx->nfiles];
}

/*
 * Start following path. A file with a checkpoint (same device, inode and
 * head fingerprint) resumes at its committed offset; otherwise it is read
 * from the start, or from its end when from_end.
 */
static void tail_open_file(struct tail_ctx *ctx, const char *path, bool from_end)
{
    struct tail_file *f = NULL;
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);

    if (fd < 0) {
        if (errno != ENOENT)
            api->log(ctx->ins, PIPIT_LOG_WARN, "cannot open %s: %s", path, strerror(errno));
        return;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return;
    }
    if (ctx->nfiles >= (size_t)ctx->max_files) {
        ctx->refused++;
        if (!ctx->refused_logged) {
            ctx->refused_logged = true;
            api->log(ctx->ins, PIPIT_LOG_WARN, "not following %s: max_files (%" PRId64
                     ") reached; further files are only counted", path, ctx->max_files);
        }
        close(fd);
        return;
    }
    f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path)))
        goto fail;
    f->fd = fd;
    f->wd = -1;
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    f->off = from_end ? (uint64_t)st.st_size : 0;
    for (size_t i = 0; i < ctx->nckpt; i++) {
        struct tail_pos *c = &ctx->ckpt[i];
        uint64_t fp;

        if (c->dev != st.st_dev || c->ino != st.st_ino)
            continue;
        if (tail_fingerprint(fd, c->fp_len, &fp) && fp == c->fp) {
            f->off = c->off <= (uint64_t)st.st_size ? c->off : 0;
            f->fp = c->fp;
            f->fp_len = c->fp_len;
        } else {
            /* the inode was reused by another file: read it all */
            f->off = 0;
        }
        break;
    }
    if (lseek(fd, (off_t)f->off, SEEK_SET) < 0 ||
        tail_parser_init(&f->ps, &ctx->conf, &ctx->counts, f->off) != PIPIT_OK)
        goto fail;
    f->marked = f->off;
    f->data_ms = tail_now_ms();
    if (f->off > 0) {
        size_t k = f->off < TAIL_LAST ? (size_t)f->off : TAIL_LAST;
        ssize_t r = pread(fd, f->last, k, (off_t)(f->off - k));

        f->last_len = r > 0 ? (size_t)r : 0;
    }
    if (ctx->ifd >= 0)
        f->wd = inotify_add_watch(ctx->ifd, path, IN_MODIFY | IN_ATTRIB | IN_MOVE_SELF |
                                  IN_DELETE_SELF | IN_CLOSE_WRITE);
    f->dirty = true;
    f->seen = true;
    ctx->files[ctx->nfiles++] = f;
    api->log(ctx->ins, PIPIT_LOG_INFO, "following %s from offset %" PRIu64, path, f->off);
    return;
fail:
    api->log(ctx->ins, PIPIT_LOG_ERROR, "cannot follow %s: out of memory", path);
    if (f) {
        free(f->path);
        free(f);
    }
    close(fd);
}

static bool tail_excluded(struct tail_ctx *ctx, const char *path)
{
    for (size_t i = 0; i < ctx->exclude.count; i++)
        if (fnmatch(ctx->exclude.items[i], path, FNM_PATHNAME) == 0 ||
            fnmatch(ctx->exclude.items[i], path, 0) == 0)
            return true;
    return false;
}

/* Expand the globs; follow files not followed yet. A path that names
 * another inode than the file followed under it starts a new file (the
 * old one is drained as rotated). */
static void tail_scan(struct tail_ctx *ctx)
{
    bool from_end = !ctx->first_scan_done && strcmp(ctx->read_from, "end") == 0 &&
                    !ctx->ckpt_bad;     /* a lost checkpoint: duplicates, not loss */

    for (size_t i = 0; i < ctx->nfiles; i++)
        ctx->files[i]->seen = false;
    for (size_t p = 0; p < ctx->paths.count; p++) {
        glob_t g;

        if (glob(ctx->paths.items[p], GLOB_NOSORT | GLOB_BRACE, NULL, &g) != 0)
            continue;
        for (size_t k = 0; k < g.gl_pathc; k++) {
            const char *path = g.gl_pathv[k];
            struct stat st;
            struct tail_file *f;

            if (tail_excluded(ctx, path) || stat(path, &st) < 0 || !S_ISREG(st.st_mode))
                continue;
            f = tail_find_ino(ctx, st.st_dev, st.st_ino);
            if (f) {
                f->seen = true;
                continue;
            }
            tail_open_file(ctx, path, from_end);
        }
        globfree(&g);
    }
    ctx->first_scan_done = true;
    ctx->need_scan = false;
    ctx->last_scan_ms = tail_now_ms();
}

/*
 * The remainder of a file that was copied then truncated (copytruncate):
 * find the copy in the same folder (its name starts with the file's; its
 * head fingerprint and the bytes before our offset match) and read what
 * we had not read yet from it. Returns true when the copy was found.
 */
static bool tail_read_copy(struct tail_ctx *ctx, struct tail_file *f)
{
    char dir[PATH_MAX], cand[PATH_MAX * 2];
    const char *slash = strrchr(f->path, '/'), *base = slash ? slash + 1 : f->path;
    size_t blen = strlen(base);
    struct dirent *de;
    bool found = false;
    DIR *d;

    if (f->fp_len == 0 || f->off == 0)
        return false;
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - f->path) : 1,
             slash ? f->path : ".");
    if (slash == f->path)
        snprintf(dir, sizeof dir, "/");
    d = opendir(dir);
    if (!d)
        return false;
    while (!found && (de = readdir(d))) {
        unsigned char tailb[TAIL_LAST];
        struct stat st;
        uint64_t fp;
        int fd;

        if (strncmp(de->d_name, base, blen) != 0 || de->d_name[blen] == '\0')
            continue;
        snprintf(cand, sizeof cand, "%s/%s", dir, de->d_name);
        fd = open(cand, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0)
            continue;
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size >= f->off &&
            tail_fingerprint(fd, f->fp_len, &fp) && fp == f->fp &&
            pread(fd, tailb, f->last_len, (off_t)(f->off - f->last_len)) ==
                (ssize_t)f->last_len &&
            memcmp(tailb, f->last, f->last_len) == 0) {
            uint64_t at = f->off;
            ssize_t r;

            found = true;
            while (at < (uint64_t)st.st_size &&
                   (r = pread(fd, ctx->buf, sizeof ctx->buf, (off_t)at)) > 0) {
                ctx->cur = f;
                tail_parser_feed(&f->ps, ctx->buf, (size_t)r, tail_emit, ctx);
                at += (uint64_t)r;
            }
            if (at > f->off)
                api->log(ctx->ins, PIPIT_LOG_INFO, "%s was truncated; read its last %" PRIu64
                         " bytes from the copy %s", f->path, at - f->off, cand);
        }
        close(fd);
    }
    closedir(d);
    return found;
}

/* Restart a file that shrank under us (copytruncate) from offset 0. */
static void tail_truncated(struct tail_ctx *ctx, struct tail_file *f)
{
    tail_read_copy(ctx, f);
    tail_flush(ctx, f, true);
    api->log(ctx->ins, PIPIT_LOG_INFO, "%s was truncated at offset %" PRIu64
             "; reading it from the start", f->path, f->off);
    f->off = 0;
    f->last_len = 0;
    f->fp_len = 0;
    f->fp = 0;
    (void)lseek(f->fd, 0, SEEK_SET);
    tail_parser_reset(&f->ps, 0);
    f->marked = UINT64_MAX;             /* the next mark commits offset 0 onwards */
}

/* Notice rotation (the path is gone or names another inode) and
 * truncation of one file. */
static void tail_check_file(struct tail_ctx *ctx, struct tail_file *f, int64_t now)
{
    struct stat st;

    if (!f->rotated) {
        if (stat(f->path, &st) < 0 || st.st_dev != f->dev || st.st_ino != f->ino) {
            f->rotated = true;
            f->rotated_ms = now;
            ctx->need_scan = true;
        }
    }
    if (fstat(f->fd, &st) < 0)
        return;
    if ((uint64_t)st.st_size < f->off) {
        tail_truncated(ctx, f);
    } else if (f->last_len && f->off >= f->last_len) {
        /* truncated and written again past our offset between two looks:
         * the bytes before the offset are not the ones we read */
        unsigned char b[TAIL_LAST];

        if (pread(f->fd, b, f->last_len, (off_t)(f->off - f->last_len)) !=
                (ssize_t)f->last_len || memcmp(b, f->last, f->last_len) != 0)
            tail_truncated(ctx, f);
    }
}

/* Read new bytes of one file, at most *budget. */
static void tail_read_file(struct tail_ctx *ctx, struct tail_file *f, int64_t *budget,
                           int64_t now)
{
    while (*budget > 0 && !ctx->stopped) {
        size_t want = sizeof ctx->buf < (size_t)*budget ? sizeof ctx->buf : (size_t)*budget;
        ssize_t r = read(f->fd, ctx->buf, want);

        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            ctx->io_errors++;
            api->log(ctx->ins, PIPIT_LOG_WARN, "read %s: %s", f->path, strerror(errno));
            return;
        }
        if (r == 0)
            return;
        *budget -= r;
        f->off += (uint64_t)r;
        f->data_ms = now;
        if ((size_t)r >= TAIL_LAST) {
            memcpy(f->last, ctx->buf + r - TAIL_LAST, TAIL_LAST);
            f->last_len = TAIL_LAST;
        } else {
            size_t keep = f->last_len + (size_t)r > TAIL_LAST ? TAIL_LAST - (size_t)r : f->last_len;

            memmove(f->last, f->last + f->last_len - keep, keep);
            memcpy(f->last + keep, ctx->buf, (size_t)r);
            f->last_len = keep + (size_t)r;
        }
        if (tail_feed(ctx, f, ctx->buf, (size_t)r))
            return;
    }
}

/* Emit the tail.* counters (totals since start). */
static void tail_stats(struct tail_ctx *ctx)
{
    const struct tail_counts *c = &ctx->counts;

    api->emit_counter(ctx->ins, "tail.lines", (double)c->lines);
    api->emit_counter(ctx->ins, "tail.records", (double)c->records);
    api->emit_counter(ctx->ins, "tail.split_lines", (double)c->split);
    api->emit_counter(ctx->ins, "tail.truncated_records", (double)c->truncated);
    api->emit_counter(ctx->ins, "tail.invalid_utf8", (double)c->invalid_utf8);
    api->emit_counter(ctx->ins, "tail.nul_bytes", (double)c->nul);
    api->emit_counter(ctx->ins, "tail.parse_errors", (double)c->parse_errors);
    api->emit_counter(ctx->ins, "tail.files_refused", (double)ctx->refused);
    api->emit_counter(ctx->ins, "tail.io_errors", (double)ctx->io_errors);
    api->emit_counter(ctx->ins, "tail.checkpoint_damaged", (double)ctx->ckpt_damaged);
    api->emit_gauge(ctx->ins, "tail.files", (double)ctx->nfiles);
}

/*
 * One wakeup: rescan when due, check files for rotation and truncation,
 * read new data (only files inotify named, unless all), emit multiline
 * records that waited multiline_flush, close drained rotated files, mark.
 */
static void tail_work(struct tail_ctx *ctx, bool all)
{
    int64_t now = tail_now_ms(), budget = ctx->read_max;
    uint64_t bad = ctx->counts.invalid_utf8 + ctx->counts.nul;

    ctx->stopped = false;
    if (ctx->need_scan || now - ctx->last_scan_ms >= ctx->scan_ms)
        tail_scan(ctx);
    for (size_t i = 0; i < ctx->nfiles && !ctx->stopped; i++) {
        struct tail_file *f = ctx->files[i];

        if (!all && !f->dirty)
            continue;
        f->dirty = false;
        tail_check_file(ctx, f, now);
        tail_read_file(ctx, f, &budget, now);
    }
    if (ctx->need_scan) {
        /* a rotation was seen: follow the new file at once */
        tail_scan(ctx);
        for (size_t i = 0; i < ctx->nfiles && !ctx->stopped; i++)
            if (ctx->files[i]->dirty) {
                ctx->files[i]->dirty = false;
                tail_read_file(ctx, ctx->files[i], &budget, now);
            }
    }
    for (size_t i = 0; i < ctx->nfiles && !ctx->stopped;) {
        struct tail_file *f = ctx->files[i];

        if (tail_parser_pending(&f->ps) && now - f->data_ms >= ctx->multiline_flush_ms)
            tail_flush(ctx, f, false);
        if (f->rotated && budget > 0 && now - f->rotated_ms >= ctx->rotate_wait_ms) {
            tail_read_file(ctx, f, &budget, now);
            if (budget > 0 && !ctx->stopped && !tail_flush(ctx, f, true)) {
                api->log(ctx->ins, PIPIT_LOG_INFO, "closed rotated %s at offset %" PRIu64,
                         f->path, f->off);
                tail_mark(ctx);
                tail_close_file(ctx, i);
                continue;
            }
        }
        i++;
    }
    if (ctx->counts.invalid_utf8 + ctx->counts.nul > bad && !ctx->bad_logged) {
        ctx->bad_logged = true;
        api->log(ctx->ins, PIPIT_LOG_WARN, "invalid UTF-8 or NUL bytes replaced by U+FFFD; "
                 "further ones are only counted (tail.invalid_utf8, tail.nul_bytes)");
    }
    tail_mark(ctx);
    if (ctx->ckpt_dirty && now - ctx->ckpt_saved_ms >= ctx->ckpt_ms)
        tail_ckpt_save(ctx);
    if (ctx->stats_ms > 0 && now - ctx->last_stats_ms >= ctx->stats_ms) {
        ctx->last_stats_ms = now;
        tail_stats(ctx);
    }
    ctx->more = budget <= 0 || ctx->stopped;
}

static void tail_on_tick(pipit_instance *ins, void *data);

/* Come back at once when the read budget ran out, else at the period. */
static void tail_rearm(struct tail_ctx *ctx)
{
    uint64_t period = (uint64_t)(ctx->ifd >= 0 ? TAIL_TICK_MS : ctx->poll_ms);

    if (ctx->more)
        api->timer_start(ctx->ins, ctx->stopped ? 50 : 0, period, tail_on_tick);
}

static void tail_on_tick(pipit_instance *ins, void *data)
{
    struct tail_ctx *ctx = data;
    bool was_more = ctx->more;

    (void)ins;
    tail_work(ctx, true);
    if (ctx->more || was_more)
        tail_rearm(ctx);
    if (was_more && !ctx->more) {
        uint64_t period = (uint64_t)(ctx->ifd >= 0 ? TAIL_TICK_MS : ctx->poll_ms);

        api->timer_start(ctx->ins, period, period, tail_on_tick);
    }
}

/* inotify: note which files changed, rescan on folder events. */
static void tail_on_inotify(pipit_instance *ins, void *data, int fd, int events)
{
    struct tail_ctx *ctx = data;
    char b[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
    ssize_t n;

    (void)ins;
    (void)events;
    while ((n = read(fd, b, sizeof b)) > 0) {
        for (char *p = b; p < b + n;) {
            struct inotify_event *e = (struct inotify_event *)p;

            p += sizeof *e + e->len;
            if (e->mask & IN_Q_OVERFLOW) {
                ctx->need_scan = true;
                for (size_t i = 0; i < ctx->nfiles; i++)
                    ctx->files[i]->dirty = true;
                continue;
            }
            for (size_t i = 0; i < ctx->ndir_wds; i++)
                if (ctx->dir_wds[i] == e->wd)
                    ctx->need_scan = true;
            for (size_t i = 0; i < ctx->nfiles; i++)
                if (ctx->files[i]->wd == e->wd)
                    ctx->files[i]->dirty = true;
        }
    }
    if (ctx->more)
        return;                         /* the timer is reading already */
    tail_work(ctx, false);
    tail_rearm(ctx);
}

/* Watch the folder of each pattern whose folder has no wildcard. */
static void tail_watch_dirs(struct tail_ctx *ctx)
{
    ctx->dir_wds = calloc(ctx->paths.count ? ctx->paths.count : 1, sizeof *ctx->dir_wds);
    if (!ctx->dir_wds)
        return;
    for (size_t p = 0; p < ctx->paths.count; p++) {
        char dir[PATH_MAX];
        const char *s = ctx->paths.items[p], *slash = strrchr(s, '/');
        int wd;

        if (!slash)
            snprintf(dir, sizeof dir, ".");
        else
            snprintf(dir, sizeof dir, "%.*s", slash == s ? 1 : (int)(slash - s), s);
        if (strpbrk(dir, "*?[{"))
            continue;                   /* found by the periodic scan */
        wd = inotify_add_watch(ctx->ifd, dir, IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM |
                               IN_DELETE | IN_ONLYDIR);
        if (wd >= 0)
            ctx->dir_wds[ctx->ndir_wds++] = wd;
        else
            api->log(ctx->ins, PIPIT_LOG_DEBUG, "no inotify watch on %s: %s", dir,
                     strerror(errno));
    }
}

static void tail_free(struct tail_ctx *ctx)
{
    while (ctx->nfiles)
        tail_close_file(ctx, ctx->nfiles - 1);
    free(ctx->files);
    ctx->files = NULL;
    if (ctx->ifd >= 0)
        close(ctx->ifd);
    ctx->ifd = -1;
    free(ctx->dir_wds);
    ctx->dir_wds = NULL;
    for (size_t i = 0; i < ctx->nckpt; i++)
        free(ctx->ckpt[i].path);
    free(ctx->ckpt);
    ctx->ckpt = NULL;
    for (size_t i = 0; i < ctx->npend; i++)
        free(ctx->pend[i].path);
    free(ctx->pend);
    ctx->pend = NULL;
    tail_conf_free(&ctx->conf);
}

/* Check the options that the option table cannot (words, regexes). */
static int tail_check_options(pipit_instance *ins, struct tail_ctx *ctx)
{
    char err[512];

    if (ctx->paths.count == 0) {
        api->log(ins, PIPIT_LOG_ERROR, "path: give at least one file or glob");
        return PIPIT_EINVAL;
    }
    if (strcmp(ctx->read_from, "end") && strcmp(ctx->read_from, "beginning")) {
        api->log(ins, PIPIT_LOG_ERROR, "read_from: \"%s\" is not end or beginning",
                 ctx->read_from);
        return PIPIT_EINVAL;
    }
    if (strcmp(ctx->watcher, "auto") && strcmp(ctx->watcher, "inotify") &&
        strcmp(ctx->watcher, "poll")) {
        api->log(ins, PIPIT_LOG_ERROR, "watcher: \"%s\" is not auto, inotify or poll",
                 ctx->watcher);
        return PIPIT_EINVAL;
    }
    if (!strcmp(ctx->format, "none"))
        ctx->conf.format = TAIL_FMT_NONE;
    else if (!strcmp(ctx->format, "json"))
        ctx->conf.format = TAIL_FMT_JSON;
    else if (!strcmp(ctx->format, "regex"))
        ctx->conf.format = TAIL_FMT_REGEX;
    else {
        api->log(ins, PIPIT_LOG_ERROR, "format: \"%s\" is not none, json or regex", ctx->format);
        return PIPIT_EINVAL;
    }
    if (ctx->conf.format == TAIL_FMT_REGEX && (!ctx->regex || !*ctx->regex)) {
        api->log(ins, PIPIT_LOG_ERROR, "format: regex needs the regex option");
        return PIPIT_EINVAL;
    }
    ctx->conf.max_line = (size_t)ctx->max_line;
    ctx->conf.max_record = (size_t)ctx->max_record;
    if (tail_conf_init(&ctx->conf, ctx->multiline_start,
                       ctx->conf.format == TAIL_FMT_REGEX ? ctx->regex : NULL,
                       err, sizeof err) != PIPIT_OK) {
        api->log(ins, PIPIT_LOG_ERROR, "%s", err);
        return PIPIT_EINVAL;
    }
    return PIPIT_OK;
}

static int tail_init(pipit_instance *ins, void *data)
{
    struct tail_ctx *ctx = data;
    const char *dir;
    uint64_t period;
    int rc;

    ctx->ins = ins;
    ctx->ifd = -1;
    rc = tail_check_options(ins, ctx);
    if (rc != PIPIT_OK)
        return rc;
    dir = api->state_dir(ins);
    if (!dir) {
        api->log(ins, PIPIT_LOG_ERROR, "no state directory for checkpoints");
        rc = PIPIT_EIO;
        goto fail;
    }
    snprintf(ctx->ckpt_path, sizeof ctx->ckpt_path, "%s/%s", dir, TAIL_CKPT_NAME);
    ctx->files = calloc((size_t)ctx->max_files, sizeof *ctx->files);
    if (!ctx->files) {
        rc = PIPIT_ENOMEM;
        goto fail;
    }
    ctx->can_mark = PIPIT_API_HAS(api, mark);
    tail_ckpt_load(ctx);
    if (strcmp(ctx->watcher, "poll") != 0) {
        ctx->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (ctx->ifd < 0) {
            if (!strcmp(ctx->watcher, "inotify")) {
                api->log(ins, PIPIT_LOG_ERROR, "watcher inotify: %s", strerror(errno));
                rc = PIPIT_ENOTSUP;
                goto fail;
            }
            api->log(ins, PIPIT_LOG_INFO, "no inotify (%s); polling every %" PRId64 " ms",
                     strerror(errno), ctx->poll_ms);
        } else {
            tail_watch_dirs(ctx);
            rc = api->watch_fd(ins, ctx->ifd, PIPIT_FD_READ, tail_on_inotify);
            if (rc != PIPIT_OK)
                goto fail;
        }
    }
    ctx->last_stats_ms = tail_now_ms();
    ctx->need_scan = true;
    /* the first scan and read happen on the loop, at once */
    period = (uint64_t)(ctx->ifd >= 0 ? TAIL_TICK_MS : ctx->poll_ms);
    rc = api->timer_start(ins, 0, period, tail_on_tick);
    if (rc != PIPIT_OK)
        goto fail;
    return PIPIT_OK;
fail:
    if (ctx->ifd >= 0)
        api->unwatch_fd(ins, ctx->ifd);
    tail_free(ctx);
    return rc;
}

/* Stop: commit what was acknowledged. Records not acknowledged yet are
 * read again after a restart (from the checkpoint). */
static void tail_fini(pipit_instance *ins, void *data)
{
    struct tail_ctx *ctx = data;

    (void)ins;
    if (!ctx->can_mark)
        tail_mark(ctx);
    if (ctx->ckpt_dirty)
        tail_ckpt_save(ctx);
    tail_free(ctx);
}

PIPIT_PLUGIN_DEFINE(
    .name = "tail", .version = "1.0.0", .kinds = PIPIT_COLLECTOR,
    .description = "Follow log files through rotation; each line or multiline record is a log record",
    .ctx_size = sizeof(struct tail_ctx), .options = tail_options,
    .load = tail_load, .init = tail_init, .fini = tail_fini, .ack = tail_ack);
