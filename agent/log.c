/* agent/log.c */
