/* libFuzzer harness: Cache-Control (lenient and strict, with the field lists of qualified
 * private/no-cache), HTTP-dates (and the Date sent on the wire), Vary lists, cache keys and
 * whole-response analysis over arbitrary bytes (edge/http/cc.c, edge/http/freshness.c, edge/http/cache_key.c). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "edge/http/cache_key.h"
#include "edge/http/freshness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    struct edge_cc cc;
    for (int strict = 0; strict < 2; strict++) {
        edge_cc_init(&cc);
        edge_cc_parse(&cc, s, size, strict);
        /* the qualified private/no-cache names: lowercase tokens, each closed by ',', and found */
        size_t fl = strnlen(cc.fields, sizeof(cc.fields));
        if (fl == sizeof(cc.fields) || (fl > 0 && cc.fields[fl - 1] != ','))
            abort();
        for (const char *p = cc.fields; *p;) {
            const char *e = strchr(p, ',');
            if (e == p || !edge_cc_lists_field(&cc, p, (size_t)(e - p)))
                abort();
            for (const char *q = p; q < e; q++)
                if (*q >= 'A' && *q <= 'Z')
                    abort();
            p = e + 1;
        }
        edge_cc_lists_field(&cc, s, size);
    }
    char dbuf[30];
    if (edge_date_pick((struct edge_hdr[]){{"Date", 4, s, size}}, 1, -1, dbuf) && strlen(dbuf) != 29)
        abort(); /* what goes on the wire must be exactly an IMF-fixdate's length */
    int64_t t;
    edge_http_date_parse(s, size, &t);
    struct edge_hdr h[] = {
        {"Cache-Control", 13, s, size}, {"CDN-Cache-Control", 17, s, size}, {"Expires", 7, s, size},
        {"Age", 3, s, size},            {"Vary", 4, s, size},               {"Date", 4, s, size},
        {"Connection", 10, s, size},    {"Accept-Encoding", 15, s, size},
    };
    size_t n = sizeof(h) / sizeof(h[0]);
    struct edge_fresh_conf conf;
    edge_fresh_conf_default(&conf);
    struct edge_resp_meta rs;
    struct edge_req_meta rq;
    edge_resp_analyze(h, n, 200, &conf, &rs);
    edge_req_analyze(EDGE_M_GET, h, n, &rq);
    edge_storable(&rq, &rs, &conf);
    struct edge_fresh f;
    struct edge_verdict v;
    edge_fresh_from_resp(&f, &rs, 1700000000, 1700000001, &conf);
    edge_decide(&f, &rq, 1700000100, &v);
    edge_hdr_is_hop(h, n, s, size);
    char out[512];
    int vl = edge_vary_normalize(h, n, out, sizeof(out));
    if (vl > 0) {
        char k[512];
        edge_vary_key(out, (size_t)vl, h, n, k, sizeof(k));
    }
    char key[EDGE_KEY_MAX];
    const char *drop[] = {"utm_*", "a", NULL};
    struct edge_key_conf kc = {drop, 1, 0};
    edge_key_primary(&kc, "http", s, size, s, size, key, sizeof(key));
    if (size > 0) {
        /* as a target: force origin-form */
        char *tgt = malloc(size + 1);
        tgt[0] = '/';
        memcpy(tgt + 1, s, size);
        edge_key_primary(&kc, "https", "h", 1, tgt, size + 1, key, sizeof(key));
        free(tgt);
    }
    return 0;
}
