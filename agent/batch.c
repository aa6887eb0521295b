/* agent/batch.c */
