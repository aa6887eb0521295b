/* cmd_options.c: pipit options: every configuration key, from the tables that declare them. */
#include <dirent.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "commands.h"
#include "instance.h"
#include "loader.h"
#include "log.h"
#include "options.h"
#include "settings.h"

#ifndef PIPIT_PLUGIN_DIR
#define PIPIT_PLUGIN_DIR "/usr/local/lib/pipit/plugins"
#endif

/* A default as it may be shown: secrets never, absent as "". */
static const char *shown_default(const struct pipit_option *o)
{
    if (o->flags & PIPIT_OPT_SECRET)
        return o->def ? "(secret)" : "";
    return o->def ? o->def : "";
}

/* v in the largest unit that divides it: 86400000 ms is "1d". */
static void fmt_unit(char *out, size_t n, double v, bool duration)
{
    static const struct { const char *u; double f; } dur[] = {
        { "d", 86400000 }, { "h", 3600000 }, { "m", 60000 }, { "s", 1000 }, { "ms", 1 } };
    static const struct { const char *u; double f; } size[] = {
        { "TiB", 1099511627776.0 }, { "GiB", 1073741824 }, { "MiB", 1048576 },
        { "KiB", 1024 }, { "", 1 } };
    for (size_t i = 0; i < 5; i++) {
        double f = duration ? dur[i].f : size[i].f;
        if (v == 0 || (v >= f && v / f == (double)(long long)(v / f))) {
            snprintf(out, n, "%lld%s", (long long)(v / (v == 0 ? 1 : f)),
                     v == 0 ? (duration ? "ms" : "") : duration ? dur[i].u : size[i].u);
            return;
        }
    }
    snprintf(out, n, "%g", v);
}

static void print_range(FILE *f, const struct pipit_option *o)
{
    char lo[32], hi[32];
    if (o->min > o->max || o->type == PIPIT_OPT_T_BOOL)
        return;
    if (o->type == PIPIT_OPT_T_DURATION || o->type == PIPIT_OPT_T_SIZE) {
        fmt_unit(lo, sizeof lo, o->min, o->type == PIPIT_OPT_T_DURATION);
        fmt_unit(hi, sizeof hi, o->max, o->type == PIPIT_OPT_T_DURATION);
    } else {
        snprintf(lo, sizeof lo, "%.15g", o->min);
        snprintf(hi, sizeof hi, "%.15g", o->max);
    }
    fprintf(f, " (%s to %s)", lo, hi);
}

/* How the keys are printed: plain lines, Markdown, or roff for pipit.yaml(5). */
enum out_fmt { FMT_TEXT, FMT_MARKDOWN, FMT_MAN };

/* Text as roff: backslashes escaped, no line taken for a request. */
static void roff(FILE *f, const char *s)
{
    if (*s == '.' || *s == '\'')
        fputs("\\&", f);
    for (; *s; s++) {
        if (*s == '\\')
            fputs("\\e", f);
        else if (*s == '-')
            fputs("\\-", f);
        else
            fputc(*s, f);
    }
}

/* One key of a table as a roff tagged paragraph. */
static void print_man_key(FILE *f, const struct pipit_option *o)
{
    const char *def = shown_default(o);

    fprintf(f, ".TP\n.B ");
    roff(f, o->name);
    fprintf(f, "\n(%s", opt_type_name(o->type));
    if (o->flags & PIPIT_OPT_REQUIRED) {
        fprintf(f, ", required");
    } else if (*def) {
        fprintf(f, ", default ");
        roff(f, def);
    }
    fprintf(f, ")\n");
    roff(f, o->help ? o->help : "");
    if (o->flags & PIPIT_OPT_SECRET)
        fprintf(f, " (secret: never printed)");
    print_range(f, o);
    fprintf(f, "\n");
}

/* One table, as a Markdown table, roff, or plain lines. */
static void print_table(FILE *f, const struct pipit_option *opts, enum out_fmt fmt)
{
    bool md = fmt == FMT_MARKDOWN;

    if (fmt == FMT_MAN) {
        for (const struct pipit_option *o = opts; o && o->name; o++)
            print_man_key(f, o);
        return;
    }
    if (md) {
        fprintf(f, "| key | type | default | meaning |\n|---|---|---|---|\n");
    }
    for (const struct pipit_option *o = opts; o && o->name; o++) {
        const char *def = shown_default(o);
        if (md) {
            fprintf(f, "| `%s` | %s | %s%s%s | %s%s", o->name, opt_type_name(o->type),
                    *def ? "`" : "", (o->flags & PIPIT_OPT_REQUIRED) ? "(required)" : def,
                    *def ? "`" : "", o->help ? o->help : "",
                    (o->flags & PIPIT_OPT_SECRET) ? " (secret: never printed)" : "");
            print_range(f, o);
            fprintf(f, " |\n");
        } else {
            fprintf(f, "  %-22s %-9s %-14s %s", o->name, opt_type_name(o->type),
                    (o->flags & PIPIT_OPT_REQUIRED) ? "(required)" : def,
                    o->help ? o->help : "");
            print_range(f, o);
            fprintf(f, "\n");
        }
    }
}

