/* edge/purge/cdn_purge.c - cdn-purge: publishes a purge command on the bus (edge/purge/bus.h) and,
 * with --wait, waits for every edge's ack; `status` lists the edges (consumer groups), their lag
 * and the dead letters.
 *
 *   cdn-purge [--redis URL] [--stream NAME] [--soft] [--wait[=SECONDS]] url|prefix|tag|all ARG...
 *   cdn-purge [--redis URL] [--stream NAME] status
 *   cdn-purge [--redis URL] [--stream NAME] forget EDGE   (a retired edge: --wait stops waiting for it)
 *
 * Exit: 0 done (every edge acked, with --wait); 1 an edge did not ack in time or the command was
 * dead-lettered; 2 a bad command line or command; 3 Redis unreachable. */
#include "config.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "cdn/admin.h"
#include "edge/purge/bus.h"
#include "edge/purge/cmd.h"

#define MAX_EDGES 256

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: cdn-purge [--redis URL] [--stream NAME] [--soft] [--wait[=SECONDS]] url|prefix|tag|all ARG...\n"
               "       cdn-purge [--redis URL] [--stream NAME] status\n"
               "       cdn-purge [--redis URL] [--stream NAME] forget EDGE   (drop a retired edge's group)\n"
               "  --redis URL      the bus (default $CDN_PURGE_REDIS, else redis://127.0.0.1:6379)\n"
               "  --stream NAME    the purge stream (default cdn:purge)\n"
               "  --auth-file F    the bus's password (Redis AUTH), F's first line (default $CDN_PURGE_AUTH_FILE)\n"
               "  --soft           mark stale instead of removing\n"
               "  --wait[=S]       wait for every edge's ack (default 10 s); print each edge's latency\n"
               "kinds: url URL... (every variant, any scheme and port) | prefix HOST/PATH... |\n"
               "       tag TAG... (Surrogate-Key) | all HOST...\n");
}

static redisReply *cmd(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    if (r == NULL) {
        fprintf(stderr, "cdn-purge: redis: %s\n", c->errstr);
        exit(3);
    }
    return r;
}

static const redisReply *kv(const redisReply *m, const char *key)
{
    for (size_t i = 0; m->type == REDIS_REPLY_ARRAY && i + 1 < m->elements; i += 2)
        if (m->element[i]->type == REDIS_REPLY_STRING && strcmp(m->element[i]->str, key) == 0)
            return m->element[i + 1];
    return NULL;
}

static long long num(const redisReply *v)
{
    if (v == NULL)
        return -1;
    if (v->type == REDIS_REPLY_INTEGER)
        return v->integer;
    if (v->type == REDIS_REPLY_STRING)
        return strtoll(v->str, NULL, 10);
    return -1;
}

/* The groups (edges) of the stream: names into names[], count returned. */
static int edges(redisContext *c, const char *stream, char names[][128], int max)
{
    redisReply *r = cmd(c, "XINFO GROUPS %s", stream);
    int n = 0;
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements && n < max; i++) {
        const redisReply *nm = kv(r->element[i], "name");
        if (nm != NULL && nm->type == REDIS_REPLY_STRING)
            snprintf(names[n++], 128, "%s", nm->str);
    }
    freeReplyObject(r);
    return n;
}

/* The id of the last entry of a stream, or "0-0". */
static void last_id(redisContext *c, const char *stream, char *out, size_t cap)
{
    redisReply *r = cmd(c, "XREVRANGE %s + - COUNT 1", stream);
    snprintf(out, cap, "0-0");
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 && r->element[0]->type == REDIS_REPLY_ARRAY &&
        r->element[0]->elements >= 1 && r->element[0]->element[0]->type == REDIS_REPLY_STRING)
        snprintf(out, cap, "%s", r->element[0]->element[0]->str);
    freeReplyObject(r);
}

