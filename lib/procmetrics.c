/* lib/procmetrics.c - the process_* metric families and the build_info gauge (cdn/metrics.h),
 * named as the Prometheus client libraries name them so that the usual dashboards work. Read at
 * scrape time, on the admin thread: getrusage, /proc/self/statm, /proc/self/fd, getrlimit. */
#include "config.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <unistd.h>

#include <h2o/version.h>

#include "cdn/metrics.h"

static double cpu_seconds(void *data)
{
    (void)data;
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

/* field 0: virtual size, 1: resident set, in pages */
static double statm(int field)
{
    unsigned long v[2] = {0, 0};
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL)
        return 0;
    int n = fscanf(f, "%lu %lu", &v[0], &v[1]);
    fclose(f);
    return n == 2 ? (double)v[field] * (double)sysconf(_SC_PAGESIZE) : 0;
}
static double resident(void *data) { (void)data; return statm(1); }
static double virtual_(void *data) { (void)data; return statm(0); }

static double open_fds(void *data)
{
    (void)data;
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return 0;
    double n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1; /* the directory's own descriptor */
}

static double max_fds(void *data)
{
    (void)data;
    struct rlimit rl;
    return getrlimit(RLIMIT_NOFILE, &rl) == 0 ? (double)rl.rlim_cur : 0;
}

static double start_time;
static double started(void *data) { (void)data; return start_time; }

int cdn_metrics_add_process(cdn_metrics_t *m, const char *prefix)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    if (start_time == 0)
        start_time = (double)tv.tv_sec + tv.tv_usec / 1e6;
    if (cdn_metrics_counter_fn(m, "process_cpu_seconds_total", "Total user and system CPU time spent in seconds",
                               cpu_seconds, NULL) != 0 ||
        cdn_metrics_gauge_fn(m, "process_resident_memory_bytes", "Resident memory size in bytes", resident, NULL) != 0 ||
        cdn_metrics_gauge_fn(m, "process_virtual_memory_bytes", "Virtual memory size in bytes", virtual_, NULL) != 0 ||
        cdn_metrics_gauge_fn(m, "process_open_fds", "Number of open file descriptors", open_fds, NULL) != 0 ||
        cdn_metrics_gauge_fn(m, "process_max_fds", "Maximum number of open file descriptors", max_fds, NULL) != 0 ||
        cdn_metrics_gauge_fn(m, "process_start_time_seconds", "Start time of the process since unix epoch in seconds",
                             started, NULL) != 0)
        return -1;
    char name[128];
    snprintf(name, sizeof(name), "%s_build_info", prefix);
    cdn_metric_t *bi = cdn_metrics_gauge(m, name, "Always 1: the version of this program and of the h2o it runs on",
                                         (const char *[]){"version", "h2o", NULL});
    if (bi == NULL)
        return -1;
    cdn_gauge_set(cdn_metric_series(bi, (const char *[]){PACKAGE_VERSION, H2O_VERSION, NULL}), 1);
    return 0;
}
