/* abi_optoffset: an option whose field lies outside ctx_size. */
#include <pipit/plugin.h>

struct optoffset_ctx { int64_t n; };

static const struct pipit_option optoffset_options[] = {
    { "far", PIPIT_OPT_T_INT, "1", 64, 0, 1, 0, "Stored past the context" },
    PIPIT_OPT_END
};

static int optoffset_collect(pipit_instance *ins, void *data) { return PIPIT_OK; }

PIPIT_PLUGIN_DEFINE(.name = "abi_optoffset", .version = "1.0.0", .kinds = PIPIT_COLLECTOR,
                    .ctx_size = sizeof(struct optoffset_ctx), .options = optoffset_options,
                    .collect = optoffset_collect);
