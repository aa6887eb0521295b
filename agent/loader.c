/* agent/loader.c */
