/* agent/harness.c */
