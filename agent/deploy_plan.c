/* deploy_plan.c: the pure parts of pipit deploy: inventory, waves, deployment ids, per-host targets, outcomes and the stop rule. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "deploy_plan.h"

/* ---- inventory ------------------------------------------------------------ */

static void host_free(struct deploy_host *h)
{
    for (size_t i = 0; i < h->labels.count; i++) {
        free(h->keys[i]);
        free(h->values[i]);
    }
    free(h->keys);
    free(h->values);
    free(h->name);
    memset(h, 0, sizeof *h);
}

void deploy_inventory_free(struct deploy_inventory *inv)
{
    for (size_t i = 0; i < inv->count; i++)
        host_free(&inv->hosts[i]);
    free(inv->hosts);
    inv->hosts = NULL;
    inv->count = 0;
}

static bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

static bool key_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '.' || c == '-' || c == '/';
}

/* The words of one line (comment cut), NUL-terminated in place. Returns
 * how many, at most max; *more is set when there were more. */
static size_t split_words(char *line, char **w, size_t max, bool *more)
{
    size_t n = 0;
    char *p = line;

    *more = false;
    for (;;) {
        while (is_blank(*p))
            p++;
        if (!*p)
            break;
        if (n == max) {
            *more = true;
            break;
        }
        w[n++] = p;
        while (*p && !is_blank(*p))
            p++;
        if (*p)
            *p++ = '\0';
    }
    return n;
}

/* Check a host name; NULL when fine, else why not. */
static const char *host_name_problem(const char *s)
{
    size_t len = strlen(s);

    if (len > DEPLOY_HOST_MAX)
        return "longer than 253 characters";
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x21 || c > 0x7e)
            return "only printable ASCII characters";
        if (c == ',' || c == '=')
            return "no ',' or '=' (a host name is the first word of the line)";
    }
    return NULL;
}

/* Parse the line (NUL-terminated, comment cut) into h. Returns 0, 1 for a
 * blank line, -1 for an error (in d), -2 out of memory. */
static int parse_line(char *line, const char *file, int lineno, struct deploy_host *h,
                      struct diag *d)
{
    char *w[DEPLOY_MAX_LABELS + 2];
    bool more;
    size_t n = split_words(line, w, DEPLOY_MAX_LABELS + 1, &more);
    const char *why;

    memset(h, 0, sizeof *h);
    if (n == 0)
        return 1;
    if (more) {
        diag_add(d, file, lineno, w[0], "more than %d labels", DEPLOY_MAX_LABELS);
        return -1;
    }
    if ((why = host_name_problem(w[0]))) {
        diag_add(d, file, lineno, NULL, "host name \"%.64s\": %s", w[0], why);
        return -1;
    }
    h->line = lineno;
    h->name = strdup(w[0]);
    h->keys = calloc(n, sizeof *h->keys);
    h->values = calloc(n, sizeof *h->values);
    if (!h->name || !h->keys || !h->values)
        goto nomem;
    for (size_t i = 1; i < n; i++) {
        char *eq = strchr(w[i], '=');
        if (!eq || eq == w[i] || !eq[1]) {
            diag_add(d, file, lineno, h->name, "\"%.64s\": a label is key=value, both "
                     "non-empty", w[i]);
            goto bad;
        }
        *eq = '\0';
        for (const char *p = w[i]; *p; p++)
            if (!key_char(*p)) {
                diag_add(d, file, lineno, h->name, "label key \"%.64s\": only letters, "
                         "digits and _.-/", w[i]);
                goto bad;
            }
        if (!strcmp(w[i], "host")) {
            diag_add(d, file, lineno, h->name, "\"host\" is not a label: it is the host "
                     "name, the first word of the line");
            goto bad;
        }
        if (strchr(eq + 1, ',') || strchr(eq + 1, '=')) {
            diag_add(d, file, lineno, h->name, "label %s: a value has no ',' or '='", w[i]);
            goto bad;
        }
        for (size_t k = 0; k < h->labels.count; k++)
            if (!strcmp(h->keys[k], w[i])) {
                diag_add(d, file, lineno, h->name, "label %s given twice", w[i]);
                goto bad;
            }
        h->keys[h->labels.count] = strdup(w[i]);
        h->values[h->labels.count] = strdup(eq + 1);
        h->labels.count++;
        if (!h->keys[h->labels.count - 1] || !h->values[h->labels.count - 1])
            goto nomem;
    }
    h->labels.keys = (const char *const *)h->keys;
    h->labels.values = (const char *const *)h->values;
    return 0;
bad:
    host_free(h);
    return -1;
nomem:
    host_free(h);
    return -2;
}

