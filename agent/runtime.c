/* agent/runtime.c */
