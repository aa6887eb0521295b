/* errors.h: pipit_strerror() for the PIPIT_E* codes of the SDK. */
#ifndef PIPIT_ERRORS_H
#define PIPIT_ERRORS_H

/* Message for a PIPIT_* status; never NULL. */
const char *pipit_strerror(int err);
/* Symbolic name ("PIPIT_EINVAL"); never NULL. */
const char *pipit_errname(int err);

#endif
