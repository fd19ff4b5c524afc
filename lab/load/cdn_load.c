/* lab/load/cdn_load.c - cdn-load: the clients of one region.
 *
 * Owns: one h2o evloop; a c-ares resolver asking cdn-dns (from this region's address, answers
 * cached for their TTL); one HTTP client (libcurl multi, HTTP/2 multiplexed) per source address;
 * the request generator (lab/lib/workload.c); the per-request log; the progress line.
 * Open loop: Poisson arrivals at --rate, each arrival one request (in-flight capped). Closed loop:
 * --concurrency users, each sends its next request when the last one ends. Every request asks
 * DNS for its hostname first (a cache hit until the TTL runs out), then connects to the first
 * address, keeping the hostname for TLS SNI and :authority. CDN_LOAD_DEBUG=1 in the environment
 * prints each failed request's time, address and error to stderr. */
#include "config.h"
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <h2o.h>
#include "cdn/httpc.h"
#include "cdn/loop.h"
#include "cdn/resolver.h"
#include "cdn/config.h"
#include "lab/lib/trace.h"
#include "lab/lib/workload.h"

#define PROG "cdn-load"
#define MAX_SRC 32
#define MAGIC 0x4c4f4144u

struct load {
    h2o_evloop_t *loop;
    cdn_resolver_t *res;
    cdn_httpc_t *http[MAX_SRC];
    int nsrc, next_src;
    struct lab_wl wl;
    const char *region, *zone, *hosts[2];
    int port, tls;
    double rate;
    int conc, max_inflight;
    double t0;
    uint64_t warm_ms, dur_ms, max_req;
    FILE *log;
    cdn_timer_t *arrive, *progress, *stop;
    int stopping, done, tty;
    uint64_t issued, finished, errors, hits, measured, dns_err;
    uint64_t inflight;
    uint64_t last_finished, last_hits, last_errors;
    double progress_s, last_print; /* --progress: seconds between lines off a terminal (0: none) */
    unsigned long long bytes;
    struct lreq *live; /* every request not finished yet: logged as cut if the run ends first */
    struct { char what[72]; uint64_t n; } ekind[16]; /* errors by kind (the first 16 kinds; the rest "other") */
    size_t nekind;
};

struct lreq {
    unsigned magic;
    struct load *L;
    struct lab_wl_req w;
    double start_ms;
    char phase;
    char edge[32], cache[16], tier[8], ip[64];
    int status;
    uint64_t bytes;
    int user; /* closed loop: re-issue when done */
    struct lreq *prev, *next; /* in L->live */
};

static void issue(struct load *L, int user);

