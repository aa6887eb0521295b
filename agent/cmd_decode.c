/* cmd_decode.c: pipit decode: print the records of raw wire batches as JSON lines. */
#include "commands.h"
#include <stdio.h>

int cmd_decode(int argc, char **argv)
{
    fprintf(stderr, "pipit decode: not built yet\n");
    return 2;
}
