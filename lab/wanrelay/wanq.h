/* lab/wanrelay/wanq.h - the WAN relay's delay line: a bounded FIFO of frames, each released at a time
 * computed when it arrives (one-way delay, optional bottleneck rate, random loss).
 *
 * Pure and single-threaded: times are passed in (nanoseconds on any monotonic clock), so the unit
 * tests drive it without sleeping. Because the delay of one direction is constant and the rate
 * model serialises frames in arrival order, release times never decrease: a ring in arrival order
 * is also a ring in release order, and no heap is needed. */
#ifndef LAB_WANQ_H
#define LAB_WANQ_H

#include <stddef.h>
#include <stdint.h>

struct lab_wanq_cfg {
    uint64_t delay_ns;     /* one-way propagation delay added to every frame */
    uint64_t rate_bps;     /* bottleneck rate in bits/s; 0 = unlimited */
    double loss;           /* probability a frame is dropped on arrival, 0..1 */
    size_t max_frames;     /* tail drop above this many queued frames (0 = 4096) */
    size_t max_bytes;      /* ring capacity in bytes (0 = 16 MiB) */
    uint64_t seed;         /* loss PRNG seed */
};

struct lab_wanq_stats {
    uint64_t in_frames, in_bytes, out_frames, out_bytes;
    uint64_t drop_full, drop_loss, drop_big;
};

struct lab_wanq {
    struct lab_wanq_cfg cfg;
    unsigned char *buf;    /* ring of [hdr][data padded to 8] records */
    size_t cap, head, tail, used; /* bytes: head = oldest record, tail = next write */
    size_t frames;
    uint64_t busy_until;   /* when the bottleneck finishes the last accepted frame */
    uint64_t rng;
    struct lab_wanq_stats st;
};

/* 0, or -1 when out of memory. */
int lab_wanq_init(struct lab_wanq *q, const struct lab_wanq_cfg *cfg);
void lab_wanq_free(struct lab_wanq *q);

/* Accepts a frame that arrived at now: 1 queued, 0 dropped (full, loss, too big). meta (meta_len
 * bytes, e.g. a virtio_net_hdr) is stored in front of the frame and given back with it. */
int lab_wanq_push(struct lab_wanq *q, uint64_t now, const void *meta, size_t meta_len,
                  const void *frame, size_t len);
/* The oldest frame if its release time is <= now: 1 and the pointers set (valid until the next
 * pop/push); 0 if none is due. *next_release is set to the oldest frame's release time, or
 * UINT64_MAX when the queue is empty. */
int lab_wanq_peek(const struct lab_wanq *q, uint64_t now, const void **meta, size_t *meta_len,
                  const void **frame, size_t *len, uint64_t *next_release);
void lab_wanq_pop(struct lab_wanq *q);

/* Changes the drop probability (0..1) of frames that arrive from now on; what is queued stays
 * queued and keeps its release time, the PRNG goes on where it was. */
void lab_wanq_set_loss(struct lab_wanq *q, double loss);

/* Up to max frames due at now, oldest first, without removing them (so a partial sendmmsg can
 * leave the rest queued): returns how many; then lab_wanq_pop_n() those actually sent. Pointers
 * stay valid until the next push. */
struct lab_wanq_item {
    const void *meta, *frame;
    size_t meta_len, len;
};
size_t lab_wanq_peek_batch(const struct lab_wanq *q, uint64_t now, struct lab_wanq_item *items, size_t max);
void lab_wanq_pop_n(struct lab_wanq *q, size_t n);
/* Release time of the oldest frame, UINT64_MAX if empty. */
uint64_t lab_wanq_next(const struct lab_wanq *q);

/* "25ms", "1.5ms", "300us", "0.2s", "40" (ms) -> nanoseconds. 0 or -1. */
int lab_parse_delay_ns(const char *s, uint64_t *out);
/* "100mbit", "1gbit", "500kbit", "2000000" (bit/s) -> bits per second. 0 or -1. */
int lab_parse_rate_bps(const char *s, uint64_t *out);

#endif
