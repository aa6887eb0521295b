/* deploy_plan.h: the pure parts of pipit deploy: inventory, waves, deployment ids, per-host targets, outcomes and the stop rule. */
#ifndef PIPIT_DEPLOY_PLAN_H
#define PIPIT_DEPLOY_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <pipit/plugin.h>
#include "buf.h"
#include "diag.h"
#include "selector.h"

#define DEPLOY_INVENTORY_MAX_BYTES (16u << 20)
#define DEPLOY_MAX_HOSTS   100000
#define DEPLOY_HOST_MAX    253          /* a DNS name at most */
#define DEPLOY_MAX_LABELS  64           /* per host */

/* One host of the inventory: its name and labels, as the agent there has them. */
struct deploy_host {
    char *name;                         /* owned */
    char **keys, **values;              /* owned, nlabels each */
    struct pipit_strmap labels;         /* the same, for selector_match */
    int line;                           /* in the inventory file */
};

struct deploy_inventory {
    struct deploy_host *hosts;          /* in file order */
    size_t count;
};

/*
 * Parse an inventory: one host a line, "HOST [key=value ...]", blanks
 * between words, "#" to the end of a line a comment, blank lines ignored.
 * A host name is 1 to 253 characters without blanks, commas, '=' or '#';
 * label keys are letters, digits and "_.-/" (as in selectors, and "host" is
 * not one: it is the name); values are non-empty. A host listed twice, or
 * a label given twice on a line, is an error. Every error goes to d with
 * file and line. Returns PIPIT_OK with inv filled (free it with
 * deploy_inventory_free), PIPIT_EPARSE or PIPIT_ENOMEM; inv is empty on error.
 */
int deploy_inventory_parse(const char *text, size_t len, const char *file,
                           struct deploy_inventory *inv, struct diag *d);
/* deploy_inventory_parse() of a file; a file that cannot be read is
 * PIPIT_EIO with the reason in d. */
int deploy_inventory_load(const char *path, struct deploy_inventory *inv, struct diag *d);
void deploy_inventory_free(struct deploy_inventory *inv);

/* Indices of the hosts of inv the selector addresses, in inventory order,
 * in out (room for inv->count). Returns how many. */
size_t deploy_select(const struct deploy_inventory *inv, const struct selector *sel,
                     size_t *out);

/* The --batch of a rolling deployment: N hosts, or N percent of the targets. */
struct deploy_batch {
    unsigned n;                         /* at least 1; at most 100 as a percentage */
    bool percent;
};

/* Parse "N" (1 to DEPLOY_MAX_HOSTS) or "N%" (1 to 100). Returns PIPIT_OK
 * or PIPIT_EINVAL. */
int deploy_batch_parse(const char *s, struct deploy_batch *b);
/* Hosts per wave for ntargets targets: N, or N% rounded up; never below 1
 * nor above ntargets (when there are any). */
size_t deploy_batch_size(const struct deploy_batch *b, size_t ntargets);

struct deploy_wave {
    size_t *hosts;                      /* indices into the inventory; owned */
    size_t count;
    bool canary;                        /* the canary set, gated before the rest */
};

struct deploy_waves {
    struct deploy_wave *waves;
    size_t count;
};

/* Split targets[0..n) into waves of batch hosts, in order. Returns
 * PIPIT_OK or PIPIT_ENOMEM (out empty). n == 0 gives no waves. */
int deploy_waves_rolling(const size_t *targets, size_t n, size_t batch,
                         struct deploy_waves *out);

/*
 * A canary deployment: first a wave of the canary set, then the other
 * targets in waves of batch hosts. The canary set is the targets sel
 * addresses (when sel is not NULL) or else the first ncanary targets.
 * Returns PIPIT_OK, PIPIT_EINVAL with a sentence in err when the canary
 * set is empty, or PIPIT_ENOMEM. When the canary set holds every target,
 * the canary wave is the only one.
 */
int deploy_waves_canary(const struct deploy_inventory *inv, const size_t *targets, size_t n,
                        const struct selector *sel, size_t ncanary, size_t batch,
                        struct deploy_waves *out, char *err, size_t errlen);
void deploy_waves_free(struct deploy_waves *w);

/*
 * The default deployment id, "<plan>-<YYYYmmddTHHMMSSZ>-<4 hex>", from the
 * plan's name, now (Unix seconds, shown in UTC) and two random bytes.
 * Returns PIPIT_OK, or PIPIT_ERANGE when it does not fit in outlen.
 */
int deploy_make_id(char *out, size_t outlen, const char *plan, int64_t now,
                   const unsigned char rnd[2]);

/* Whether id is a valid envelope id: 1 to max printable ASCII characters,
 * no blanks. */
bool deploy_id_valid(const char *id, size_t max);

/*
 * The target selector of the command for one host: "host=HOST" when the
 * deployment's selector is "*", else "SELECTOR,host=HOST", so that the
 * agent checks both (characters of the host name that fnmatch treats
 * specially are escaped). Appends to out; returns PIPIT_OK or PIPIT_ENOMEM.
 */
int deploy_host_target(const char *selector_text, const struct selector *sel,
                       const char *host, struct buf *out);

/* What became of a host in a deployment. */
#define DEPLOY_RESULT_MAP(XX)                                                 \
    XX(PENDING,         "pending",         false)                             \
    XX(NOT_SENT,        "not_sent",        false)                             \
    XX(OK,              "ok",              false)                             \
    XX(FAILED,          "failed",          true)                              \
    XX(REFUSED,         "refused",         true)                              \
    XX(TIMED_OUT,       "timed_out",       true)                              \
    XX(SEND_FAILED,     "send_failed",     true)                              \
    XX(ROLLED_BACK,     "rolled_back",     false)                             \
    XX(ROLLBACK_FAILED, "rollback_failed", false)

enum deploy_result {
#define DEPLOY__ENUM(name, str, fails) DEPLOY_##name,
    DEPLOY_RESULT_MAP(DEPLOY__ENUM)
#undef DEPLOY__ENUM
    DEPLOY_RESULT_MAX
};

const char *deploy_result_name(enum deploy_result r);
/* Whether the result counts as a failure against --max-failures. */
bool deploy_result_fails(enum deploy_result r);

/* One host of a wave being watched. */
struct deploy_watch {
    const char *host;                   /* borrowed from the inventory */
    enum deploy_result result;          /* PENDING until its outcome is known */
    char status[32];                    /* plan.finished status, or "" */
    char detail[512];                   /* reason and message of a refusal */
};

/* The parts of one event record the deployer reads (borrowed from the
 * JSON it was parsed from). */
struct deploy_event {
    const char *name, *status, *host, *message;
    const char *run, *step, *action, *reason, *attempt;
    int64_t duration_ms;                /* -1 when not given */
};

/*
 * Apply one event of run id to the hosts w[0..n) being watched: a
 * plan.finished of that run from a pending host sets its outcome (ok or
 * failed, with the status), a command.refused of that run sets refused
 * (with its reason and message). Returns the index of the host the event
 * is about (also for step events, which change nothing), or -1 when it is
 * about another run or host, or about a host already decided.
 */
int deploy_watch_apply(struct deploy_watch *w, size_t n, const char *id,
                       const struct deploy_event *ev);

/* Counts of the results of hosts. */
struct deploy_tally {
    size_t n[DEPLOY_RESULT_MAX];
    size_t failures;                    /* hosts whose result fails */
};

void deploy_tally_add(struct deploy_tally *t, enum deploy_result r);

/* The stop rule: failures so far over max_failures. */
bool deploy_should_stop(const struct deploy_tally *t, size_t max_failures);

#endif
