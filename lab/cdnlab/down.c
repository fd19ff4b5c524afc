/* lab/cdnlab/down.c - `cdn-lab down`: stops every recorded process (SIGTERM, 3 s, SIGKILL), removes every
 * namespace with this lab's prefix, recorded or not, and the state directory, after moving its
 * logs out (keep_the_logs; not with --drop-logs). Idempotent; fails only if something is still
 * there afterwards. */
#include "config.h"
#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lab/cdnlab/labctl.h"

/* What a run leaves worth reading, moved from the state directory into
 * <report dir>/lab-logs (the last `report -o DIR`, recorded in the state file) or else beside the
 * state directory (STATEDIR.logs-YYYYmmdd-HHMMSS); the folder in out ("" when nothing was moved). */
static void keep_the_logs(char *out, size_t n)
{
    static const char *const what[] = {"logs", "metrics", "faults.tsv", "rtt.tsv", "load.routing", "state", NULL};
    char line[PATH_MAX + 16], rep[PATH_MAX] = "", st[PATH_MAX], stamp[32];
    lab_path(st, sizeof(st), "state");
    FILE *f = fopen(st, "r");
    while (f && fgets(line, sizeof(line), f))
        if (!strncmp(line, "report ", 7)) {
            line[strcspn(line, "\n")] = 0;
            snprintf(rep, sizeof(rep), "%.4000s", line + 7);
        }
    if (f) fclose(f);
    time_t now = time(NULL);
    strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", localtime(&now));
    size_t sl = strlen(L.statedir);
    if (*rep && strncmp(rep, L.statedir, sl) && access(rep, W_OK) == 0) /* a report outside the state directory */
        snprintf(out, n, "%.3000s/lab-logs-%s", rep, stamp);
    else
        snprintf(out, n, "%.3000s.logs-%s", L.statedir, stamp);
    if (mkdir(out, 0755) < 0) {
        *out = 0;
        return;
    }
    size_t moved = 0;
    char src[PATH_MAX];
    for (int i = 0; what[i]; i++) {
        lab_path(src, sizeof(src), "%s", what[i]);
        if (access(src, F_OK) != 0) continue;
        char *av[] = {"mv", src, out, NULL};
        if (lab_run_argv(av, 1) == 0) moved++;
    }
    glob_t g;
    char pat[PATH_MAX];
    lab_path(pat, sizeof(pat), "load-*");
    if (glob(pat, 0, NULL, &g) == 0) {
        for (size_t i = 0; i < g.gl_pathc; i++) {
            char *av[] = {"mv", g.gl_pathv[i], out, NULL};
            if (lab_run_argv(av, 1) == 0) moved++;
        }
        globfree(&g);
    }
    if (!moved) {
        rmdir(out);
        *out = 0;
    }
}

int lab_cmd_down(int quiet, int keep_logs)
{
    char p[PATH_MAX];
    lab_path(p, sizeof(p), "state");
    int have = lab_load_state() == 0;
    if (!have) lab_identity();
    struct lab_proc_rec pr[256];
    size_t n = lab_read_procs(pr, 256), killed = 0;
    for (size_t i = 0; i < n; i++)
        if (lab_proc_alive(pr[i].pid, pr[i].start)) {
            lab_stop_pid(pr[i].pid, pr[i].start, SIGTERM);
            killed++;
        }
    for (int t = 0; t < 60; t++) { /* 3 s of grace, then SIGKILL */
        size_t alive = 0;
        for (size_t i = 0; i < n; i++) {
            waitpid(pr[i].pid, NULL, WNOHANG);
            alive += lab_proc_alive(pr[i].pid, pr[i].start);
        }
        if (!alive) break;
        usleep(50000);
    }
    for (size_t i = 0; i < n; i++) lab_stop_pid(pr[i].pid, pr[i].start, SIGKILL);
    size_t left = 0;
    for (int t = 0; t < 40; t++) { /* SIGKILL takes effect at once, but give it up to 2 s */
        left = 0;
        for (size_t i = 0; i < n; i++) {
            waitpid(pr[i].pid, NULL, WNOHANG);
            left += lab_proc_alive(pr[i].pid, pr[i].start);
        }
        if (!left) break;
        usleep(50000);
    }
    /* Namespaces: recorded ones and any other with our prefix (a crash between add and record). */
    size_t nsdel = 0, nsleft = 0;
    DIR *d = opendir("/run/netns");
    if (d) {
        struct dirent *e;
        size_t pl = strlen(L.prefix);
        while ((e = readdir(d)))
            if (!strncmp(e->d_name, L.prefix, pl) && e->d_name[pl] == '-') {
                if (lab_runf(1, "ip netns del %s", e->d_name) == 0) nsdel++;
                else nsleft++;
            }
        closedir(d);
    }
    /* The logs outlive the lab unless asked (keep_logs 0): moved out before the rest goes. */
    char kept[PATH_MAX] = "";
    if (have && keep_logs) keep_the_logs(kept, sizeof(kept));
    /* The state directory: everything in it is ours. */
    if (have || access(L.statedir, F_OK) == 0) {
        char *argv[] = {"rm", "-rf", "--one-file-system", L.statedir, NULL};
        if (strlen(L.statedir) > 1) lab_run_argv(argv, 1);
    }
    /* whatever is still there (a process SIGKILL did not end, a namespace or the state directory
     * that could not be removed) makes `down` fail: the lab is not down */
    int dirleft = access(L.statedir, F_OK) == 0 || errno != ENOENT;
    if (left || nsleft || dirleft) {
        fprintf(stderr, PROG ": down: %zu processes still running, %zu namespaces not removed, %s %s\n", left, nsleft,
                L.statedir, dirleft ? "NOT removed" : "removed");
        return 1;
    }
    lab_registry_del();
    if (!quiet && !have && !killed && !nsdel)
        printf("no lab is up (nothing in %s, no other lab registered); nothing to do\n", L.statedir);
    else if (!quiet)
        printf("lab down: %zu processes stopped, %zu namespaces removed, %s removed\n", killed, nsdel, L.statedir);
    if (!quiet && *kept) printf("logs kept in %s (down --drop-logs removes them with the lab)\n", kept);
    return 0;
}
