/* agent/config.c */
