/* edge/store/blog.h - the disk tier's body log: append-only segment files of records.
 *
 * Owns: a folder of numbered segment files (`00000001.seg`, ...), each a run of records
 * [header | meta | body] written once and never changed; which segment takes appends (the newest);
 * how many bytes of each segment are still live (its owner says so); the file descriptors, held
 * open while a read uses them, so a segment can be unlinked under a reader. Segment numbers are
 * never reused: a location that names a dropped segment fails to read, it never reads another
 * object's bytes.
 *
 * Why not RocksDB's blob files: a body went through the write batch, the memtable and a flush
 * into a blob file (a quarter of a miss's CPU), and a disk hit made two lookups and two copies
 * (page cache -> blob cache -> our buffer). Here a miss's body is written once with pwritev and
 * a hit is one pread into the buffer that is then served. RocksDB keeps the index (id -> location
 * and meta), so the restart and crash rules stay those of tier_rdb.c.
 *
 * Threads: appends, cleaning and drops come from one thread (the tier's writer); reads and live
 * counts from any. Internally locked. */
#ifndef EDGE_BLOG_H
#define EDGE_BLOG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define EDGE_BLOG_HDR 24 /* "EBL1" u32 meta_len, u64 id, u64 body_len (little-endian) */

struct edge_blog_loc {
    uint64_t off, len; /* len: the whole record, header included */
    uint32_t seg;
};

/* One record to append: its header is made from these; iov[0..1] are the meta and the body. */
struct edge_blog_rec {
    uint64_t id;
    const void *meta, *body;
    size_t meta_len, body_len;
    struct edge_blog_loc at; /* set by edge_blog_append */
};

struct edge_blog;

/* Opens (creates) dir and lists its segments. seg_bytes: a segment takes appends until it is this
 * large (a larger record gets a segment of its own). */
struct edge_blog *edge_blog_open(const char *dir, uint64_t seg_bytes, char *err, size_t errlen);
/* Syncs the newest segment's data, closes every file. */
void edge_blog_close(struct edge_blog *b);

/* Appends n records (one pwritev per segment touched); each rec->at is set. 0, or -errno: then
 * none of them is to be used (the segment taking appends is sealed; the next append opens a new
 * one). */
int edge_blog_append(struct edge_blog *b, struct edge_blog_rec *recs, size_t n);
/* A reader pins the segment of a location while it still holds the lock under which it found
 * the location (so a cleaning that moves the record and drops the segment meanwhile leaves the
 * file open for it): the segment's file descriptor, or -1 if the segment is gone. Every pin is
 * followed by an unpin. The writer, which alone drops segments, reads without pinning. */
int edge_blog_pin(struct edge_blog *b, uint32_t seg);
void edge_blog_unpin(struct edge_blog *b, uint32_t seg);
/* The descriptor of seg for the writer (-1 if unknown). */
int edge_blog_fd(struct edge_blog *b, uint32_t seg);
/* Reads a whole record from fd (a pinned segment's) into buf (loc.len bytes) and checks its
 * header against loc and id: 0, or -1 (short read, header mismatch); meta and body then point into
 * buf. No lock. */
int edge_blog_read(int fd, const struct edge_blog_loc *loc, uint64_t id, void *buf, const uint8_t **meta,
                   size_t *meta_len, const uint8_t **body, size_t *body_len);

/* A location as the index stores it (in front of an object's meta in RocksDB): "ECL1", u32
 * segment, u64 offset, u64 length, little-endian. _get: 0 when v does not start with one (a value
 * from before the body log). */
#define EDGE_BLOG_LOC_LEN 24
void edge_blog_loc_put(uint8_t out[EDGE_BLOG_LOC_LEN], const struct edge_blog_loc *loc);
int edge_blog_loc_get(const uint8_t *v, size_t len, struct edge_blog_loc *loc);
/* Does loc lie inside a known segment (at open: a location from the index may point past what a
 * crash left in the file)? */
int edge_blog_valid(struct edge_blog *b, const struct edge_blog_loc *loc);

/* Live bytes: the owner adds a record's len when the index points at it and subtracts it when
 * it stops. */
void edge_blog_live(struct edge_blog *b, uint32_t seg, int64_t delta);
void edge_blog_live_reset(struct edge_blog *b);
/* Bytes of every segment file. */
uint64_t edge_blog_bytes(struct edge_blog *b);

/* Cleaning (the writer): a sealed segment whose live share is lowest, if the files hold more than
 * limit bytes; 0 if none. */
uint32_t edge_blog_victim(struct edge_blog *b, uint64_t limit);
/* Calls fn for every record of seg in order, with its location and id; stops at the first
 * damaged header. -1 if the segment is unknown or a header was damaged. */
int edge_blog_scan(struct edge_blog *b, uint32_t seg,
                   void (*fn)(const struct edge_blog_loc *loc, uint64_t id, void *data), void *data);
/* Unlinks seg; its file closes when the last reader is done. */
void edge_blog_drop(struct edge_blog *b, uint32_t seg);
/* Drops every sealed segment with no live bytes (at open, after the index is rebuilt). */
size_t edge_blog_drop_empty(struct edge_blog *b);

#endif
