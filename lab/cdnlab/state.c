/* lab/cdnlab/state.c - the state directory: paths in it, its `state` file (written a line at a time as
 * things come to exist, read back by every later command), the lab's identity (namespace prefix,
 * loopback base) and loading the topology and its plan. */
#include "config.h"
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cdn/http.h"
#include "lab/cdnlab/labctl.h"
#include "lab/lib/anycast.h"

void lab_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, PROG ": ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

void lab_path(char *out, size_t n, const char *fmt, ...)
{
    char rel[PATH_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rel, sizeof(rel), fmt, ap);
    va_end(ap);
    snprintf(out, n, "%.2000s/%.2000s", L.statedir, rel);
}

void lab_state_add(const char *fmt, ...)
{
    char p[PATH_MAX];
    lab_path(p, sizeof(p), "state");
    FILE *f = fopen(p, "a");
    if (!f) lab_die("cannot write %s: %s", p, strerror(errno));
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fputc('\n', f);
    fflush(f);
    fsync(fileno(f));
    fclose(f);
}

/* --- lab identity: prefix and loopback base from the state directory's path --- */
void lab_identity(void)
{
    /* fixed key: the same state directory gives the same names in every run (a lab that is up
     * keeps its own in its state file, so `down` finds it even if this changes) */
    uint64_t h = cdn_hash_fixed(L.statedir, strlen(L.statedir));
    snprintf(L.prefix, sizeof(L.prefix), "cdnlab-%04x", (unsigned)(h & 0xffff));
    L.base = 100 + (int)((h >> 16) % 100);
}

int lab_load_state(void)
{
    char p[PATH_MAX], line[PATH_MAX + 64];
    lab_path(p, sizeof(p), "state");
    FILE *f = fopen(p, "r");
    if (!f) return -1;
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = 0;
        if (!strncmp(line, "mode ", 5)) L.mode = !strcmp(line + 5, "netns") ? LAB_NETNS : LAB_LOOPBACK;
        else if (!strncmp(line, "topology ", 9)) snprintf(L.topo_path, sizeof(L.topo_path), "%.4000s", line + 9);
        else if (!strncmp(line, "prefix ", 7)) snprintf(L.prefix, sizeof(L.prefix), "%.30s", line + 7);
        else if (!strncmp(line, "base ", 5)) L.base = atoi(line + 5);
        else if (!strncmp(line, "profile ", 8)) snprintf(L.profile, sizeof(L.profile), "%.15s", line + 8);
    }
    fclose(f);
    return 0;
}

void lab_load_topology(const char *p)
{
    cdn_conf_err_t err;
    L.topo = lab_topo_load(p, &L.conf, &err);
    if (!L.topo) lab_die("%s", err.msg);
    char msg[200];
    if (lab_plan_make(L.topo, L.mode, L.prefix, L.base, &L.plan, msg, sizeof(msg)) < 0) lab_die("%s: %s", p, msg);
    if (*L.profile && lab_profile_parse(L.profile, &L.topo->profile) < 0) lab_die("unknown profile '%s'", L.profile);
}

size_t lab_read_procs(struct lab_proc_rec *out, size_t max)
{
    char p[PATH_MAX], line[512];
    lab_path(p, sizeof(p), "state");
    FILE *f = fopen(p, "r");
    size_t n = 0;
    if (!f) return 0;
    while (fgets(line, sizeof(line), f)) {
        struct lab_proc_rec r;
        int pid;
        if (sscanf(line, "proc %31s %d %llu", r.name, &pid, &r.start) != 3) continue;
        r.pid = pid;
        size_t i;
        for (i = 0; i < n; i++)
            if (!strcmp(out[i].name, r.name)) break; /* a restart replaces the earlier record */
        if (i == n && n < max) n++;
        if (i < max) out[i] = r;
    }
    fclose(f);
    return n;
}

/* --- the registry of labs that are up: one file per lab (named by its prefix, holding its state
 * directory) in $CDN_LAB_REGISTRY or /tmp/cdn-lab-labs-UID, written by `up`, removed by `down`,
 * so that commands find the lab without -s or CDN_LAB_DIR when only one is up --- */
static void registry_dir(char *out, size_t n)
{
    const char *e = getenv("CDN_LAB_REGISTRY");
    if (e && *e) snprintf(out, n, "%s", e);
    else snprintf(out, n, "/tmp/cdn-lab-labs-%d", (int)getuid());
}

void lab_registry_add(void)
{
    char d[PATH_MAX], p[PATH_MAX + 64];
    registry_dir(d, sizeof(d));
    mkdir(d, 0700);
    snprintf(p, sizeof(p), "%s/%s", d, L.prefix);
    FILE *f = fopen(p, "w");
    if (!f) return; /* without it, -s or CDN_LAB_DIR still work */
    fprintf(f, "%s\n", L.statedir);
    fclose(f);
}

void lab_registry_del(void)
{
    char d[PATH_MAX], p[PATH_MAX + 64];
    registry_dir(d, sizeof(d));
    snprintf(p, sizeof(p), "%s/%s", d, L.prefix);
    unlink(p);
}

int lab_registry_list(char (*out)[PATH_MAX], int max, char *dir, size_t dirlen)
{
    registry_dir(dir, dirlen);
    DIR *dd = opendir(dir);
    int n = 0;
    if (!dd) return 0;
    struct dirent *e;
    while ((e = readdir(dd)) && n < max) {
        if (e->d_name[0] == '.') continue;
        char p[PATH_MAX + 300], sd[PATH_MAX], st[PATH_MAX + 16];
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        FILE *f = fopen(p, "r");
        if (!f) continue;
        char *r = fgets(sd, sizeof(sd), f);
        fclose(f);
        if (!r) continue;
        sd[strcspn(sd, "\n")] = 0;
        snprintf(st, sizeof(st), "%s/state", sd);
        if (*sd != '/' || access(st, F_OK) != 0) {
            unlink(p); /* its state directory is gone: the lab is not up */
            continue;
        }
        int dup = 0;
        for (int i = 0; i < n; i++) dup |= !strcmp(out[i], sd);
        if (!dup) snprintf(out[n++], PATH_MAX, "%s", sd);
    }
    closedir(dd);
    return n;
}
