/* agent/options.c */