static int status(redisContext *c, const char *stream)
{
    char dead[300];
    snprintf(dead, sizeof(dead), "%s:dead", stream);
    redisReply *len = cmd(c, "XLEN %s", stream), *dlen = cmd(c, "XLEN %s", dead);
    printf("stream %s: %lld commands; dead letters %s: %lld\n", stream, num(len), dead, num(dlen));
    freeReplyObject(len);
    freeReplyObject(dlen);
    redisReply *r = cmd(c, "XINFO GROUPS %s", stream);
    printf("%-16s %8s %8s %-24s\n", "edge", "lag", "pending", "last delivered");
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        const redisReply *g = r->element[i], *nm = kv(g, "name"), *ld = kv(g, "last-delivered-id");
        long long lag = num(kv(g, "lag"));
        char lags[24];
        if (lag < 0)
            snprintf(lags, sizeof(lags), "?");
        else
            snprintf(lags, sizeof(lags), "%lld", lag);
        printf("%-16s %8s %8lld %-24s\n", nm && nm->type == REDIS_REPLY_STRING ? nm->str : "?", lags,
               num(kv(g, "pending")), ld && ld->type == REDIS_REPLY_STRING ? ld->str : "?");
    }
    if (r->type == REDIS_REPLY_ERROR)
        printf("(no stream yet: %s)\n", r->str);
    freeReplyObject(r);
    r = cmd(c, "XREVRANGE %s + - COUNT 20", dead);
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 2)
            continue;
        const redisReply *f = e->element[1], *id = kv(f, "id"), *ed = kv(f, "edge"), *cm = kv(f, "cmd"),
                         *why = kv(f, "reason"), *dl = kv(f, "deliveries");
        printf("dead %s edge %s after %s deliveries: '%s': %s\n", id ? id->str : "?", ed ? ed->str : "?",
               dl ? dl->str : "?", cm ? cm->str : "", why ? why->str : "?");
    }
    freeReplyObject(r);
    return 0;
}

