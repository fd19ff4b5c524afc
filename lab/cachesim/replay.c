/* lab/cachesim/replay.c - replay and counting for cdn-cachesim (see cachesim.h). */
#include "config.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lab/cachesim/cachesim.h"
#include "edge/store/admit.h"
#include "edge/store/idmap.h"
#include "edge/store/policy.h"

static inline uint64_t sim_id(uint64_t id) { return id ? id : UINT64_MAX; }

int lab_sim_working_set(const struct lab_trace *t, struct lab_sim_ws *ws)
{
    memset(ws, 0, sizeof(*ws));
    struct edge_idmap m;
    if (edge_idmap_init(&m, 1024) < 0) return -1;
    for (size_t i = 0; i < t->n; i++) {
        const struct lab_trace_rec *r = &t->r[i];
        uint64_t id = sim_id(r->id);
        ws->reqs++;
        ws->req_bytes += r->size;
        if (edge_idmap_get(&m, id, NULL)) continue;
        if (edge_idmap_put(&m, id, r->size) < 0) {
            edge_idmap_free(&m);
            return -1;
        }
        ws->bytes += r->size;
    }
    ws->objects = m.n;
    edge_idmap_free(&m);
    return 0;
}

int lab_sim_run(const struct lab_trace *t, int kind, uint64_t capacity, struct lab_sim_result *res)
{
    memset(res, 0, sizeof(*res));
    struct edge_policy *p = edge_policy_new((enum edge_policy_kind)kind, capacity);
    if (!p) return -1;
    for (size_t i = 0; i < t->n; i++) {
        const struct lab_trace_rec *r = &t->r[i];
        uint64_t id = sim_id(r->id);
        res->reqs++;
        res->req_bytes += r->size;
        if (edge_policy_hit(p, id)) continue;
        res->misses++;
        res->miss_bytes += r->size;
        /* a size the policy does not admit is refused (adaptive's sampling still sees it) */
        int big = r->size > edge_policy_max_size(p);
        if (edge_policy_insert(p, id, r->size, NULL, NULL) < 0 && !big) {
            edge_policy_free(p);
            return -1;
        }
    }
    res->meta_bytes = edge_policy_meta_bytes(p);
    res->resident = edge_policy_count(p);
    edge_policy_free(p);
    return 0;
}

int lab_sim_two_tier(const struct lab_trace *t, int ram_kind, uint64_t ram_cap, uint64_t disk_cap, int admit,
                     struct lab_sim_tiers *res)
{
    memset(res, 0, sizeof(*res));
    struct edge_policy *ram = edge_policy_new((enum edge_policy_kind)ram_kind, ram_cap);
    struct edge_policy *disk = edge_policy_new(EDGE_POLICY_LRU, disk_cap);
    struct edge_admit *a = edge_admit_new((enum edge_admit_kind)admit, 0);
    int rc = -1;
    if (ram == NULL || disk == NULL || a == NULL)
        goto out;
    for (size_t i = 0; i < t->n; i++) {
        const struct lab_trace_rec *r = &t->r[i];
        uint64_t id = sim_id(r->id);
        res->reqs++;
        res->req_bytes += r->size;
        if (edge_policy_hit(ram, id)) {
            res->ram_hits++;
            res->ram_hit_bytes += r->size;
            continue;
        }
        if (edge_policy_hit(disk, id)) {
            res->disk_hits++;
            res->disk_hit_bytes += r->size;
            edge_policy_insert(ram, id, r->size, NULL, NULL); /* promote; RAM may refuse the size */
            continue;
        }
        edge_policy_insert(ram, id, r->size, NULL, NULL);
        int room = edge_policy_bytes(disk) + r->size <= disk_cap;
        if (r->size <= disk_cap && edge_admit_miss(a, id, edge_policy_count(disk), room)) {
            if (edge_policy_insert(disk, id, r->size, NULL, NULL) < 0)
                goto out;
            res->disk_writes++;
            res->disk_write_bytes += r->size;
        }
    }
    rc = 0;
out:
    edge_policy_free(ram);
    edge_policy_free(disk);
    edge_admit_free(a);
    return rc;
}

int lab_sim_sizes_parse(const char *s, struct lab_sim_size *out, size_t max, size_t *n)
{
    *n = 0;
    while (*s) {
        const char *c = strchr(s, ',');
        size_t len = c ? (size_t)(c - s) : strlen(s);
        if (len == 0 || len >= sizeof(out->label) || *n == max) return -1;
        struct lab_sim_size z = {0};
        memcpy(z.label, s, len);
        char *end;
        double v = strtod(z.label, &end);
        if (end == z.label || !isfinite(v) || v <= 0) return -1;
        if (*end == '%' && end[1] == 0) {
            if (v > 100) return -1;
            z.pct = v;
        } else {
            double mul = 1;
            switch (*end) {
            case 'K': case 'k': mul = 1024.0; end++; break;
            case 'M': case 'm': mul = 1024.0 * 1024; end++; break;
            case 'G': case 'g': mul = 1024.0 * 1024 * 1024; end++; break;
            case 'T': case 't': mul = 1024.0 * 1024 * 1024 * 1024; end++; break;
            }
            if (*end == 'B' || *end == 'b') end++;
            if (*end || v * mul >= 0x1p63) return -1;
            z.bytes = (uint64_t)(v * mul);
            if (z.bytes == 0) return -1;
        }
        out[(*n)++] = z;
        s = c ? c + 1 : s + len;
        if (c && !*s) return -1; /* trailing comma */
    }
    return *n ? 0 : -1;
}

uint64_t lab_sim_size_bytes(const struct lab_sim_size *s, uint64_t ws_bytes)
{
    return s->pct > 0 ? (uint64_t)((double)ws_bytes * s->pct / 100.0) : s->bytes;
}