int deploy_inventory_parse(const char *text, size_t len, const char *file,
                           struct deploy_inventory *inv, struct diag *d)
{
    size_t cap = 0, errors = d->count + d->dropped;
    int lineno = 0;
    char *copy = malloc(len + 1);

    memset(inv, 0, sizeof *inv);
    if (!copy)
        return PIPIT_ENOMEM;
    memcpy(copy, text, len);
    copy[len] = '\0';
    for (char *line = copy, *next; line && line < copy + len; line = next) {
        next = memchr(line, '\n', (size_t)(copy + len - line));
        if (next)
            *next++ = '\0';
        lineno++;
        if (strlen(line) != (size_t)((next ? next - 1 : copy + len) - line)) {
            diag_add(d, file, lineno, NULL, "a NUL byte: not a text file");
            continue;
        }
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        struct deploy_host h;
        int r = parse_line(line, file, lineno, &h, d);
        if (r == -2)
            goto nomem;
        if (r != 0)
            continue;
        bool dup = false;
        for (size_t i = 0; i < inv->count && !dup; i++)
            if (!strcmp(inv->hosts[i].name, h.name)) {
                diag_add(d, file, lineno, h.name, "host listed twice (first on line %d)",
                         inv->hosts[i].line);
                dup = true;
            }
        if (!dup && inv->count == DEPLOY_MAX_HOSTS) {
            diag_add(d, file, lineno, h.name, "more than %d hosts", DEPLOY_MAX_HOSTS);
            dup = true;
        }
        if (dup) {
            host_free(&h);
            continue;
        }
        if (inv->count == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            struct deploy_host *nh = realloc(inv->hosts, ncap * sizeof *nh);
            if (!nh) {
                host_free(&h);
                goto nomem;
            }
            inv->hosts = nh;
            cap = ncap;
        }
        inv->hosts[inv->count++] = h;
    }
    free(copy);
    if (d->count + d->dropped > errors) {
        deploy_inventory_free(inv);
        return PIPIT_EPARSE;
    }
    return PIPIT_OK;
nomem:
    free(copy);
    deploy_inventory_free(inv);
    return PIPIT_ENOMEM;
}

int deploy_inventory_load(const char *path, struct deploy_inventory *inv, struct diag *d)
{
    FILE *f = fopen(path, "re");
    struct buf b = BUF_INIT;
    char tmp[65536];
    size_t n;
    int r;

    memset(inv, 0, sizeof *inv);
    if (!f) {
        diag_add(d, path, 0, NULL, "cannot read: %s", strerror(errno));
        return PIPIT_EIO;
    }
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0) {
        if (b.len + n > DEPLOY_INVENTORY_MAX_BYTES) {
            diag_add(d, path, 0, NULL, "larger than %u bytes", DEPLOY_INVENTORY_MAX_BYTES);
            r = PIPIT_EPARSE;
            goto out;
        }
        if (buf_append(&b, tmp, n) != PIPIT_OK) {
            r = PIPIT_ENOMEM;
            goto out;
        }
    }
    if (ferror(f)) {
        diag_add(d, path, 0, NULL, "cannot read: %s", strerror(errno));
        r = PIPIT_EIO;
        goto out;
    }
    r = deploy_inventory_parse(b.data ? b.data : "", b.len, path, inv, d);
out:
    fclose(f);
    buf_free(&b);
    return r;
}

size_t deploy_select(const struct deploy_inventory *inv, const struct selector *sel,
                     size_t *out)
{
    size_t n = 0;

    for (size_t i = 0; i < inv->count; i++)
        if (selector_match(sel, inv->hosts[i].name, &inv->hosts[i].labels))
            out[n++] = i;
    return n;
}

