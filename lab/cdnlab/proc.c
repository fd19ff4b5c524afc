/* lab/cdnlab/proc.c - running commands (`ip`, `tc`, openssl), starting the lab's processes (own session,
 * `ip netns exec`, output to logs/NAME.log, recorded with their start time) and stopping them only
 * while the pid is still theirs; entering a network namespace; finding the programs. */
#include "config.h"
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lab/cdnlab/labctl.h"

/* Process start time (field 22 of /proc/PID/stat), so a recycled pid is not mistaken for ours. */
static unsigned long long proc_start(pid_t pid)
{
    char p[64], buf[1024];
    snprintf(p, sizeof(p), "/proc/%d/stat", (int)pid);
    int fd = open(p, O_RDONLY);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = 0;
    char *s = strrchr(buf, ')');
    if (!s) return 0;
    unsigned long long v = 0;
    int field = 2;
    for (char *q = s + 1; *q; q++)
        if (*q == ' ' && ++field == 22) {
            v = strtoull(q + 1, NULL, 10);
            break;
        }
    return v;
}

int lab_proc_alive(pid_t pid, unsigned long long start)
{
    if (pid <= 0 || kill(pid, 0) < 0) return 0;
    /* a zombie of ours counts as dead */
    char p[64], buf[512];
    snprintf(p, sizeof(p), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(p, "r");
    if (!f) return 0;
    int ok = fgets(buf, sizeof(buf), f) != NULL;
    fclose(f);
    char *s = ok ? strrchr(buf, ')') : NULL;
    if (!s || s[2] == 'Z') return 0;
    return !start || proc_start(pid) == start;
}

/* --- running commands --- */
int lab_run_argv(char *const argv[], int quiet)
{
    if (L.verbose) {
        fprintf(stderr, "+");
        for (int i = 0; argv[i]; i++) fprintf(stderr, " %s", argv[i]);
        fprintf(stderr, "\n");
    }
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        if (quiet) {
            int fd = open("/dev/null", O_WRONLY);
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execvp(argv[0], argv);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

int lab_runf(int quiet, const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    char *argv[64];
    int n = 0;
    for (char *t = strtok(line, " "); t && n < 63; t = strtok(NULL, " ")) argv[n++] = t;
    argv[n] = NULL;
    return lab_run_argv(argv, quiet);
}

void lab_must(int rc, const char *what)
{
    if (rc != 0) lab_die("%s failed (exit %d); to clean up:\n  " PROG " -s %s down", what, rc, L.statedir);
}

/* Runs fn inside network namespace ns (or here, for ""), then comes back. */
int lab_in_ns(const char *ns, int (*fn)(void *), void *arg)
{
    if (!*ns) return fn(arg);
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "/run/netns/%s", ns);
    int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC), fd = open(p, O_RDONLY | O_CLOEXEC);
    if (self < 0 || fd < 0 || setns(fd, CLONE_NEWNET) < 0) {
        if (self >= 0) close(self);
        if (fd >= 0) close(fd);
        return -1;
    }
    int rc = fn(arg);
    if (setns(self, CLONE_NEWNET) < 0) lab_die("cannot return to the original network namespace");
    close(self);
    close(fd);
    return rc;
}

/* --- finding the programs: beside cdn-lab (installed) or in the build tree's folders --- */
int lab_find_prog(const char *name, char *out, size_t n)
{
    static const char *const sub[] = {"", "/../edge", "/../dns", "/../origin", "/../lab", NULL};
    const char *env = getenv("CDN_LAB_BINDIR");
    for (int i = -1; sub[i + 1] || i < 0; i++) {
        if (i < 0) {
            if (!env) continue;
            snprintf(out, n, "%s/%s", env, name);
        } else {
            snprintf(out, n, "%.3000s%s/%.200s", L.exedir, sub[i], name);
        }
        if (access(out, X_OK) == 0) {
            char real[PATH_MAX];
            if (realpath(out, real)) snprintf(out, n, "%s", real);
            return 0;
        }
    }
    /* system programs (bird): PATH, then the sbin folders a non-login root shell may lack */
    char sp[PATH_MAX];
    snprintf(sp, sizeof(sp), "%s:/usr/sbin:/sbin", getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
    for (char *save = NULL, *d = strtok_r(sp, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        snprintf(out, n, "%.3000s/%.200s", d, name);
        if (*d == '/' && access(out, X_OK) == 0) return 0;
    }
    return -1;
}

pid_t lab_start_proc(const struct lab_node *node, const char *name, struct lab_argv *a)
{
    char prog[PATH_MAX], logp[PATH_MAX];
    const char *base = strrchr(a->argv[0], '/');
    base = base ? base + 1 : a->argv[0];
    if (lab_find_prog(base, prog, sizeof(prog)) < 0) lab_die("program %s not found (is it built?)", base);
    lab_path(logp, sizeof(logp), "logs/%s.log", name);
    char *argv[104];
    int k = 0;
    if (node && *node->ns) {
        argv[k++] = "ip";
        argv[k++] = "netns";
        argv[k++] = "exec";
        argv[k++] = (char *)node->ns;
    }
    argv[k++] = prog;
    for (int i = 1; i < a->argc && k < 103; i++) argv[k++] = a->argv[i];
    argv[k] = NULL;
    if (L.verbose) {
        fprintf(stderr, "+");
        for (int i = 0; argv[i]; i++) fprintf(stderr, " %s", argv[i]);
        fprintf(stderr, " > %s\n", logp);
    }
    pid_t pid = fork();
    if (pid < 0) lab_die("fork: %s", strerror(errno));
    if (pid == 0) {
        setsid();
        int fd = open(logp, O_WRONLY | O_CREAT | O_APPEND, 0644), nul = open("/dev/null", O_RDONLY);
        dup2(nul, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        execvp(argv[0], argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    /* `ip netns exec` execs the program in place: the pid stays. Wait for the exec so that the
     * start time we record is the program's. */
    unsigned long long st = 0;
    for (int i = 0; i < 200; i++) {
        char exe[PATH_MAX], p[64];
        snprintf(p, sizeof(p), "/proc/%d/exe", (int)pid);
        ssize_t n = readlink(p, exe, sizeof(exe) - 1);
        if (n > 0) {
            exe[n] = 0;
            if (!strcmp(exe, prog)) break;
        }
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) break;
        usleep(5000);
    }
    st = proc_start(pid);
    lab_state_add("proc %s %d %llu", name, (int)pid, st);
    return pid;
}

void lab_stop_pid(pid_t pid, unsigned long long start, int sig)
{
    if (!lab_proc_alive(pid, start)) return;
    kill(-pid, sig); /* its session's process group */
    kill(pid, sig);
}

/* --- network (netns mode) --- */
int lab_ns_exists(const char *ns)
{
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "/run/netns/%s", ns);
    return access(p, F_OK) == 0;
}

void lab_tail_log(const char *name)
{
    char p[PATH_MAX], line[512];
    lab_path(p, sizeof(p), "logs/%s.log", name);
    FILE *f = fopen(p, "r");
    if (!f) return;
    char lines[8][512] = {{0}};
    int k = 0;
    while (fgets(line, sizeof(line), f)) snprintf(lines[k++ % 8], 512, "%s", line);
    fclose(f);
    for (int i = 0; i < 8; i++)
        if (*lines[(k + i) % 8]) fprintf(stderr, "  | %s", lines[(k + i) % 8]);
}
