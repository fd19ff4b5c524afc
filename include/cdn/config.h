/* cdn/config.h - YAML configuration read with libyaml into plain structs.
 *
 * Owns: a loaded document (cdn_conf_t) and everything decoded from it. Decoded strings, arrays and
 * sub-structs live in the document's arena and are freed by cdn_conf_free(), so a daemon keeps the
 * cdn_conf_t as long as it uses the structs (on SIGHUP: load the new one, decode, swap, free old).
 *
 * Errors always say where: "file:line:col: what was expected" (lines and columns from 1), the way
 * `nginx -t` does; cdn_conf_err_t carries the parts and the formatted message.
 *
 * Two ways in: the node API (walk the tree yourself) and the schema API (a table of fields decoded
 * into a struct: unknown keys, missing required keys, wrong types and out-of-range values are
 * errors at the offending node). */
#ifndef CDN_CONFIG_H
#define CDN_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct cdn_conf cdn_conf_t;
typedef struct cdn_conf_node cdn_conf_node_t;

typedef struct cdn_conf_err {
    char file[256];
    int line, col;  /* 0 when the error has no position (e.g. file not found) */
    char msg[512];  /* "file:line:col: msg" fully formatted */
} cdn_conf_err_t;

/* Loads a file / a string (name is used in messages). NULL with *err filled on failure: I/O error,
 * YAML syntax error, a document that is not a mapping, anchors/aliases or duplicate keys. */
cdn_conf_t *cdn_conf_load_file(const char *path, cdn_conf_err_t *err);
cdn_conf_t *cdn_conf_load_string(const char *name, const char *text, size_t len, cdn_conf_err_t *err);
void cdn_conf_free(cdn_conf_t *c);
const cdn_conf_node_t *cdn_conf_root(const cdn_conf_t *c);
const char *cdn_conf_name(const cdn_conf_t *c);
/* Memory in the document's arena (zeroed), freed with it. */
void *cdn_conf_alloc(cdn_conf_t *c, size_t size);
char *cdn_conf_strdup(cdn_conf_t *c, const char *s);

/* --- node API --- */
enum cdn_conf_kind { CDN_CONF_SCALAR, CDN_CONF_MAP, CDN_CONF_SEQ };
enum cdn_conf_kind cdn_conf_kind(const cdn_conf_node_t *n);
int cdn_conf_line(const cdn_conf_node_t *n);
int cdn_conf_col(const cdn_conf_node_t *n);
const char *cdn_conf_scalar(const cdn_conf_node_t *n);       /* NULL unless a scalar */
int cdn_conf_is_null(const cdn_conf_node_t *n);                /* ~, null, or empty plain scalar */
size_t cdn_conf_len(const cdn_conf_node_t *n);                /* items of a seq, pairs of a map */
const cdn_conf_node_t *cdn_conf_item(const cdn_conf_node_t *seq, size_t i);
const cdn_conf_node_t *cdn_conf_key(const cdn_conf_node_t *map, size_t i); /* key node of pair i */
const cdn_conf_node_t *cdn_conf_value(const cdn_conf_node_t *map, size_t i);
const cdn_conf_node_t *cdn_conf_get(const cdn_conf_node_t *map, const char *key); /* NULL if absent */

/* The index of s in a NULL-terminated list of names (CDN_CT_ENUM's, or a command line option's
 * choices), or -1. */
int cdn_conf_enum_index(const char *const *names, const char *s);

