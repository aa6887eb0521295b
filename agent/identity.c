/* agent/identity.c */
