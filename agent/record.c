/* agent/record.c */
