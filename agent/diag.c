/* agent/diag.c */
