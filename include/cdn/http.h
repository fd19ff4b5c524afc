/* cdn/http.h - the one HTTP toolkit every program shares: a keyed hash, reason phrases,
 * HTTP-dates, entity-tag comparison, percent-decoding and the classes of header fields.
 *
 * Owns: the process's secret hash key (16 bytes from getrandom, drawn once, on first use or in
 * cdn_hash_init) and nothing else; every other function is pure and thread-safe.
 *
 * Rules:
 * - Hashing. Two keyed hashes, both SipHash-2-4 (Aumasson and Bernstein, "SipHash: a fast
 *   short-input PRF", 2012). cdn_hash() uses the process's random key: use it for every table
 *   indexed by strings (or ids) that a client, an origin or a peer chooses, so that nobody can
 *   make them pile into one bucket. cdn_hash_fixed() uses a constant, published key: use it only
 *   where the value must be the same in every process and every run (a value stored on disk,
 *   or one that two hosts must agree on), and say at the call site why.
 * - Parsers take (pointer, length), never read past it, never allocate, and answer -1 (or 0)
 *   for anything malformed.
 * - Header field names are compared case-insensitively; values as they are. */
#ifndef CDN_HTTP_H
#define CDN_HTTP_H

#include <stddef.h>
#include <stdint.h>

/* --- hashing --- */

/* Draws the process's hash key now (otherwise the first cdn_hash call does). Idempotent and
 * thread-safe. A daemon calls it before it starts its threads so that no request pays for it. */
void cdn_hash_init(void);
/* SipHash-2-4 of p[0..n) under a 16-byte key. */
uint64_t cdn_siphash24(const uint8_t key[16], const void *p, size_t n);
/* SipHash-2-4 under the process's random key: differs between processes and runs. */
uint64_t cdn_hash(const void *p, size_t n);
/* cdn_hash of the 8 bytes of v (little-endian): the bucket of an id in a table of ids. */
uint64_t cdn_hash_u64(uint64_t v);

/* Number formatting for per-request paths, where printf's format parsing showed in profiles.
 * cdn_fmt_u64: v in decimal at out (at most 20 bytes, no NUL); returns the length.
 * cdn_hex64: v as 16 lowercase hex digits at out (no NUL), most significant first. */
size_t cdn_fmt_u64(char *out, uint64_t v);
void cdn_hex64(char *out, uint64_t v);
/* SipHash-2-4 under the constant key CDN_HASH_FIXED_KEY: the same everywhere, always. Knowing the
 * key, anyone can find inputs that share a bucket: never index a table with it alone. */
uint64_t cdn_hash_fixed(const void *p, size_t n);
#define CDN_HASH_FIXED_KEY "cdn-lab fixed v1" /* 16 bytes; changing it changes every stored id */

/* --- status codes --- */

/* The reason phrase of a status code (RFC 9110 section 15 and the IANA registry), or NULL for a
 * code that has none registered. */
const char *cdn_http_reason(int status);

/* --- HTTP-date (RFC 9110 section 5.6.7) --- */

#define CDN_HTTP_DATE_LEN 29 /* "Sun, 06 Nov 1994 08:49:37 GMT" */
/* Parses an IMF-fixdate, an obsolete RFC 850 date (two-digit year: below 70 is 20xx) or an
 * asctime date, after trimming OWS, into seconds since the epoch. 0, or -1 if it is none of
 * these. Leap second 60 is accepted. Weekday names are not checked against the date. */
int cdn_http_date_parse(const char *s, size_t len, int64_t *t);
/* Formats t as an IMF-fixdate into buf (at least CDN_HTTP_DATE_LEN + 1 bytes); years outside
 * 0..9999 are clamped. Returns buf. */
char *cdn_http_date_fmt(int64_t t, char *buf);

/* --- field values --- */

/* Trims leading and trailing spaces and tabs of (*v, *len). */
void cdn_http_trim_ows(const char **v, size_t *len);
/* The next member of a comma-separated list: from *p (moved past it) to end, OWS trimmed, empty
 * members skipped. 1 with (*tok, *len), 0 at the end of the list. */
int cdn_http_list_next(const char **p, const char *end, const char **tok, size_t *len);
/* 1 if the comma-separated list s[0..len) has the member tok (case-insensitive). */
int cdn_http_list_has(const char *s, size_t len, const char *tok, size_t tlen);

/* --- entity-tags (RFC 9110 section 8.8.3) --- */

/* 1 if the If-None-Match style list (a "*" or entity-tags separated by commas) matches the
 * entity-tag etag[0..el) by the weak comparison: W/ prefixes are ignored on both sides. */
int cdn_etag_match_weak(const char *list, size_t ll, const char *etag, size_t el);
/* 1 if a and b are the same strong entity-tag (neither is W/). */
int cdn_etag_eq_strong(const char *a, size_t al, const char *b, size_t bl);

/* --- percent-encoding (RFC 3986 section 2.1) --- */

/* The value of a hexadecimal digit, or -1. */
int cdn_hexval(int c);
/* 1 for an RFC 3986 unreserved character (ALPHA DIGIT - . _ ~). */
int cdn_url_unreserved(int c);
#define CDN_PCT_PLUS 1 /* '+' decodes to a space (form and query-string values) */
/* Decodes s[0..n) into out (NUL-terminated): each %XX becomes its byte; a '%' not followed by two
 * hex digits is copied as it is. The length, or -1 if out (cap bytes) is too small. */
long cdn_pct_decode(const char *s, size_t n, char *out, size_t cap, unsigned flags);
/* Normalises percent-encodings of s[0..n) into out (RFC 3986 6.2.2.2): an escaped unreserved
 * character is decoded, every other escape has its hex digits uppercased, the rest is copied.
 * The result is never longer than s. Returns its length (out is not NUL-terminated). */
size_t cdn_pct_normalize(const char *s, size_t n, char *out);

/* --- classes of header fields --- */

enum {
    /* hop-by-hop (RFC 9110 7.6.1 and the legacy ones): meaningful on one connection only; a proxy
     * removes them, as well as every field that Connection names */
    CDN_HDR_HOP = 1,
    /* set by each hop for its own message (Content-Length, Expect): a proxy does not copy them
     * from the request it received into the one it sends */
    CDN_HDR_NO_FORWARD = 2,
    /* a shared cache never stores them with a response (Set-Cookie is one user's; Surrogate-Key
     * is read by the cache and kept apart) */
    CDN_HDR_NO_STORE = 4,
    /* request fields origins commonly reflect or act on (X-Forwarded-Host, X-Original-URL,
     * X-HTTP-Method-Override, Forwarded...): a cache must not pass a client's value to an origin
     * whose answer it stores under a key that does not name it */
    CDN_HDR_REFLECTED = 8,
};
/* The CDN_HDR_* flags of the field name[0..len) by itself (0 for an ordinary field). A field
 * that a Connection header names is hop-by-hop too: the caller checks with cdn_http_list_has. */
unsigned cdn_http_hdr_class(const char *name, size_t len);

#endif
