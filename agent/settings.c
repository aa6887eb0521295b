/* agent/settings.c */
