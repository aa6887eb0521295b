/* store_query.h: the JSON query API's reads of an out_sqlite store, on a read-only connection of their own. */
#ifndef PIPIT_STORE_QUERY_H
#define PIPIT_STORE_QUERY_H

#include <stdint.h>
#include "buf.h"
#include "query_params.h"

/*
 * Answer r from the SQLite store at path: a connection is opened
 * read-only for this request and closed before returning, so any number
 * of server threads can query while out_sqlite writes (WAL). A query runs
 * at most timeout_ms (sqlite3_progress_handler) and returns at most
 * r->limit rows of its kind. now_ns is the wall clock the response names.
 * The JSON body goes to out; returns the HTTP status: 200, 503 (store
 * missing, busy or the query took too long) or 500 (a store error), with
 * the reason in why for the last two.
 */
unsigned store_query_run(const char *path, const struct query_request *r, int64_t now_ns,
                         int64_t timeout_ms, struct buf *out, char *why, size_t whylen);

#endif
