/* lab/cdnlab/down.c - `cdn-lab down`: stops every recorded process (SIGTERM, 3 s, SIGKILL), removes every
 * namespace with this lab's prefix, recorded or not, and the state directory. Idempotent; fails
 * only if something is still there afterwards. */
#include "config.h"
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lab/cdnlab/labctl.h"

int lab_cmd_down(int quiet)
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
    if (!quiet) printf("lab down: %zu processes stopped, %zu namespaces removed, %s removed\n", killed, nsdel, L.statedir);
    return 0;
}
