/* lab/cdnlab/report_replay.c - the report's "live vs replay" section: each edge's own requests,
 * from the client logs, replayed through cdn-cachesim's two-tier model (lab/cachesim/replay.c:
 * the edge's RAM policy and disk admission code, edge/store/) at the sizes the lab gave that edge,
 * beside the hit ratio the edge really had. They should agree within about a point; where they do
 * not, the reasons are the ones the replay cannot see: TTL expiry and revalidation (a 304 is a
 * miss live and a hit in the replay), purges, requests in flight together (collapsed into one
 * fetch live), objects the edge did not store (no-store, errors), and the headers and bookkeeping
 * each stored object is charged for (approximated by a fixed overhead).
 *
 * Rules: every answered request of the whole run counts (warm-up too: the cache state depends on
 * it), so the live column here can differ from the edges' table above, which leaves warm-up out.
 * Requests are ordered by their client time stamps; those of one edge from several load
 * generators interleave as the clocks say. Parent edges get no client requests and are left out. */
#include "config.h"
#include <glob.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdn/http.h"
#include "edge/store/admit.h"
#include "edge/store/policy.h"
#include "lab/cachesim/cachesim.h"
#include "lab/cdnlab/labrun.h"
#include "lab/lib/topo.h"
#include "lab/lib/workload.h"

/* What a stored object costs beyond its body (headers, key, bookkeeping: edge_obj_charge) */
#define OBJ_OVERHEAD 512

struct rreq {
    double t;
    uint64_t id;
    uint32_t size;
    int hit;
};

struct per_edge {
    struct rreq *v;
    size_t n, cap;
};

static int cmp_t(const void *a, const void *b)
{
    double x = ((const struct rreq *)a)->t, y = ((const struct rreq *)b)->t;
    return x < y ? -1 : x > y;
}

static int push(struct per_edge *e, const struct rreq *q)
{
    if (e->n == e->cap) {
        size_t nc = e->cap ? e->cap * 2 : 1024;
        struct rreq *nv = realloc(e->v, nc * sizeof(*nv));
        if (nv == NULL)
            return -1;
        e->v = nv;
        e->cap = nc;
    }
    e->v[e->n++] = *q;
    return 0;
}

void lab_report_replay(const struct lab_run *r, FILE *o, FILE *rf)
{
    const struct lab_topo *t = r->topo;
    size_t ne = t->edges.n < 64 ? t->edges.n : 64;
    struct per_edge pe[64] = {{0}};
    char pat[PATH_MAX];
    snprintf(pat, sizeof(pat), "%s/load-*.log", r->statedir);
    glob_t g;
    if (glob(pat, 0, NULL, &g) != 0)
        return;
    int oom = 0;
    for (size_t gi = 0; gi < g.gl_pathc && !oom; gi++) {
        FILE *f = fopen(g.gl_pathv[gi], "r");
        if (!f)
            continue;
        char line[1024];
        while (!oom && fgets(line, sizeof(line), f)) {
            struct lab_logrec rec;
            if (lab_log_parse(line, strlen(line), &rec) < 0 || lab_log_tier(&rec) < 0)
                continue; /* malformed, or no answer */
            for (size_t i = 0; i < ne; i++)
                if (!strcmp(lab_topo_edge(t, i)->name, rec.edge)) {
                    uint64_t id = cdn_hash_fixed(rec.url, strlen(rec.url));
                    uint64_t size = rec.bytes + OBJ_OVERHEAD;
                    struct rreq q = {rec.t, id ? id : 1, size > UINT32_MAX ? UINT32_MAX : (uint32_t)size,
                                     !strcmp(rec.cache, "hit")};
                    oom = push(&pe[i], &q) < 0;
                    break;
                }
        }
        fclose(f);
    }
    globfree(&g);
    lab_out2(o, rf, "\nlive vs replay (each edge's requests through cdn-cachesim at its sizes: RAM %s, disk %s;\n"
                    "whole run, warm-up included; see docs/CACHESIM.md)\n",
             edge_policy_kind_name(EDGE_POLICY_ADAPTIVE), edge_admit_kind_name(EDGE_ADMIT_SECOND_HIT));
    lab_out2(o, rf, "%-10s %8s %10s %10s %8s %8s\n", "edge", "requests", "RAM", "disk", "live%", "replay%");
    int differ = 0;
    for (size_t i = 0; i < ne && !oom; i++) {
        const struct lab_edge *e = lab_topo_edge(t, i);
        if (pe[i].n == 0)
            continue;
        qsort(pe[i].v, pe[i].n, sizeof(*pe[i].v), cmp_t);
        struct lab_trace tr = {.n = pe[i].n, .cap = pe[i].n};
        uint64_t live = 0;
        if ((tr.r = malloc(pe[i].n * sizeof(*tr.r))) == NULL) {
            oom = 1;
            break;
        }
        for (size_t k = 0; k < pe[i].n; k++) {
            tr.r[k] = (struct lab_trace_rec){.id = pe[i].v[k].id, .size = pe[i].v[k].size};
            live += (uint64_t)pe[i].v[k].hit;
        }
        struct lab_sim_tiers res;
        if (lab_sim_two_tier(&tr, EDGE_POLICY_ADAPTIVE, e->ram, e->disk, EDGE_ADMIT_SECOND_HIT, &res) == 0) {
            double lv = 100.0 * (double)live / (double)pe[i].n,
                   rp = 100.0 * (double)(res.ram_hits + res.disk_hits) / (double)(res.reqs ? res.reqs : 1);
            int ok = lv - rp <= 1.0 && rp - lv <= 1.0;
            differ |= !ok;
            lab_out2(o, rf, "%-10s %8zu %9lluM %9lluM %8.1f %8.1f -> %s\n", e->name, pe[i].n,
                     (unsigned long long)(e->ram >> 20), (unsigned long long)(e->disk >> 20), lv, rp,
                     ok ? "agree" : "differ");
        } else {
            oom = 1;
        }
        free(tr.r);
    }
    if (oom)
        lab_out2(o, rf, "(out of memory: the replay is incomplete)\n");
    else if (differ)
        lab_out2(o, rf, "(more than 1 point apart: TTL expiry and revalidation, purges, collapsed fetches or objects\n"
                        " the edge did not store, none of which the replay sees)\n");
    for (size_t i = 0; i < ne; i++)
        free(pe[i].v);
}
