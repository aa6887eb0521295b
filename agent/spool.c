/* spool.c: the write-ahead spool. */
