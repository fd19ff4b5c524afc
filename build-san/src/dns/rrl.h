/* dns/rrl.h - response rate limiting per client subnet, and "known client" memory for the
 * amplification guard.
 *
 * Buckets: one table per UDP thread (no locks): a fixed number of slots, direct-mapped by a hash of
 * the client's /24 (IPv4) or /56 (IPv6); a colliding subnet takes the slot over with a full bucket
 * (errs on the side of answering). Token bucket: `rate` answers per second, up to `burst` saved.
 * Over the limit every `slip`-th answer is sent as an empty TC=1 reply (a real client retries over
 * TCP, a spoofed victim gets little), the rest are dropped.
 * Known clients: a subnet that spoke TCP recently has proved its address and is "known": the
 * amplification guard does not apply to it. One cdns_known table is shared by every thread (TCP
 * threads mark, UDP threads check): each slot is one atomic word (32 bits of the subnet's hash,
 * 32 bits of expiry in seconds), so no locks and no torn reads. All functions take `now` so the
 * tests need no sleeps. */
#ifndef CDNS_RRL_H
#define CDNS_RRL_H

#include <stddef.h>
#include <stdint.h>
#include "dns/view.h"

enum cdns_rrl_verdict { CDNS_RRL_PASS, CDNS_RRL_SLIP, CDNS_RRL_DROP };

#define CDNS_KNOWN_MS (10 * 60 * 1000)

struct cdns_rrl;
struct cdns_rrl *cdns_rrl_new(size_t slots);
void cdns_rrl_free(struct cdns_rrl *r);
enum cdns_rrl_verdict cdns_rrl_check(struct cdns_rrl *r, const struct cdns_settings *s, int family,
                                     const uint8_t *addr, uint64_t now_ms);

struct cdns_known;
struct cdns_known *cdns_known_new(size_t slots);
void cdns_known_free(struct cdns_known *k);
/* Thread-safe (relaxed atomics). */
void cdns_known_mark(struct cdns_known *k, const struct cdns_settings *s, int family, const uint8_t *addr,
                     uint64_t now_ms);
int cdns_known_check(const struct cdns_known *k, const struct cdns_settings *s, int family,
                     const uint8_t *addr, uint64_t now_ms);

#endif