int main(int argc, char **argv)
{
    const char *url = getenv("CDN_PURGE_REDIS"), *stream = "cdn:purge", *auth = getenv("CDN_PURGE_AUTH_FILE");
    int soft = 0;
    double wait_s = -1;
    static const struct option opts[] = {{"redis", 1, NULL, 'r'}, {"stream", 1, NULL, 's'}, {"soft", 0, NULL, 'S'},
                                         {"wait", 2, NULL, 'w'},  {"help", 0, NULL, 'h'}, {"auth-file", 1, NULL, 'A'},   {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        switch (ch) {
        case 'r': url = optarg; break;
        case 's': stream = optarg; break;
        case 'S': soft = 1; break;
        case 'w': wait_s = optarg ? atof(optarg) : 10.0; break;
        case 'A': auth = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (url == NULL)
        url = "redis://127.0.0.1:6379";
    if (optind >= argc) {
        usage(stderr);
        return 2;
    }
    char host[256];
    int port;
    if (edge_purge_redis_url(url, host, sizeof(host), &port) < 0) {
        fprintf(stderr, "cdn-purge: bad --redis '%s' (redis://HOST:PORT)\n", url);
        return 2;
    }
    /* the command, checked here so that a typo is an error now rather than a dead letter later */
    char text[EDGE_PURGE_TEXT_MAX + 1];
    size_t tl = 0;
    int is_status = strcmp(argv[optind], "status") == 0 && optind + 1 == argc;
    int is_forget = strcmp(argv[optind], "forget") == 0 && optind + 2 == argc;
    if (!is_status && !is_forget) {
        tl = (size_t)snprintf(text, sizeof(text), "%s", soft ? "soft" : "hard");
        for (int i = optind; i < argc && tl < sizeof(text); i++)
            tl += (size_t)snprintf(text + tl, sizeof(text) - tl, " %s", argv[i]);
        static struct edge_purge_cmd pc;
        char err[200];
        if (tl >= sizeof(text) || edge_purge_parse(text, tl, NULL, &pc, err, sizeof(err)) < 0) {
            fprintf(stderr, "cdn-purge: %s\n", tl >= sizeof(text) ? "command too long" : err);
            return 2;
        }
    }
    struct timeval tv = {.tv_sec = 3};
    redisContext *c = redisConnectWithTimeout(host, port, tv);
    if (c == NULL || c->err) {
        fprintf(stderr, "cdn-purge: cannot reach %s: %s\n", url, c ? c->errstr : "out of memory");
        return 3;
    }
    if (auth != NULL && auth[0]) {
        char pass[256], why[300];
        if (cdn_token_read(auth, pass, sizeof(pass), why, sizeof(why)) < 0) {
            fprintf(stderr, "cdn-purge: --auth-file %s\n", why);
            return 2;
        }
        redisReply *ar = cmd(c, "AUTH %s", pass);
        if (ar->type == REDIS_REPLY_ERROR) {
            fprintf(stderr, "cdn-purge: AUTH: %s\n", ar->str);
            return 3;
        }
        freeReplyObject(ar);
    }
    if (is_status) {
        int rc = status(c, stream);
        redisFree(c);
        return rc;
    }
    if (is_forget) {
        redisReply *fr = cmd(c, "XGROUP DESTROY %s %s", stream, argv[optind + 1]);
        int gone = fr->type == REDIS_REPLY_INTEGER && fr->integer == 1;
        if (fr->type == REDIS_REPLY_ERROR)
            fprintf(stderr, "cdn-purge: XGROUP DESTROY: %s\n", fr->str);
        else
            printf("%s: %s\n", argv[optind + 1], gone ? "forgotten (its consumer group is gone)" : "no such edge");
        freeReplyObject(fr);
        redisFree(c);
        return gone ? 0 : 1;
    }
    char acks[300], dead[300], la[64], ld[64], names[MAX_EDGES][128], by[128];
    snprintf(acks, sizeof(acks), "%s:acks", stream);
    snprintf(dead, sizeof(dead), "%s:dead", stream);
    int ne = 0;
    if (wait_s >= 0) {
        ne = edges(c, stream, names, MAX_EDGES);
        last_id(c, acks, la, sizeof(la));
        last_id(c, dead, ld, sizeof(ld));
    }
    char hn[64] = "?";
    gethostname(hn, sizeof(hn));
    hn[sizeof(hn) - 1] = '\0';
    snprintf(by, sizeof(by), "cdn-purge@%s", hn);
    int64_t t0 = wall_ms();
    char ts[24];
    snprintf(ts, sizeof(ts), "%lld", (long long)t0);
    redisReply *r = cmd(c, "XADD %s * cmd %b t %s by %s", stream, text, tl, ts, by);
    if (r->type != REDIS_REPLY_STRING) {
        fprintf(stderr, "cdn-purge: XADD: %s\n", r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        return 3;
    }
    char id[64];
    snprintf(id, sizeof(id), "%s", r->str);
    freeReplyObject(r);
    printf("published %s: %.*s\n", id, (int)tl, text);
    if (wait_s < 0) {
        redisFree(c);
        return 0;
    }
    if (ne == 0) {
        printf("no edge is subscribed to %s (no consumer group): nothing to wait for\n", stream);
        redisFree(c);
        return 1;
    }
    int64_t lat[MAX_EDGES], deadline = t0 + (int64_t)(wait_s * 1000);
    long long removed[MAX_EDGES];
    for (int i = 0; i < ne; i++)
        lat[i] = -1;
    int acked = 0, dead_n = 0;
    while (acked < ne && dead_n == 0) {
        int64_t left = deadline - wall_ms();
        if (left <= 0)
            break;
        r = cmd(c, "XREAD COUNT 1000 BLOCK %lld STREAMS %s %s %s %s", (long long)left, acks, dead, la, ld);
        for (size_t s = 0; r->type == REDIS_REPLY_ARRAY && s < r->elements; s++) {
            const redisReply *sr = r->element[s];
            if (sr->type != REDIS_REPLY_ARRAY || sr->elements < 2)
                continue;
            int is_dead = strcmp(sr->element[0]->str, dead) == 0;
            const redisReply *es = sr->element[1];
            for (size_t k = 0; es->type == REDIS_REPLY_ARRAY && k < es->elements; k++) {
                const redisReply *e = es->element[k];
                snprintf(is_dead ? ld : la, 64, "%s", e->element[0]->str);
                const redisReply *f = e->element[1], *eid = kv(f, "id"), *ed = kv(f, "edge");
                if (eid == NULL || ed == NULL || strcmp(eid->str, id) != 0)
                    continue;
                if (is_dead) {
                    const redisReply *why = kv(f, "reason");
                    printf("DEAD LETTER from %s: %s\n", ed->str, why ? why->str : "?");
                    dead_n++;
                    continue;
                }
                for (int i = 0; i < ne; i++)
                    if (strcmp(names[i], ed->str) == 0 && lat[i] < 0) {
                        long long ta = num(kv(f, "t_apply"));
                        lat[i] = ta > 0 ? ta - t0 : wall_ms() - t0;
                        removed[i] = num(kv(f, "n"));
                        acked++;
                    }
            }
        }
        freeReplyObject(r);
    }
    int64_t slow = -1;
    const char *slowest = NULL;
    for (int i = 0; i < ne; i++) {
        if (lat[i] >= 0) {
            printf("  %-16s acked in %5lld ms (%lld objects)\n", names[i], (long long)lat[i], removed[i]);
            if (lat[i] > slow) {
                slow = lat[i];
                slowest = names[i];
            }
        } else {
            printf("  %-16s NO ACK within %.1f s\n", names[i], wait_s);
        }
    }
    if (slowest != NULL)
        printf("slowest: %s, %lld ms; %d of %d edges acked\n", slowest, (long long)slow, acked, ne);
    redisFree(c);
    return acked == ne && dead_n == 0 ? 0 : 1;
}
