/* wire.c: the batch wire format (docs/wire-format.md). */
