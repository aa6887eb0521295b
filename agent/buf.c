/* agent/buf.c */