/* ---- waves ---------------------------------------------------------------- */

int deploy_batch_parse(const char *s, struct deploy_batch *b)
{
    char *end;
    unsigned long v;

    if (!s || *s < '0' || *s > '9')
        return PIPIT_EINVAL;
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno || v < 1)
        return PIPIT_EINVAL;
    if (end[0] == '%' && !end[1]) {
        if (v > 100)
            return PIPIT_EINVAL;
        *b = (struct deploy_batch){ (unsigned)v, true };
        return PIPIT_OK;
    }
    if (*end || v > DEPLOY_MAX_HOSTS)
        return PIPIT_EINVAL;
    *b = (struct deploy_batch){ (unsigned)v, false };
    return PIPIT_OK;
}

size_t deploy_batch_size(const struct deploy_batch *b, size_t ntargets)
{
    size_t n = b->percent ? (ntargets * b->n + 99) / 100 : b->n;

    if (n > ntargets)
        n = ntargets;
    return n < 1 ? 1 : n;
}

void deploy_waves_free(struct deploy_waves *w)
{
    for (size_t i = 0; i < w->count; i++)
        free(w->waves[i].hosts);
    free(w->waves);
    w->waves = NULL;
    w->count = 0;
}

/* Append a wave of hosts[0..n) (copied). */
static int add_wave(struct deploy_waves *w, const size_t *hosts, size_t n, bool canary)
{
    struct deploy_wave *nw = realloc(w->waves, (w->count + 1) * sizeof *nw);

    if (!nw)
        return PIPIT_ENOMEM;
    w->waves = nw;
    nw[w->count] = (struct deploy_wave){ malloc(n * sizeof(size_t)), n, canary };
    if (!nw[w->count].hosts)
        return PIPIT_ENOMEM;
    memcpy(nw[w->count].hosts, hosts, n * sizeof(size_t));
    w->count++;
    return PIPIT_OK;
}

static int add_rolling(struct deploy_waves *w, const size_t *targets, size_t n, size_t batch)
{
    if (batch < 1)
        batch = 1;
    for (size_t i = 0; i < n; i += batch)
        if (add_wave(w, targets + i, n - i < batch ? n - i : batch, false) != PIPIT_OK)
            return PIPIT_ENOMEM;
    return PIPIT_OK;
}

int deploy_waves_rolling(const size_t *targets, size_t n, size_t batch,
                         struct deploy_waves *out)
{
    memset(out, 0, sizeof *out);
    if (add_rolling(out, targets, n, batch) != PIPIT_OK) {
        deploy_waves_free(out);
        return PIPIT_ENOMEM;
    }
    return PIPIT_OK;
}

int deploy_waves_canary(const struct deploy_inventory *inv, const size_t *targets, size_t n,
                        const struct selector *sel, size_t ncanary, size_t batch,
                        struct deploy_waves *out, char *err, size_t errlen)
{
    size_t *canary = malloc((n ? n : 1) * sizeof *canary);
    size_t *rest = malloc((n ? n : 1) * sizeof *rest);
    size_t nc = 0, nr = 0;
    int r = PIPIT_ENOMEM;

    memset(out, 0, sizeof *out);
    if (!canary || !rest)
        goto out;
    for (size_t i = 0; i < n; i++) {
        const struct deploy_host *h = &inv->hosts[targets[i]];
        bool in = sel ? selector_match(sel, h->name, &h->labels) : nc < ncanary;
        if (in)
            canary[nc++] = targets[i];
        else
            rest[nr++] = targets[i];
    }
    if (nc == 0) {
        snprintf(err, errlen, "%s", sel ? "no target host matches the canary selector"
                                        : "the canary set is empty");
        r = PIPIT_EINVAL;
        goto out;
    }
    if (add_wave(out, canary, nc, true) != PIPIT_OK || add_rolling(out, rest, nr, batch) != PIPIT_OK)
        goto out;
    r = PIPIT_OK;
out:
    if (r != PIPIT_OK)
        deploy_waves_free(out);
    free(canary);
    free(rest);
    return r;
}

