/* fuzz_dir.h: the private directory of a fuzz target that works on files. */
#ifndef PIPIT_FUZZ_DIR_H
#define PIPIT_FUZZ_DIR_H

#include <dirent.h>
#include <stdio.h>
#include <unistd.h>

/* Remove every file of dir (it holds no subdirectories). */
static inline void fuzz_clear_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;

    while (d && (de = readdir(d)) != NULL) {
        char path[512];
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        unlink(path);
    }
    if (d)
        closedir(d);
}

#endif
