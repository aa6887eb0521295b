/* fuzz_plugin_proto.c: libFuzzer target for the frames pipitd reads from a plugin host process (agent/plugin_proto.c). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <pipit/plugin.h>
#include "plugin_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct seen {
    const char *lo, *hi;                /* the frame's lines */
    size_t kept;
};

/* A kept line lies inside the frame and ends with its newline. */
static void keep(const char *line, size_t len, void *arg)
{
    struct seen *s = arg;
    if (line < s->lo || len == 0 || len > (size_t)(s->hi - line) || line[len - 1] != '\n')
        abort();
    s->kept++;
}

/*
 * The first byte sets the size of the pieces (1 to 64 bytes) the rest is
 * fed in, as reads from a pipe would; the payload bound is 4 KiB. Every
 * frame returned must be of a type a host may send, within the bound and
 * the bytes fed; a RECORDS frame's lines go through proto_check_lines,
 * which must keep or count each one. After an error the stream is dead,
 * as pipitd kills the process.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct proto_dec d;
    struct proto_frame f;
    char err[160];
    size_t piece, fed = 0;

    if (size < 1)
        return 0;
    piece = (size_t)(data[0] % 64) + 1;
    data++;
    size--;
    proto_dec_init(&d, 4096);
    while (fed < size) {
        size_t n = size - fed < piece ? size - fed : piece;
        if (proto_dec_feed(&d, data + fed, n) != PIPIT_OK)
            abort();
        fed += n;
        int r;
        while ((r = proto_next(&d, &f, err, sizeof err)) == 1) {
            if (f.len > 4096 || f.type < PROTO_READY || f.type > PROTO_LOG)
                abort();
            if (f.len && (f.payload < (const unsigned char *)d.in.data ||
                          f.payload + f.len > (const unsigned char *)d.in.data + d.in.len))
                abort();
            if (f.type == PROTO_RECORDS) {
                struct seen s = { (const char *)f.payload + 1,
                                  (const char *)f.payload + f.len, 0 };
                size_t bad = 0, lines = 0;
                for (size_t i = 1; i < f.len; i++)
                    lines += f.payload[i] == '\n';
                size_t kept = proto_check_lines(f.payload[0], s.lo, f.len - 1, "h", "i",
                                                keep, &s, &bad);
                if (kept != s.kept || kept + bad < lines || kept > lines)
                    abort();
            }
        }
        if (r < 0) {
            if (!err[0])
                abort();
            break;
        }
    }
    proto_dec_free(&d);
    return 0;
}
