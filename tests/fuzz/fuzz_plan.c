/* fuzz_plan.c: libFuzzer target for deployment plans: the loader, templates and conditions (plans arrive from the network in fleet commands). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../../agent/plan.h"
#include <pipit/plugin.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every result asked for exists, except those of a step named "missing". */
static const char *fuzz_result(void *arg, const char *step, const char *key)
{
    return strcmp(step, "missing") == 0 ? NULL : "ok";
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *const overrides[] = { "version=2", "x=" };
    struct diag d;
    char why[512];

    diag_init(&d);
    struct plan *p = plan_load((const char *)data, size, "fuzz.yaml", overrides, 2, &d);
    if (p) {
        /* a plan that loads: every name fits its rules, every step expands */
        struct plan_ctx c = { p, "run-1", "host-1", { fuzz_result, NULL } };
        const char *actions[PLAN_MAX_STEPS * 2];
        size_t n = plan_actions(p, actions, sizeof actions / sizeof actions[0]);
        if (n == 0 || strlen(p->digest) != 64)
            abort();
        for (size_t i = 0; i < p->nsteps; i++) {
            const struct plan_step *s = &p->steps[i];
            if (!s->name || !s->action || !s->node)
                abort();
            struct cfg_node *o = plan_step_options(&c, s, why, sizeof why);
            if (!o && !why[0])
                abort();
            cfg_node_free(o);
            if (s->when && plan_when(&c, s->when, why, sizeof why) < 0 && !why[0])
                abort();
        }
        plan_free(p);
    } else if (d.count == 0) {
        abort();                        /* refused without a reason */
    }
    diag_free(&d);

    /* the input as a template and as a condition */
    char *text = strndup((const char *)data, size);
    if (text) {
        struct plan dummy = { .name = "fuzz" };
        struct plan_ctx c = { &dummy, "run-1", "host-1", { fuzz_result, NULL } };
        struct buf b = BUF_INIT;
        why[0] = '\0';
        if (plan_expand(&c, text, &b, why, sizeof why) != PIPIT_OK && !why[0])
            abort();
        buf_free(&b);
        why[0] = '\0';
        if (plan_when(&c, text, why, sizeof why) < 0 && !why[0])
            abort();
        free(text);
    }
    return 0;
}