/* ---- ids and targets ------------------------------------------------------ */

int deploy_make_id(char *out, size_t outlen, const char *plan, int64_t now,
                   const unsigned char rnd[2])
{
    time_t t = (time_t)now;
    struct tm tm;
    char stamp[32];

    if (!gmtime_r(&t, &tm) || strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm) == 0)
        return PIPIT_ERANGE;
    int n = snprintf(out, outlen, "%s-%s-%02x%02x", plan, stamp, rnd[0], rnd[1]);
    return n < 0 || (size_t)n >= outlen ? PIPIT_ERANGE : PIPIT_OK;
}

bool deploy_id_valid(const char *id, size_t max)
{
    size_t n = strlen(id);

    if (n < 1 || n > max)
        return false;
    for (const char *p = id; *p; p++)
        if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e)
            return false;
    return true;
}

int deploy_host_target(const char *selector_text, const struct selector *sel,
                       const char *host, struct buf *out)
{
    int r = PIPIT_OK;

    if (!sel->all) {
        /* the user's text without surrounding blanks, then one more term */
        const char *s = selector_text, *e = s + strlen(s);
        while (s < e && (*s == ' ' || *s == '\t'))
            s++;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        r |= buf_append(out, s, (size_t)(e - s));
        r |= buf_putc(out, ',');
    }
    r |= buf_puts(out, "host=");
    for (const char *p = host; *p; p++) {
        if (*p == '*' || *p == '?' || *p == '[' || *p == ']' || *p == '\\')
            r |= buf_putc(out, '\\');
        r |= buf_putc(out, *p);
    }
    return r ? PIPIT_ENOMEM : PIPIT_OK;
}

/* ---- outcomes ------------------------------------------------------------- */

const char *deploy_result_name(enum deploy_result r)
{
    static const char *const names[] = {
#define DEPLOY__NAME(name, str, fails) str,
        DEPLOY_RESULT_MAP(DEPLOY__NAME)
#undef DEPLOY__NAME
    };
    return (unsigned)r < DEPLOY_RESULT_MAX ? names[r] : "unknown";
}

bool deploy_result_fails(enum deploy_result r)
{
    static const bool fails[] = {
#define DEPLOY__FAILS(name, str, f) f,
        DEPLOY_RESULT_MAP(DEPLOY__FAILS)
#undef DEPLOY__FAILS
    };
    return (unsigned)r < DEPLOY_RESULT_MAX && fails[r];
}

int deploy_watch_apply(struct deploy_watch *w, size_t n, const char *id,
                       const struct deploy_event *ev)
{
    if (!ev->name || !ev->run || !ev->host || strcmp(ev->run, id) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(w[i].host, ev->host) != 0)
            continue;
        if (w[i].result != DEPLOY_PENDING)
            return -1;
        if (!strcmp(ev->name, "plan.finished")) {
            const char *st = ev->status ? ev->status : "";
            w[i].result = !strcmp(st, "ok") ? DEPLOY_OK : DEPLOY_FAILED;
            snprintf(w[i].status, sizeof w[i].status, "%s", *st ? st : "unknown");
            snprintf(w[i].detail, sizeof w[i].detail, "%s", ev->message ? ev->message : "");
        } else if (!strcmp(ev->name, "command.refused")) {
            w[i].result = DEPLOY_REFUSED;
            snprintf(w[i].status, sizeof w[i].status, "refused");
            snprintf(w[i].detail, sizeof w[i].detail, "%s%s%s",
                     ev->reason ? ev->reason : "refused", ev->message ? ": " : "",
                     ev->message ? ev->message : "");
        }
        return (int)i;
    }
    return -1;
}

void deploy_tally_add(struct deploy_tally *t, enum deploy_result r)
{
    if ((unsigned)r >= DEPLOY_RESULT_MAX)
        return;
    t->n[r]++;
    if (deploy_result_fails(r))
        t->failures++;
}

bool deploy_should_stop(const struct deploy_tally *t, size_t max_failures)
{
    return t->failures > max_failures;
}
