/* abi_opttype: an option of an unknown type. */
#include <pipit/plugin.h>

struct opttype_ctx { int64_t n; };

static const struct pipit_option opttype_options[] = {
    PIPIT_OPT_INT("fine", "1", 0, 10, struct opttype_ctx, n, "A valid option"),
    { "weird", 42, NULL, 0, 0, 1, 0, "An option of type 42" },
    PIPIT_OPT_END
};

static int opttype_collect(pipit_instance *ins, void *data) { return PIPIT_OK; }

PIPIT_PLUGIN_DEFINE(.name = "abi_opttype", .version = "1.0.0", .kinds = PIPIT_COLLECTOR,
                    .ctx_size = sizeof(struct opttype_ctx), .options = opttype_options,
                    .collect = opttype_collect);