/* Sets *err at node n (printf-style message) and returns -1, for callers' own checks. */
int cdn_conf_fail(const cdn_conf_t *c, const cdn_conf_node_t *n, cdn_conf_err_t *err,
                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Typed scalar readers: 0, or -1 with *err at the node ("expected an integer from 1 to 65535"). */
int cdn_conf_str(const cdn_conf_t *c, const cdn_conf_node_t *n, const char **out, cdn_conf_err_t *err);
int cdn_conf_int(const cdn_conf_t *c, const cdn_conf_node_t *n, long long min, long long max,
                 long long *out, cdn_conf_err_t *err);
int cdn_conf_double(const cdn_conf_t *c, const cdn_conf_node_t *n, double min, double max,
                    double *out, cdn_conf_err_t *err);
int cdn_conf_bool(const cdn_conf_t *c, const cdn_conf_node_t *n, int *out, cdn_conf_err_t *err);
/* "250ms", "10s", "2m", "1h", "1d"; a bare number is seconds. */
int cdn_conf_duration_ms(const cdn_conf_t *c, const cdn_conf_node_t *n, uint64_t *out, cdn_conf_err_t *err);
/* "512", "64k", "64KiB", "10MB", "1g", "1GiB" (k/m/g are powers of 1024). */
int cdn_conf_size(const cdn_conf_t *c, const cdn_conf_node_t *n, uint64_t *out, cdn_conf_err_t *err);
/* "127.0.0.1:8080", "[::1]:53", "8080" (= 0.0.0.0:8080 unless default_host given). */
int cdn_conf_addr(const cdn_conf_t *c, const cdn_conf_node_t *n, const char *default_host,
                  struct sockaddr_storage *out, socklen_t *outlen, cdn_conf_err_t *err);
/* Parses an address string outside any config (command-line -a ADDR:PORT). 0 or -1. */
int cdn_parse_addr(const char *s, const char *default_host, struct sockaddr_storage *out, socklen_t *outlen);
int cdn_parse_duration_ms(const char *s, uint64_t *out);
int cdn_parse_size(const char *s, uint64_t *out);

/* --- schema API --- */
enum cdn_conf_type {
    CDN_CT_STR,       /* const char *                                 */
    CDN_CT_INT,       /* long long, within [min, max]                 */
    CDN_CT_UINT,      /* unsigned, within [min, max]                  */
    CDN_CT_DOUBLE,    /* double, within [dmin, dmax]                  */
    CDN_CT_BOOL,      /* int                                          */
    CDN_CT_DURATION,  /* uint64_t milliseconds                        */
    CDN_CT_SIZE,      /* uint64_t bytes                               */
    CDN_CT_ADDR,      /* struct cdn_conf_addr                         */
    CDN_CT_ENUM,      /* int: index into enum_names                   */
    CDN_CT_STRUCT,    /* embedded struct decoded with sub             */
    CDN_CT_LIST,      /* struct cdn_conf_list of sub-structs (sub)    */
    CDN_CT_STRLIST,   /* struct cdn_conf_list of const char *         */
    CDN_CT_MAP,       /* struct cdn_conf_list of sub-structs, one per key; the key goes to the
                         sub-struct's first field, which must be a const char * at offset 0 */
    CDN_CT_CUSTOM,    /* fn(c, node, out + off, err)                  */
};

struct cdn_conf_addr {
    struct sockaddr_storage ss;
    socklen_t len;
    const char *text;  /* as written */
};

struct cdn_conf_list {
    void *items;       /* array of n elements (sub_size bytes each, or const char * for STRLIST) */
    size_t n;
};

#define CDN_CF_REQUIRED 0x1

typedef struct cdn_conf_field {
    const char *key;
    enum cdn_conf_type type;
    size_t off;                          /* offsetof(struct, member) */
    unsigned flags;                      /* CDN_CF_REQUIRED */
    long long min, max;                  /* INT/UINT range (both 0: no limit) */
    double dmin, dmax;                   /* DOUBLE range (both 0: no limit) */
    const char *const *enum_names;       /* ENUM: NULL-terminated */
    const struct cdn_conf_field *sub;    /* STRUCT/LIST/MAP: fields of the element, {NULL}-ended */
    size_t sub_size;                     /* LIST/MAP: sizeof element */
    int (*custom)(cdn_conf_t *c, const cdn_conf_node_t *n, void *out, cdn_conf_err_t *err);
    const char *addr_default_host;       /* ADDR: host used for a bare port */
    const void *sub_defaults;            /* LIST/MAP: an element (sub_size bytes) copied into each
                                            element before decoding it; NULL: zeroed */
} cdn_conf_field_t;

/* Decodes map node n into out using fields (terminated by an entry with key NULL). Fields absent
 * from the map keep what out already holds, so set defaults first. Errors: unknown key (listing
 * the accepted ones), missing required key (at the map), wrong type or range (at the value).
 * A null value ("key:" or "key: ~") counts as absent (a STR field is set to NULL), except that a
 * MAP entry with a null value still makes an element (with sub_defaults). Strings point into the
 * document (the arena), valid until cdn_conf_free(). */
int cdn_conf_decode(cdn_conf_t *c, const cdn_conf_node_t *n, const cdn_conf_field_t *fields,
                    void *out, cdn_conf_err_t *err);

#endif
