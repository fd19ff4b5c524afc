/* edge/store/obj.h - a stored response: status, stored headers, body, timing, validators, Vary, tags.
 *
 * Owns: the in-memory object (one allocation for the header strings, one for the body) and its
 * versioned binary serialization (the RocksDB meta value). Objects are immutable once built and
 * shared by reference count across threads: edge_obj_ref()/edge_obj_release(); whoever gets an
 * object from a function returning `struct edge_obj *` owns one reference.
 *
 * Meta format v1 (little-endian), see obj.c; it ends in a CRC32 of itself and carries the body's
 * CRC32 and length, so a flipped bit in either value is detected and the object dropped. */
#ifndef EDGE_OBJ_H
#define EDGE_OBJ_H

#include <stddef.h>
#include <stdint.h>

#include "edge/http/freshness.h"

#define EDGE_OBJ_MAGIC 0x4f424a31u /* "OBJ1" */

/* Classes of a stored header, computed once when the object is built so that a hit makes no name
 * comparisons (edge_obj.hflags[i]; edge_obj.hf_all is the OR of all of them). */
#define EDGE_HF_NOT_TO_CLIENT 0x01 /* never passed on a hit: hop-by-hop, Content-Length, Date (sent as
                                    * the head's own, edge_obj.date), Age (the edge writes its own),
                                    * Cache-Status, Via, X-Served-By */
#define EDGE_HF_CDN_ONLY 0x02      /* CDN-Cache-Control, Surrogate-Key: only for a child CDN cache */
#define EDGE_HF_IN_304 0x04        /* kept in a 304 from cache: ETag, Cache-Control, Date, Expires, Vary,
                                    * Last-Modified, Content-Location */
#define EDGE_HF_CACHE_STATUS 0x08  /* Cache-Status (the edge appends its own entry) */
#define EDGE_HF_VIA 0x10           /* Via (likewise) */

/* The EDGE_HF_* classes of field h among all n (hop-by-hop ones by name or named in Connection). */
uint8_t edge_obj_hdr_flags(const struct edge_hdr *all, size_t n, const struct edge_hdr *h);

struct edge_obj {
    uint32_t magic;
    int refs;                 /* atomic */
    int status;
    int64_t request_time;
    struct edge_fresh fresh;
    char *key;                /* full key: primary [+ "\n" + Vary key] */
    size_t key_len, pkey_len; /* pkey_len: length of the primary key prefix */
    uint64_t id;              /* edge_key_id of key, computed once (a miss hashed it ~10 times) */
    char *vary;               /* normalised Vary list ("" if none) */
    size_t vary_len;
    char *tags;               /* Surrogate-Key tags, space-separated ("" if none) */
    size_t tags_len;
    struct edge_hdr *hdrs;    /* stored headers (hop-by-hop, Set-Cookie already removed) */
    size_t nhdrs;
    const char **lnames;      /* lnames[i]: hdrs[i].name in lower case (what h2o wants) */
    uint8_t *hflags;          /* hflags[i]: EDGE_HF_* of hdrs[i] */
    uint8_t hf_all;           /* OR of hflags */
    char date[30];            /* the Date a client sees (edge_date_pick: the stored one, or when
                               * there is none, fresh.response_time); not serialized */
    uint8_t *body;            /* NULL until attached */
    void *body_block;         /* when set, body points inside it and it is what gets freed (a
                               * record read whole from the body log) */
    size_t body_len;
    uint64_t body_hash; /* XXH3-64 of the body, checked when the body is read back */
    char *arena;
};

/* Builds an object from a response. Hop-by-hop headers (and those named by Connection),
 * Set-Cookie and Surrogate-Key are not stored; Surrogate-Key becomes the tags. body may be NULL
 * (attach later). */
struct edge_obj *edge_obj_new(const char *key, size_t key_len, size_t pkey_len, int status,
                              const struct edge_hdr *h, size_t n, const char *vary, size_t vary_len,
                              const struct edge_fresh *fresh, int64_t request_time);
/* Takes ownership of body (malloc'd) and records its CRC. */
void edge_obj_set_body(struct edge_obj *o, uint8_t *body, size_t len);
/* RFC 9111 3.2/4.3.4: a copy whose headers are updated from a 304 (every field of the 304
 * replaces all stored fields of that name, except hop-by-hop ones and those that describe the
 * stored body: Content-Length, Content-Encoding, Content-Range, Content-MD5, digests), sharing
 * nothing with o; the body is copied. fresh is the new timing. The caller checks first that the
 * 304 is about o (edge_304_selects). */
/* RFC 9111 4.3.4: does a 304 with headers h select o for freshening? Not when both carry an ETag
 * and the entity-tags differ (weak comparison): the 304 is about another representation. */
int edge_obj_304_selects(const struct edge_obj *o, const struct edge_hdr *h, size_t n);
struct edge_obj *edge_obj_merge_304(const struct edge_obj *o, const struct edge_hdr *h, size_t n,
                                    const struct edge_fresh *fresh, int64_t request_time);

/* The id of a key (never 0): the tiers' and tables' key. */
uint64_t edge_key_id(const char *key, size_t key_len);

struct edge_obj *edge_obj_ref(struct edge_obj *o);
void edge_obj_release(struct edge_obj *o);

/* Serialization of everything but the body. Returns a malloc'd buffer (*len set) or NULL. */
uint8_t *edge_obj_encode(const struct edge_obj *o, size_t *len);
/* Parses a meta value; NULL on any inconsistency (errstr set to a static reason). */
struct edge_obj *edge_obj_decode(const uint8_t *buf, size_t len, const char **errstr);
/* Attaches a body read from storage: copies it after checking length and CRC. -1 on mismatch. */
int edge_obj_attach_body(struct edge_obj *o, const void *body, size_t len);

/* Like attach, without the copy: body lies inside block (malloc'd), which o takes over whatever
 * the result (freed at once on a mismatch). */
int edge_obj_adopt_body(struct edge_obj *o, void *block, const void *body, size_t len);

uint32_t edge_crc32(const void *p, size_t n);
/* XXH3-64 of a body: 10-20x quicker than zlib's CRC-32 on a 60 KiB image, which cost 12% of a
 * RocksDB-tier hit and as much on every stored miss */
uint64_t edge_body_hash(const void *p, size_t n);
/* The first header of that name in the object, or NULL. */
const struct edge_hdr *edge_obj_hdr(const struct edge_obj *o, const char *name);

#endif
