/* test_batch.c: filling an open batch, its record, size and linger limits, and closing it into a numbered batch. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "../tap.h"

static void test_add_and_limits(void)
{
    struct batch_open o = { .kind = PIPIT_METRIC, .payload = BUF_INIT };
    struct batch_limits by_records = { .max_records = 3, .max_bytes = 1 << 20,
                                       .linger_ns = 1000 };
    struct batch_limits by_bytes = { .max_records = 1000, .max_bytes = 20,
                                     .linger_ns = 1000 };

    ok(!batch_open_full(&o, &by_records) && !batch_open_full(&o, &by_bytes),
       "an empty batch is not full");
    ok(!batch_open_expired(&o, &by_records, 1000000), "an empty batch never expires");

    is_int(batch_open_add(&o, "m0001\n", 6, 500), PIPIT_OK, "add a line");
    is_int(o.count, 1, "one record");
    is_int(o.opened_ns, 500, "the first line starts the linger clock");
    batch_open_add(&o, "m0002\n", 6, 900);
    is_int(o.opened_ns, 500, "later lines do not move it");
    is_int(o.count, 2, "two records");
    is_int(o.payload.len, 12, "payload holds both lines");
    is_str(o.payload.data, "m0001\nm0002\n", "payload is the lines in order");

    ok(!batch_open_expired(&o, &by_records, 1499), "not expired 1 ns before linger");
    ok(batch_open_expired(&o, &by_records, 1500), "expired at exactly linger");
    ok(batch_open_expired(&o, &by_records, 99999), "expired after linger");

    ok(!batch_open_full(&o, &by_records), "2 of 3 records: not full");
    batch_open_add(&o, "m0003\n", 6, 1000);
    ok(batch_open_full(&o, &by_records), "3 of 3 records: full");
    ok(!batch_open_full(&o, &by_bytes), "18 of 20 bytes: not full");
    batch_open_add(&o, "m0004\n", 6, 1000);
    ok(batch_open_full(&o, &by_bytes), "24 bytes, limit 20: full");
    struct batch_limits exact = { .max_records = 1000, .max_bytes = 24, .linger_ns = 1 };
    ok(batch_open_full(&o, &exact), "24 bytes, limit 24: full (the limit is reached)");
    exact.max_bytes = 25;
    ok(!batch_open_full(&o, &exact), "24 bytes, limit 25: not full");
    buf_free(&o.payload);
}

static void test_close(void)
{
    static const char agent[] = "0f0e0d0c-0b0a-4908-8706-050403020100";
    struct batch_open o = { .kind = PIPIT_LOG, .payload = BUF_INIT };

    batch_open_add(&o, "{\"a\":1}\n", 8, 10);
    batch_open_add(&o, "{\"b\":2}\n", 8, 20);
    struct batch *b = batch_close(&o, 77, agent);
    ok(b != NULL, "close returns a batch");
    if (!b)
        return;
    is_int(b->b.struct_size, sizeof(struct pipit_batch), "batch struct_size");
    is_int(b->b.kind, PIPIT_LOG, "batch kind");
    is_int(b->b.seq, 77, "batch seq as given");
    is_int(b->b.count, 2, "batch count");
    is_int(b->b.payload_len, 16, "batch payload_len");
    ok(b->b.payload == b->payload && memcmp(b->b.payload, "{\"a\":1}\n{\"b\":2}\n", 16) == 0,
       "batch payload: the lines, owned by the batch");
    ok(b->b.agent_id == agent, "batch agent_id is the string given (borrowed)");
    ok(b->next == NULL && b->pending == 0, "batch is not queued and owes nothing yet");
    ok(o.count == 0 && o.payload.len == 0 && o.opened_ns == 0 && o.payload.data == NULL,
       "the open batch is left empty");

    /* The open batch is reused: a new first line, a new clock */
    batch_open_add(&o, "{\"c\":3}\n", 8, 30);
    ok(o.count == 1 && o.opened_ns == 30, "reused open batch: restarted");
    struct batch *b2 = batch_close(&o, 78, agent);
    ok(b2 && b2->b.count == 1 && b2->b.payload_len == 8 &&
       memcmp(b2->b.payload, "{\"c\":3}\n", 8) == 0 && b2->b.seq == 78,
       "reused open batch: the second batch holds only its own line");
    ok(b->b.payload_len == 16 && memcmp(b->b.payload, "{\"a\":1}\n", 8) == 0,
       "the first batch is unchanged by the second");

    struct batch *e = batch_close(&o, 79, agent);
    ok(e && e->b.count == 0 && e->b.payload_len == 0 && e->b.payload &&
       e->b.payload[0] == '\0', "closing an empty open batch gives an empty payload");
    batch_free(b);
    batch_free(b2);
    batch_free(e);
    batch_free(NULL);
    ok(1, "batch_free(NULL) is harmless");
    buf_free(&o.payload);

    int64_t t1 = batch_clock_ns(), t2 = batch_clock_ns();
    ok(t1 > 0 && t2 >= t1, "batch_clock_ns is monotonic");
}

int main(void)
{
    test_add_and_limits();
    test_close();
    return done_testing();
}