static double mono_ms(void)
{   /* cdn_now_ms() has millisecond steps; hits on a LAN take less */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* An error by kind (the transport's message, or the HTTP status); the first of each kind is
 * printed when it happens (with the edge and the time), so it stays in the region's log. */
static void count_error(struct load *L, const struct lreq *q, const char *errstr, double t)
{
    char what[72];
    if (errstr) snprintf(what, sizeof(what), "%.70s", errstr);
    else snprintf(what, sizeof(what), "HTTP %d", q->status);
    size_t i;
    for (i = 0; i < L->nekind; i++)
        if (!strcmp(L->ekind[i].what, what)) break;
    if (i == L->nekind) {
        if (L->nekind == sizeof(L->ekind) / sizeof(L->ekind[0])) i--, snprintf(L->ekind[i].what, sizeof(what), "other");
        else {
            snprintf(L->ekind[L->nekind++].what, sizeof(what), "%s", what);
            fprintf(stderr, PROG ": %s: %.1fs first error of its kind: %s (edge %s)\n", L->region, t, what,
                    *q->edge ? q->edge : (*q->ip ? q->ip : "-"));
        }
    }
    L->ekind[i].n++;
}

static void finish(struct lreq *q, const char *errstr)
{
    struct load *L = q->L;
    struct lab_logrec r = {.phase = q->phase, .status = errstr ? 0 : q->status, .bytes = q->bytes};
    double now = mono_ms();
    r.t = (now - L->t0) / 1000.0;
    r.latency_ms = now - q->start_ms;
    snprintf(r.region, sizeof(r.region), "%s", L->region);
    snprintf(r.edge, sizeof(r.edge), "%.31s", *q->edge ? q->edge : (*q->ip ? q->ip : "-"));
    snprintf(r.cache, sizeof(r.cache), "%s", errstr ? "error" : (*q->cache ? q->cache : "-"));
    snprintf(r.tier, sizeof(r.tier), "%s", q->tier);
    snprintf(r.url, sizeof(r.url), "%s%s", L->hosts[q->w.host], q->w.path);
    if (L->log) {
        char line[512];
        size_t n = lab_log_format(&r, line, sizeof(line));
        fwrite(line, 1, n, L->log);
    }
    if (q->prev) q->prev->next = q->next;
    else L->live = q->next;
    if (q->next) q->next->prev = q->prev;
    L->finished++;
    L->inflight--;
    if (errstr || q->status >= 500 || q->status == 0) {
        L->errors++;
        count_error(L, q, errstr, r.t);
    }
    if (q->phase == 'm') L->measured++;
    if (!errstr && !strcmp(q->cache, "hit")) L->hits++;
    L->bytes += q->bytes;
    int user = q->user;
    q->magic = 0;
    free(q);
    if (user >= 0 && !L->stopping) issue(L, user);
    if (L->stopping && !L->inflight) L->done = 1;
}

static int on_head(cdn_httpc_req_t *h, int status, int ver, const struct cdn_httpc_header *hd, size_t n, void *data)
{
    struct lreq *q = data;
    q->status = status;
    int named = 0;
    for (size_t i = 0; i < n; i++) {
        if (hd[i].name_len == 12 && !strncasecmp(hd[i].name, "cache-status", 12)) {
            char e[32];
            lab_cache_status_parse(hd[i].value, hd[i].value_len, e, sizeof(e), q->cache, sizeof(q->cache), q->tier,
                                   sizeof(q->tier));
            if (!named) snprintf(q->edge, sizeof(q->edge), "%s", e);
        } else if (hd[i].name_len == 11 && !strncasecmp(hd[i].name, "x-served-by", 11) && hd[i].value_len) {
            /* the edge that answered (with anycast the address does not tell) */
            snprintf(q->edge, sizeof(q->edge), "%.*s", (int)(hd[i].value_len < 31 ? hd[i].value_len : 31), hd[i].value);
            for (char *c = q->edge; *c; c++)
                if (*c == '\t' || *c == ' ' || (unsigned char)*c < 32) *c = '_';
            named = 1;
        }
    }
    return 0;
}

static int on_body(cdn_httpc_req_t *h, const void *buf, size_t len, void *data)
{
    ((struct lreq *)data)->bytes += len;
    return 0;
}

static void on_done(cdn_httpc_req_t *h, const char *errstr, void *data)
{
    struct lreq *q = data;
    const struct cdn_httpc_info *in = cdn_httpc_info(h);
    if (in && *in->primary_ip) snprintf(q->ip, sizeof(q->ip), "%s", in->primary_ip);
    if (errstr && getenv("CDN_LOAD_DEBUG")) fprintf(stderr, "%.3f %s %s\n", (mono_ms() - q->L->t0) / 1e3, q->ip, errstr);
    finish(q, errstr);
}

static const struct cdn_httpc_cbs cbs = {on_head, on_body, on_done};

static void on_resolved(const char *errstr, const struct cdn_addrs *a, void *data)
{
    struct lreq *q = data;
    struct load *L = q->L;
    if (errstr || !a || a->n < 1) {
        L->dns_err++;
        finish(q, errstr ? errstr : "no address");
        return;
    }
    char ip[64];
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&a->addr[0];
    inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
    snprintf(q->ip, sizeof(q->ip), "%s", ip);
    char url[256], ct[96];
    snprintf(url, sizeof(url), "%s://%s.%s:%d%s", L->tls ? "https" : "http", L->hosts[q->w.host], L->zone, L->port, q->w.path);
    snprintf(ct, sizeof(ct), "%s:%d", ip, L->port);
    struct cdn_httpc_request rq = {.url = url, .connect_to = ct};
    cdn_httpc_t *c = L->http[L->next_src++ % L->nsrc];
    if (!cdn_httpc_start(c, &rq, &cbs, q)) finish(q, "bad request");
}

static void issue(struct load *L, int user)
{
    double now = mono_ms();
    if (L->stopping) return;
    if (L->max_req && L->issued >= L->max_req) { /* done once the last ones are back */
        L->stopping = 1;
        if (!L->inflight) L->done = 1;
        return;
    }
    struct lreq *q = calloc(1, sizeof(*q));
    if (!q) return;
    q->magic = MAGIC;
    q->L = L;
    q->user = user;
    if (!lab_wl_next(&L->wl, &q->w)) { /* trace ended */
        free(q);
        L->stopping = 1;
        if (!L->inflight) L->done = 1;
        return;
    }
    q->next = L->live;
    if (L->live) L->live->prev = q;
    L->live = q;
    q->start_ms = now;
    q->phase = now - L->t0 < (double)L->warm_ms ? 'w' : 'm';
    L->issued++;
    L->inflight++;
    char name[160];
    snprintf(name, sizeof(name), "%s.%s", L->hosts[q->w.host], L->zone);
    cdn_resolver_lookup(L->res, name, on_resolved, q);
}

static void on_arrive(cdn_timer_t *t, void *data)
{
    struct load *L = data;
    if (L->stopping) return;
    if (L->inflight < (uint64_t)L->max_inflight) issue(L, -1);
    double gap = lab_poisson_gap(L->rate, lab_rng_unit(&L->wl.rng));
    cdn_timer_start(t, (uint64_t)(gap * 1000.0 + 0.5));
}

/* The progress line: rates since the last line (final: over the whole run), the errors of that
 * interval in brackets when there were any. */
static void print_progress(struct load *L, int final)
{
    double now = mono_ms(), el = (now - L->t0) / 1000.0, since = (now - L->last_print) / 1000.0;
    uint64_t df = L->finished - L->last_finished, dh = L->hits - L->last_hits, de = L->errors - L->last_errors;
    char new_err[32] = "";
    if (!final && de) snprintf(new_err, sizeof(new_err), " (+%llu)", (unsigned long long)de);
    fprintf(stderr, "%s[%s] %5.1fs %6.0f req/s  hit %5.1f%%  done %llu  errors %llu%s  in flight %llu%s%s", L->tty ? "\r" : "",
            L->region, el, final ? (el > 0 ? L->finished / el : 0) : (since > 0 ? df / since : 0),
            (final ? (L->finished ? 100.0 * L->hits / L->finished : 0) : (df ? 100.0 * dh / df : 0)),
            (unsigned long long)L->finished, (unsigned long long)L->errors, new_err, (unsigned long long)L->inflight,
            final ? "  (whole run)" : "", L->tty && !final ? "   " : "\n");
    L->last_finished = L->finished;
    L->last_hits = L->hits;
    L->last_errors = L->errors;
    L->last_print = now;
}

static void on_progress(cdn_timer_t *t, void *data)
{
    struct load *L = data;
    double since = (mono_ms() - L->last_print) / 1000.0;
    if (L->tty || (L->progress_s > 0 && since >= L->progress_s - 0.05)) print_progress(L, 0);
    if (L->log) fflush(L->log);
    cdn_timer_start(t, 1000);
}

static void on_stop(cdn_timer_t *t, void *data)
{
    struct load *L = data;
    if (!L->stopping) {
        L->stopping = 1;
        if (!L->inflight) L->done = 1;
        cdn_timer_start(t, 10000); /* give stragglers 10 s */
    } else {
        L->done = 1;
    }
}

static void usage(FILE *f)
{
    fprintf(f, "Usage: " PROG " --dns ADDR:PORT [options]\n"
               "  -r, --region NAME       label in the log (default: here)\n"
               "  -D, --dns ADDR:PORT     cdn-dns to ask (required)\n"
               "  -S, --source A[,B..]    client addresses to send from (default: any)\n"
               "  -z, --zone ZONE         CDN zone (shop.test); names img.ZONE (images), www.ZONE (pages)\n"
               "      --hosts IMG,PAGES   the two CDN names (default img,www)\n"
               "  -p, --port N            edge port (8443 with TLS, else 8080)\n"
               "      --h2c               plain HTTP (h2c by upgrade) instead of HTTP/2 over TLS\n"
               "  -w, --workload W        shopper | zipf | trace:FILE (oracleGeneral .bin, or .bin.zst)\n"
               "  -n, --products N        catalog size (default 2000)\n"
               "  -a, --alpha A           Zipf exponent (default 0.9)\n"
               "  -R, --rate R            open loop: Poisson arrivals per second\n"
               "  -c, --concurrency C     closed loop: users (default 8 when no --rate)\n"
               "  -d, --duration D        (default 10s)   -W, --warmup D (default 0)\n"
               "  -N, --max-requests N    stop after N requests\n"
               "  -s, --seed S            same seed, same request sequence (default 1)\n"
               "      --progress S        off a terminal, a progress line every S seconds (default 5; 0: none)\n"
               "  -l, --log FILE          per-request log (TSV: t phase region edge status bytes ms cache url)\n");
}

/* The command line's values that are not in struct load. */
struct opts {
    const char *dns, *workload, *logp;
    char srcbuf[1024]; /* -S, cut at the commas by setup_clients (the clients keep pointers into it) */
    size_t products;
    double alpha;
    uint64_t seed;
};

enum { O_PROGRESS = 300 }; /* long options without a letter */

/* -1 to go on, else the exit status. */
static int parse_opts(int argc, char **argv, struct load *L, struct opts *o)
{
    static const struct option lo[] = {
        {"progress", 1, NULL, O_PROGRESS},
        {"region", 1, NULL, 'r'}, {"dns", 1, NULL, 'D'}, {"source", 1, NULL, 'S'}, {"zone", 1, NULL, 'z'},
        {"hosts", 1, NULL, 'H'}, {"port", 1, NULL, 'p'}, {"h2c", 0, NULL, 'C'}, {"workload", 1, NULL, 'w'},
        {"products", 1, NULL, 'n'}, {"alpha", 1, NULL, 'a'}, {"rate", 1, NULL, 'R'}, {"concurrency", 1, NULL, 'c'},
        {"duration", 1, NULL, 'd'}, {"warmup", 1, NULL, 'W'}, {"max-requests", 1, NULL, 'N'}, {"seed", 1, NULL, 's'},
        {"log", 1, NULL, 'l'}, {"help", 0, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "r:D:S:z:H:p:Cw:n:a:R:c:d:W:N:s:l:h", lo, NULL)) != -1) {
        switch (c) {
        case 'r': L->region = optarg; break;
        case 'D': o->dns = optarg; break;
        case 'S': snprintf(o->srcbuf, sizeof(o->srcbuf), "%s", optarg); break;
        case 'z': L->zone = optarg; break;
        case 'H': {
            char *comma = strchr(optarg, ',');
            if (!comma) goto bad;
            *comma = 0;
            L->hosts[0] = optarg;
            L->hosts[1] = comma + 1;
            break;
        }
        case 'p': L->port = atoi(optarg); break;
        case 'C': L->tls = 0; break;
        case 'w': o->workload = optarg; break;
        case 'n': o->products = strtoul(optarg, NULL, 10); break;
        case 'a': o->alpha = strtod(optarg, NULL); break;
        case 'R': L->rate = strtod(optarg, NULL); break;
        case 'c': L->conc = atoi(optarg); break;
        case 'd': if (cdn_parse_duration_ms(optarg, &L->dur_ms) < 0) goto bad; break;
        case 'W': if (cdn_parse_duration_ms(optarg, &L->warm_ms) < 0) goto bad; break;
        case 'N': L->max_req = strtoull(optarg, NULL, 10); break;
        case 's': o->seed = strtoull(optarg, NULL, 10); break;
        case 'l': o->logp = optarg; break;
        case O_PROGRESS: L->progress_s = strtod(optarg, NULL); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        bad:
            fprintf(stderr, PROG ": bad value: %s\n", optarg);
            return 2;
        }
    }
    if (!o->dns) {
        usage(stderr);
        return 2;
    }
    if (!L->port) L->port = L->tls ? 8443 : 8080;
    if (!L->rate && !L->conc) L->conc = 8;
    return -1;
}

/* The request generator (-w, -n, -a, -s), a trace read whole; -1 to go on, else the exit status. */
static int init_workload(struct load *L, const struct opts *o)
{
    enum lab_wl_kind kind = LAB_WL_SHOPPER;
    const char *trace = NULL;
    if (!strcmp(o->workload, "zipf")) kind = LAB_WL_ZIPF;
    else if (!strncmp(o->workload, "trace:", 6)) kind = LAB_WL_TRACE, trace = o->workload + 6;
    else if (strcmp(o->workload, "shopper")) {
        fprintf(stderr, PROG ": unknown workload %s\n", o->workload);
        return 2;
    }
    if (lab_wl_init(&L->wl, kind, o->products, o->alpha, o->seed) < 0) {
        fprintf(stderr, PROG ": bad --products/--alpha\n");
        return 2;
    }
    if (trace) { /* read whole (zstd-compressed too, by content); kept for the whole run */
        void *m;
        size_t mlen;
        char terr[512];
        if (lab_trace_slurp(trace, LAB_TRACE_MAX_BYTES, &m, &mlen, terr, sizeof(terr)) < 0) {
            fprintf(stderr, PROG ": trace %s\n", terr);
            return 1;
        }
        if (mlen < 24 || mlen % 24) {
            fprintf(stderr, PROG ": trace %s: %s\n", trace,
                    mlen < 24 ? "empty" : "truncated (not a whole number of 24-byte oracleGeneral records)");
            return 1;
        }
        lab_wl_set_trace(&L->wl, m, mlen, 1);
    }
    return -1;
}

/* The loop, the resolver and one HTTP client per source address; 0, or -1 after saying why. */
static int setup_clients(struct load *L, struct opts *o)
{
    L->loop = h2o_evloop_create();
    char err[256];
    char *srcs[MAX_SRC];
    int ns = 0;
    for (char *t = strtok(o->srcbuf, ","); t && ns < MAX_SRC; t = strtok(NULL, ",")) srcs[ns++] = t;
    struct cdn_resolver_opts ro = {.servers = o->dns, .local_ip4 = ns ? srcs[0] : NULL, .timeout_ms = 1000, .tries = 2,
                                   .family = AF_INET, .cache_max_ttl = 3600, .use_hosts = -1};
    if (!(L->res = cdn_resolver_new(L->loop, &ro, err, sizeof(err)))) {
        fprintf(stderr, PROG ": resolver: %s\n", err);
        return -1;
    }
    L->nsrc = ns ? ns : 1;
    for (int i = 0; i < L->nsrc; i++) {
        struct cdn_httpc_opts ho = {.local_ip = ns ? srcs[i] : NULL, .http2 = 1, .insecure_tls = 1, .timeout_ms = 15000,
                                    .connect_timeout_ms = 3000};
        if (!(L->http[i] = cdn_httpc_new(L->loop, &ho, err, sizeof(err)))) {
            fprintf(stderr, PROG ": http client: %s\n", err);
            return -1;
        }
    }
    return 0;
}

/* t0 (and LOG.t0), the progress and stop timers, the first requests. */
static void start(struct load *L, const char *logp)
{
    L->tty = isatty(2);
    L->t0 = L->last_print = mono_ms();
    if (logp) { /* the log's t is relative to this CLOCK_MONOTONIC time (cdn-lab's faults.tsv uses it too) */
        char tp[4096];
        snprintf(tp, sizeof(tp), "%s.t0", logp);
        FILE *tf = fopen(tp, "w");
        if (tf) {
            fprintf(tf, "%.6f\n", L->t0 / 1000.0);
            fclose(tf);
        }
    }
    L->progress = cdn_timer_new(L->loop, on_progress, L);
    cdn_timer_start(L->progress, 1000);
    L->stop = cdn_timer_new(L->loop, on_stop, L);
    cdn_timer_start(L->stop, L->dur_ms);
    if (L->rate > 0) {
        L->arrive = cdn_timer_new(L->loop, on_arrive, L);
        cdn_timer_start(L->arrive, 0);
    } else {
        for (int u = 0; u < L->conc; u++) issue(L, u);
    }
}

/* After the run: what is still out is logged as cut, the summary, and everything freed. */
static void finish_run(struct load *L)
{
    /* Requests still out after the stragglers' grace: lookups are called back by the resolver
     * ("resolver closed"); transfers are logged here as cut (status 0), so the log has every
     * request an edge may have counted, before cdn_httpc_free cancels them without callbacks. */
    cdn_resolver_free(L->res);
    L->res = NULL;
    while (L->live) finish(L->live, "cut at the end of the run");
    print_progress(L, 1);
    if (L->log) fclose(L->log);
    fprintf(stderr, PROG ": %s: %llu requests, %llu errors (%llu DNS), %.1f%% hits, %llu body bytes\n", L->region,
            (unsigned long long)L->finished, (unsigned long long)L->errors, (unsigned long long)L->dns_err,
            L->finished ? 100.0 * L->hits / L->finished : 0, L->bytes);
    for (size_t i = 0; i < L->nekind; i++)
        fprintf(stderr, PROG ": %s: errors: %llu x %s\n", L->region, (unsigned long long)L->ekind[i].n, L->ekind[i].what);
    free((void *)L->wl.trace); /* the buffer lab_trace_slurp gave us (NULL without a trace) */
    /* Clean exit (LeakSanitizer): requests still in flight after the stragglers' grace are
     * cancelled without callbacks by cdn_httpc_free. */
    for (int i = 0; i < L->nsrc; i++) cdn_httpc_free(L->http[i]);
    cdn_timer_free(L->progress);
    cdn_timer_free(L->stop);
    if (L->arrive) cdn_timer_free(L->arrive);
    lab_wl_free(&L->wl);
    cdn_loop_dispose(L->loop);
    h2o_evloop_destroy(L->loop);
}

int main(int argc, char **argv)
{
    struct load L = {.region = "here", .zone = "shop.test", .hosts = {"img", "www"}, .tls = 1, .dur_ms = 10000, .max_inflight = 2000,
                     .progress_s = 5};
    struct opts o = {.workload = "shopper", .products = 2000, .alpha = 0.9, .seed = 1};
    int rc = parse_opts(argc, argv, &L, &o);
    if (rc >= 0 || (rc = init_workload(&L, &o)) >= 0) return rc;
    if (o.logp && !(L.log = fopen(o.logp, "w"))) {
        fprintf(stderr, PROG ": %s: %s\n", o.logp, strerror(errno));
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    if (setup_clients(&L, &o) < 0) return 1;
    fprintf(stderr, PROG ": %s: workload %s, seed %llu (-s %llu repeats the request sequence)\n", L.region, o.workload,
            (unsigned long long)o.seed, (unsigned long long)o.seed);
    start(&L, o.logp);
    while (!L.done) h2o_evloop_run(L.loop, 100);
    finish_run(&L);
    return L.finished && L.errors < L.finished ? 0 : 1;
}