static void heading(FILE *f, enum out_fmt fmt, int level, const char *text)
{
    if (fmt == FMT_MARKDOWN) {
        fprintf(f, "\n%.*s %s\n\n", level, "####", text);
    } else if (fmt == FMT_MAN) {
        fprintf(f, "%s ", level <= 2 ? ".SH" : ".SS");
        for (const char *s = text; *s; s++)     /* no Markdown quotes */
            if (*s != '`')
                fputc(*s, f);
        fputc('\n', f);
    } else {
        fprintf(f, "\n%s\n", text);
    }
}

/* A line of prose under a heading. */
static void para(FILE *f, enum out_fmt fmt, const char *text)
{
    if (fmt == FMT_MAN) {
        fputs(".PP\n", f);
        for (const char *s = text; *s; s++)
            if (*s != '`')
                fputc(*s, f);
        fputc('\n', f);
    } else {
        fprintf(f, "%s%s\n", fmt == FMT_MARKDOWN ? "" : "  ", text);
    }
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every plugin file in dir, loaded with the loader's checks, in name order. */
static int print_plugins(FILE *f, const char *dir, enum out_fmt fmt)
{
    char **names = NULL, why[1024];
    size_t n = 0, cap = 0;
    int status = 0;
    DIR *d = opendir(dir);
    struct dirent *de;

    if (!d) {
        fprintf(stderr, "pipit options: cannot read %s\n", dir);
        return 1;
    }
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len < 4 || strcmp(de->d_name + len - 3, ".so") != 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            char **nn = realloc(names, cap * sizeof *names);
            if (!nn)
                break;
            names = nn;
        }
        names[n++] = strdup(de->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, by_name);
    for (size_t i = 0; i < n; i++) {
        char path[4096], title[512];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        const struct loader_plugin *lp = loader_open(path, instance_api(), why, sizeof why);
        if (!lp) {
            fprintf(stderr, "pipit options: %s\n", why);
            status = 1;
            free(names[i]);
            continue;
        }
        const struct pipit_plugin *p = &lp->desc;
        const char *kind = (p->kinds & PIPIT_COLLECTOR) ? "input" :
                           (p->kinds & PIPIT_OUTPUT) ? "output" : "action";
        snprintf(title, sizeof title, "%s `%s` (%s, %s)", kind, p->name, names[i],
                 p->version);
        heading(f, fmt, 3, title);
        if (p->description) {
            if (fmt == FMT_MAN)
                para(f, fmt, p->description);
            else
                fprintf(f, "%s\n%s", p->description, fmt == FMT_MARKDOWN ? "\n" : "");
        }
        if (p->options && p->options->name)
            print_table(f, p->options, fmt);
        else
            para(f, fmt, "No options of its own.");
        free(names[i]);
    }
    free(names);
    return status;
}

/* The host's keys of every inputs:/outputs: entry, before the plugin's. */
static void host_keys(FILE *f, enum out_fmt fmt, const struct pipit_option *opts)
{
    para(f, fmt, "These, then the plugin's own keys.");
    if (fmt == FMT_MARKDOWN)
        fputc('\n', f);
    print_table(f, opts, fmt);
}

/*
 * Print the keys of every host section and of every plugin in the plugin
 * directory: as text, as the Markdown of docs/configuration.md's reference
 * (--markdown), or as the roff of the reference in pipit.yaml(5) (--man).
 */
int cmd_options(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "markdown", no_argument, NULL, 'm' },
        { "man", no_argument, NULL, 'M' },
        { "plugin-dir", required_argument, NULL, 'P' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    static const struct { const char *name; const struct pipit_option *opts; } sections[] = {
        { "agent", settings_agent_options },
        { "batch", settings_batch_options },
        { "pipeline", settings_pipeline_options },
        { "wire", settings_wire_options },
        { "spool", settings_spool_options },
        { "http", settings_http_options },
        { "commands", settings_command_options },
        { "plugins", settings_plugin_options },
    };
    const char *dir = PIPIT_PLUGIN_DIR;
    enum out_fmt fmt = FMT_TEXT;
    int c;

    optind = 1;
    while ((c = getopt_long(argc, argv, "mh", longopts, NULL)) != -1) {
        switch (c) {
        case 'm': fmt = FMT_MARKDOWN; break;
        case 'M': fmt = FMT_MAN; break;
        case 'P': dir = optarg; break;
        case 'h':
            printf("usage: pipit options [--markdown | --man] [--plugin-dir DIR]\n"
                   "Print every configuration key: host sections, then each plugin.\n");
            return 0;
        default:
            return 2;
        }
    }
    log_setup(stderr, LOG_FMT_LOGFMT, PIPIT_LOG_ERROR);
    FILE *f = stdout;
    if (fmt == FMT_MARKDOWN)
        fprintf(f, "<!-- generated by `pipit options --markdown`; do not edit -->\n");
    heading(f, fmt, 2, "Host sections");
    for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++) {
        char title[64];
        snprintf(title, sizeof title, "`%s:`", sections[i].name);
        heading(f, fmt, 3, title);
        print_table(f, sections[i].opts, fmt);
    }
    heading(f, fmt, 3, "Keys of every `inputs:` entry");
    host_keys(f, fmt, settings_input_key_options);
    heading(f, fmt, 3, "Keys of every `outputs:` entry");
    host_keys(f, fmt, settings_output_key_options);
    heading(f, fmt, 2, "Plugins");
    int st = print_plugins(f, dir, fmt);
    loader_reset();
    return st;
}
