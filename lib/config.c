/* lib/config.c - YAML configuration: libyaml events -> a node tree in an arena -> schema decoding.
 *
 * Rules:
 * - Everything a cdn_conf_t hands out (nodes, scalar text, decoded strings, lists) lives in its
 *   arena and dies with cdn_conf_free(). Nothing is freed piecemeal.
 * - Input is untrusted: the document is capped (CONF_MAX_BYTES), nesting (CONF_MAX_DEPTH) and node
 *   count (CONF_MAX_NODES) are bounded, anchors/aliases are refused (no billion laughs), keys must
 *   be scalars and unique, scalars may not contain NUL. Errors never abort: they fill
 *   cdn_conf_err_t with "file:line:col: message" (line/col from 1) and return.
 * - The tree builder is iterative (an explicit stack), so deep input cannot blow the C stack.
 * - Decoding (cdn_conf_decode) writes only the fields present; a null value ("key:" or "key: ~")
 *   counts as absent, except that a MAP entry with a null value still makes an element.
 * Why one file of 1.1k lines: the arena, the tree and the decoder share one set of limits and one
 * error form (file:line:col), and the fuzz harness (tests/fuzz/fuzz_config.c) covers the whole
 * path from bytes to decoded fields through this one unit. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "cdn/config.h"

#if defined(__GNUC__) && !defined(__clang__)
#define TRUNCATION_OK_BEGIN _Pragma("GCC diagnostic push") _Pragma("GCC diagnostic ignored \"-Wformat-truncation\"")
#define TRUNCATION_OK_END _Pragma("GCC diagnostic pop")
#else
#define TRUNCATION_OK_BEGIN
#define TRUNCATION_OK_END
#endif

#define CONF_MAX_BYTES (16u << 20)
#define CONF_MAX_DEPTH 64
#define CONF_MAX_NODES (256u << 10)

struct cdn_conf_node {
    enum cdn_conf_kind kind;
    int line, col;
    int plain;                    /* scalar written without quotes (for null detection) */
    const char *str;              /* scalar text, NUL-terminated */
    cdn_conf_node_t **kids;       /* seq: items; map: key0, value0, key1, value1, ... */
    size_t n;                     /* items of a seq, pairs of a map */
};

struct chunk {
    struct chunk *next;
    size_t used, cap;
    max_align_t data[];
};

struct cdn_conf {
    char *name;
    cdn_conf_node_t *root;
    struct chunk *chunks;
};

/* --- arena --- */

void *cdn_conf_alloc(cdn_conf_t *c, size_t size)
{
    const size_t align = sizeof(max_align_t);
    if (c == NULL || size > SIZE_MAX / 2)
        return NULL;
    size = (size + align - 1) / align * align;
    if (size == 0)
        size = align;
    struct chunk *k = c->chunks;
    if (k == NULL || k->cap - k->used < size) {
        size_t cap = size > 16384 ? size : 16384;
        k = malloc(sizeof(*k) + cap);
        if (k == NULL)
            return NULL;
        k->used = 0;
        k->cap = cap;
        /* A big one-off allocation goes behind the current chunk, which keeps filling. */
        if (size > 16384 && c->chunks != NULL) {
            k->next = c->chunks->next;
            c->chunks->next = k;
        } else {
            k->next = c->chunks;
            c->chunks = k;
        }
    }
    void *p = (char *)k->data + k->used;
    k->used += size;
    memset(p, 0, size);
    return p;
}

static char *arena_strndup(cdn_conf_t *c, const char *s, size_t n)
{
    char *p = cdn_conf_alloc(c, n + 1);
    if (p != NULL) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

char *cdn_conf_strdup(cdn_conf_t *c, const char *s)
{
    return s != NULL ? arena_strndup(c, s, strlen(s)) : NULL;
}

void cdn_conf_free(cdn_conf_t *c)
{
    if (c == NULL)
        return;
    for (struct chunk *k = c->chunks, *next; k != NULL; k = next) {
        next = k->next;
        free(k);
    }
    free(c->name);
    free(c);
}

const cdn_conf_node_t *cdn_conf_root(const cdn_conf_t *c)
{
    return c != NULL ? c->root : NULL;
}

const char *cdn_conf_name(const cdn_conf_t *c)
{
    return c != NULL ? c->name : "";
}

/* --- errors --- */

/* Messages are for people: cutting an over-long one at 511 bytes is intended. */
TRUNCATION_OK_BEGIN
static void verr(cdn_conf_err_t *err, const char *file, int line, int col, const char *fmt, va_list ap)
{
    if (err == NULL)
        return;
    snprintf(err->file, sizeof(err->file), "%s", file != NULL ? file : "");
    err->line = line;
    err->col = col;
    char what[sizeof(err->msg)];
    vsnprintf(what, sizeof(what), fmt, ap);
    if (line > 0)
        snprintf(err->msg, sizeof(err->msg), "%s:%d:%d: %s", err->file, line, col, what);
    else
        snprintf(err->msg, sizeof(err->msg), "%s: %s", err->file, what);
}

TRUNCATION_OK_END

static int __attribute__((format(printf, 5, 6)))
fail_at(cdn_conf_err_t *err, const char *file, int line, int col, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verr(err, file, line, col, fmt, ap);
    va_end(ap);
    return -1;
}

int cdn_conf_fail(const cdn_conf_t *c, const cdn_conf_node_t *n, cdn_conf_err_t *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verr(err, cdn_conf_name(c), n != NULL ? n->line : 0, n != NULL ? n->col : 0, fmt, ap);
    va_end(ap);
    return -1;
}

/* What a node is, for "expected X, got Y": a quoted (escaped, shortened) scalar or the kind. */
static const char *describe(const cdn_conf_node_t *n, char *buf, size_t len)
{
    if (n == NULL)
        return "nothing";
    if (n->kind == CDN_CONF_MAP)
        return "a mapping";
    if (n->kind == CDN_CONF_SEQ)
        return "a list";
    if (cdn_conf_is_null(n))
        return "null";
    size_t o = 0;
    buf[o++] = '"';
    const unsigned char *s = (const unsigned char *)n->str;
    size_t i = 0, lim = 48;
    while (lim > 0 && strnlen(n->str, lim + 1) > lim && (s[lim] & 0xc0) == 0x80)
        lim--; /* cut on a UTF-8 character boundary */
    for (; s[i] != '\0' && i < lim && o + 8 < len; i++) {
        if (s[i] == '"' || s[i] == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)s[i];
        } else if (s[i] < 0x20 || s[i] == 0x7f) {
            o += (size_t)snprintf(buf + o, len - o, "\\x%02x", s[i]);
        } else {
            buf[o++] = (char)s[i];
        }
    }
    if (s[i] != '\0' && o + 5 < len) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

#define GOT(n) describe((n), (char[80]){0}, 80)

/* --- loading --- */

struct frame {
    cdn_conf_node_t *node;
    cdn_conf_node_t **kids;  /* malloc'd while open, copied into the arena on close */
    size_t n, cap;
};

struct builder {
    cdn_conf_t *c;
    cdn_conf_err_t *err;
    struct frame stack[CONF_MAX_DEPTH + 1];
    size_t depth;
    size_t nodes;
};

static int oom(struct builder *b)
{
    return fail_at(b->err, b->c->name, 0, 0, "out of memory");
}

static cdn_conf_node_t *new_node(struct builder *b, enum cdn_conf_kind kind, yaml_mark_t m)
{
    if (++b->nodes > CONF_MAX_NODES) {
        fail_at(b->err, b->c->name, (int)m.line + 1, (int)m.column + 1, "more than %u nodes in the document",
                CONF_MAX_NODES);
        return NULL;
    }
    cdn_conf_node_t *n = cdn_conf_alloc(b->c, sizeof(*n));
    if (n == NULL) {
        oom(b);
        return NULL;
    }
    n->kind = kind;
    n->line = m.line + 1 > INT_MAX ? INT_MAX : (int)m.line + 1;
    n->col = m.column + 1 > INT_MAX ? INT_MAX : (int)m.column + 1;
    return n;
}

static int add_kid(struct builder *b, cdn_conf_node_t *n)
{
    if (b->depth == 0) {
        b->c->root = n;
        return 0;
    }
    struct frame *f = &b->stack[b->depth - 1];
    if (f->node->kind == CDN_CONF_MAP && f->n % 2 == 0 && n->kind != CDN_CONF_SCALAR)
        return fail_at(b->err, b->c->name, n->line, n->col, "expected a scalar key, got %s", GOT(n));
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 8;
        cdn_conf_node_t **k = realloc(f->kids, cap * sizeof(*k));
        if (k == NULL)
            return oom(b);
        f->kids = k;
        f->cap = cap;
    }
    f->kids[f->n++] = n;
    return 0;
}

static int cmp_key(const void *a, const void *b)
{
    const cdn_conf_node_t *x = *(cdn_conf_node_t *const *)a, *y = *(cdn_conf_node_t *const *)b;
    int r = strcmp(x->str, y->str);
    if (r != 0)
        return r;
    /* Equal keys: document order, so the first of a run is the original. */
    return x->line != y->line ? (x->line < y->line ? -1 : 1) : (x->col < y->col ? -1 : x->col > y->col);
}

static int before(const cdn_conf_node_t *x, const cdn_conf_node_t *y)
{
    return x->line < y->line || (x->line == y->line && x->col < y->col);
}

/* Sorting a copy of the keys finds duplicates in O(n log n); the one reported is the earliest
 * repeated occurrence in the document. */
static int check_dups(struct builder *b, cdn_conf_node_t *map)
{
    if (map->n < 2)
        return 0;
    cdn_conf_node_t **keys = malloc(map->n * sizeof(*keys));
    if (keys == NULL)
        return oom(b);
    for (size_t i = 0; i < map->n; i++)
        keys[i] = map->kids[2 * i];
    qsort(keys, map->n, sizeof(*keys), cmp_key);
    const cdn_conf_node_t *dup = NULL, *orig = NULL;
    for (size_t i = 1; i < map->n; i++) {
        if (strcmp(keys[i]->str, keys[i - 1]->str) != 0)
            continue;
        if (dup == NULL || before(keys[i], dup)) {
            dup = keys[i];
            size_t j = i - 1;
            while (j > 0 && strcmp(keys[j - 1]->str, keys[i]->str) == 0)
                j--;
            orig = keys[j];
        }
        while (i + 1 < map->n && strcmp(keys[i + 1]->str, keys[i]->str) == 0)
            i++;
    }
    int r = 0;
    if (dup != NULL)
        r = fail_at(b->err, b->c->name, dup->line, dup->col, "duplicate key \"%s\" (first at line %d, column %d)",
                    dup->str, orig->line, orig->col);
    free(keys);
    return r;
}

static int open_node(struct builder *b, enum cdn_conf_kind kind, yaml_mark_t m)
{
    if (b->depth >= CONF_MAX_DEPTH)
        return fail_at(b->err, b->c->name, (int)m.line + 1, (int)m.column + 1, "nesting deeper than %d levels",
                       CONF_MAX_DEPTH);
    cdn_conf_node_t *n = new_node(b, kind, m);
    if (n == NULL)
        return -1;
    if (add_kid(b, n) != 0)
        return -1;
    b->stack[b->depth++] = (struct frame){n, NULL, 0, 0};
    return 0;
}

static int close_node(struct builder *b)
{
    struct frame *f = &b->stack[b->depth - 1];
    cdn_conf_node_t *n = f->node;
    if (f->n > 0) {
        n->kids = cdn_conf_alloc(b->c, f->n * sizeof(*n->kids));
        if (n->kids == NULL)
            return oom(b);
        memcpy(n->kids, f->kids, f->n * sizeof(*n->kids));
    }
    n->n = n->kind == CDN_CONF_MAP ? f->n / 2 : f->n;
    free(f->kids);
    f->kids = NULL;
    b->depth--;
    return n->kind == CDN_CONF_MAP ? check_dups(b, n) : 0;
}

/* libyaml reports reader errors (bad UTF-8, control characters) as a byte offset. */
static void offset_to_pos(const char *text, size_t len, size_t off, int *line, int *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off && i < len; i++) {
        if (text[i] == '\n') {
            ++*line;
            *col = 1;
        } else if (((unsigned char)text[i] & 0xc0) != 0x80) {
            ++*col;
        }
    }
}

static int syntax_error(struct builder *b, const yaml_parser_t *p, const char *text, size_t len)
{
    int line, col;
    const char *problem = p->problem != NULL ? p->problem : "unknown error";
    if (p->error == YAML_MEMORY_ERROR)
        return oom(b);
    if (p->error == YAML_READER_ERROR) {
        offset_to_pos(text, len, p->problem_offset, &line, &col);
        if (p->problem_value != -1)
            return fail_at(b->err, b->c->name, line, col, "YAML: %s (#%X)", problem, (unsigned)p->problem_value);
        return fail_at(b->err, b->c->name, line, col, "YAML: %s", problem);
    }
    line = (int)p->problem_mark.line + 1;
    col = (int)p->problem_mark.column + 1;
    if (p->context != NULL)
        return fail_at(b->err, b->c->name, line, col, "YAML: %s %s at line %d, column %d", problem, p->context,
                       (int)p->context_mark.line + 1, (int)p->context_mark.column + 1);
    return fail_at(b->err, b->c->name, line, col, "YAML: %s", problem);
}

static int build(struct builder *b, yaml_parser_t *p, const char *text, size_t len)
{
    int docs = 0;
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(p, &ev))
            return syntax_error(b, p, text, len);
        yaml_mark_t m = ev.start_mark;
        int line = (int)m.line + 1, col = (int)m.column + 1;
        int r = 0;
        const yaml_char_t *anchor = NULL;
        switch (ev.type) {
        case YAML_SCALAR_EVENT:
            anchor = ev.data.scalar.anchor;
            break;
        case YAML_SEQUENCE_START_EVENT:
            anchor = ev.data.sequence_start.anchor;
            break;
        case YAML_MAPPING_START_EVENT:
            anchor = ev.data.mapping_start.anchor;
            break;
        default:
            break;
        }
        if (anchor != NULL || ev.type == YAML_ALIAS_EVENT) {
            r = fail_at(b->err, b->c->name, line, col, "anchors and aliases are not allowed");
        } else {
            switch (ev.type) {
            case YAML_DOCUMENT_START_EVENT:
                if (++docs > 1)
                    r = fail_at(b->err, b->c->name, line, col, "expected a single YAML document");
                break;
            case YAML_SCALAR_EVENT: {
                const char *v = (const char *)ev.data.scalar.value;
                size_t vlen = ev.data.scalar.length;
                cdn_conf_node_t *n;
                if (memchr(v, '\0', vlen) != NULL)
                    r = fail_at(b->err, b->c->name, line, col, "NUL character in a scalar");
                else if ((n = new_node(b, CDN_CONF_SCALAR, m)) == NULL)
                    r = -1;
                else if ((n->str = arena_strndup(b->c, v, vlen)) == NULL)
                    r = oom(b);
                else {
                    n->plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
                    r = add_kid(b, n);
                }
                break;
            }
            case YAML_SEQUENCE_START_EVENT:
                r = open_node(b, CDN_CONF_SEQ, m);
                break;
            case YAML_MAPPING_START_EVENT:
                r = open_node(b, CDN_CONF_MAP, m);
                break;
            case YAML_SEQUENCE_END_EVENT:
            case YAML_MAPPING_END_EVENT:
                r = close_node(b);
                break;
            case YAML_STREAM_END_EVENT:
                yaml_event_delete(&ev);
                return 0;
            default:
                break;
            }
        }
        yaml_event_delete(&ev);
        if (r != 0)
            return r;
    }
}

cdn_conf_t *cdn_conf_load_string(const char *name, const char *text, size_t len, cdn_conf_err_t *err)
{
    if (name == NULL)
        name = "<string>";
    if (text == NULL)
        len = 0;
    if (len > CONF_MAX_BYTES) {
        fail_at(err, name, 0, 0, "document larger than %u bytes", CONF_MAX_BYTES);
        return NULL;
    }
    cdn_conf_t *c = calloc(1, sizeof(*c));
    if (c == NULL || (c->name = strdup(name)) == NULL) {
        free(c);
        fail_at(err, name, 0, 0, "out of memory");
        return NULL;
    }
    struct builder b = {.c = c, .err = err};
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) {
        cdn_conf_free(c);
        fail_at(err, name, 0, 0, "out of memory");
        return NULL;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)(text != NULL ? text : ""), len);
    int r = build(&b, &p, text, len);
    yaml_parser_delete(&p);
    while (b.depth > 0)
        free(b.stack[--b.depth].kids);
    if (r == 0 && (c->root == NULL || (c->root->kind == CDN_CONF_SCALAR && cdn_conf_is_null(c->root)))) {
        /* An empty file is an empty mapping: every key takes its default. */
        int line = c->root != NULL ? c->root->line : 1, col = c->root != NULL ? c->root->col : 1;
        if ((c->root = cdn_conf_alloc(c, sizeof(*c->root))) == NULL) {
            r = fail_at(err, name, 0, 0, "out of memory");
        } else {
            c->root->kind = CDN_CONF_MAP;
            c->root->line = line;
            c->root->col = col;
        }
    }
    if (r == 0 && c->root->kind != CDN_CONF_MAP)
        r = cdn_conf_fail(c, c->root, err, "expected a mapping at the top level, got %s", GOT(c->root));
    if (r != 0) {
        cdn_conf_free(c);
        return NULL;
    }
    return c;
}

cdn_conf_t *cdn_conf_load_file(const char *path, cdn_conf_err_t *err)
{
    if (path == NULL)
        path = "";
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fail_at(err, path, 0, 0, "%s", strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        close(fd);
        fail_at(err, path, 0, 0, "%s", strerror(EISDIR));
        return NULL;
    }
    /* Read up to the cap + 1 so "too large" is detected without trusting st_size (pipes). */
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    while (buf != NULL) {
        if (len == cap) {
            if (cap > CONF_MAX_BYTES)
                break;
            char *nb = realloc(buf, cap * 2);
            if (nb == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            free(buf);
            fail_at(err, path, 0, 0, "read: %s", strerror(e));
            return NULL;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    if (buf == NULL) {
        fail_at(err, path, 0, 0, "out of memory");
        return NULL;
    }
    cdn_conf_t *c = cdn_conf_load_string(path, buf, len, err);
    free(buf);
    return c;
}

/* --- node API --- */

enum cdn_conf_kind cdn_conf_kind(const cdn_conf_node_t *n)
{
    return n != NULL ? n->kind : CDN_CONF_SCALAR;
}

int cdn_conf_line(const cdn_conf_node_t *n)
{
    return n != NULL ? n->line : 0;
}

int cdn_conf_col(const cdn_conf_node_t *n)
{
    return n != NULL ? n->col : 0;
}

const char *cdn_conf_scalar(const cdn_conf_node_t *n)
{
    return n != NULL && n->kind == CDN_CONF_SCALAR ? n->str : NULL;
}

int cdn_conf_is_null(const cdn_conf_node_t *n)
{
    if (n == NULL || n->kind != CDN_CONF_SCALAR || !n->plain)
        return 0;
    const char *s = n->str;
    return s[0] == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 ||
           strcmp(s, "NULL") == 0;
}

size_t cdn_conf_len(const cdn_conf_node_t *n)
{
    return n != NULL && n->kind != CDN_CONF_SCALAR ? n->n : 0;
}

const cdn_conf_node_t *cdn_conf_item(const cdn_conf_node_t *seq, size_t i)
{
    return seq != NULL && seq->kind == CDN_CONF_SEQ && i < seq->n ? seq->kids[i] : NULL;
}

const cdn_conf_node_t *cdn_conf_key(const cdn_conf_node_t *map, size_t i)
{
    return map != NULL && map->kind == CDN_CONF_MAP && i < map->n ? map->kids[2 * i] : NULL;
}

const cdn_conf_node_t *cdn_conf_value(const cdn_conf_node_t *map, size_t i)
{
    return map != NULL && map->kind == CDN_CONF_MAP && i < map->n ? map->kids[2 * i + 1] : NULL;
}

const cdn_conf_node_t *cdn_conf_get(const cdn_conf_node_t *map, const char *key)
{
    if (map == NULL || map->kind != CDN_CONF_MAP || key == NULL)
        return NULL;
    for (size_t i = 0; i < map->n; i++)
        if (strcmp(map->kids[2 * i]->str, key) == 0)
            return map->kids[2 * i + 1];
    return NULL;
}

/* --- scalar syntax (usable without a config) --- */

static int parse_ll(const char *s, long long *out)
{
    const char *p = s;
    int neg = 0;
    if (*p == '+' || *p == '-')
        neg = *p++ == '-';
    if (*p < '0' || *p > '9')
        return -1;
    unsigned long long v = 0, lim = neg ? (unsigned long long)LLONG_MAX + 1 : (unsigned long long)LLONG_MAX;
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (lim - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    if (*p != '\0')
        return -1;
    *out = neg ? (long long)(0 - v) : (long long)v;
    return 0;
}

/* "12" or "1.25": integer part and fraction as num/den (den a power of 10, at most 1e9). */
static const char *parse_decimal(const char *p, uint64_t *ip, uint64_t *fnum, uint64_t *fden)
{
    if (*p < '0' || *p > '9')
        return NULL;
    uint64_t v = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        uint64_t d = (uint64_t)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return NULL;
        v = v * 10 + d;
    }
    *ip = v;
    *fnum = 0;
    *fden = 1;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            return NULL;
        for (; *p >= '0' && *p <= '9'; p++) {
            if (*fden < 1000000000) { /* further digits cannot matter at ms/byte resolution */
                *fnum = *fnum * 10 + (uint64_t)(*p - '0');
                *fden *= 10;
            }
        }
    }
    return p;
}

/* ip.fnum/fden * mult, truncated; -1 on overflow. */
static int scale(uint64_t ip, uint64_t fnum, uint64_t fden, uint64_t mult, uint64_t *out)
{
    uint64_t a;
    if (__builtin_mul_overflow(ip, mult, &a))
        return -1;
    /* fnum < fden <= 1e9 and mult < 2^44 for our units: fnum * mult fits. */
    uint64_t f = (uint64_t)((unsigned __int128)fnum * mult / fden);
    return __builtin_add_overflow(a, f, out) ? -1 : 0;
}

int cdn_parse_duration_ms(const char *s, uint64_t *out)
{
    if (s == NULL || *s == '\0')
        return -1;
    static const struct {
        const char *u;
        uint64_t ms;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
    uint64_t total = 0;
    const char *p = s;
    int parts = 0;
    while (*p != '\0') {
        uint64_t ip, fnum, fden, v;
        const char *q = parse_decimal(p, &ip, &fnum, &fden);
        if (q == NULL)
            return -1;
        size_t u = 0;
        if (*q == '\0' && parts == 0) { /* a bare number is seconds */
            u = 1;
        } else {
            for (; u < sizeof(units) / sizeof(units[0]); u++) {
                size_t ul = strlen(units[u].u);
                if (strncmp(q, units[u].u, ul) == 0 && !(q[ul] >= 'a' && q[ul] <= 'z'))
                    break;
            }
            if (u == sizeof(units) / sizeof(units[0]))
                return -1;
            q += strlen(units[u].u);
        }
        if (scale(ip, fnum, fden, units[u].ms, &v) != 0 || __builtin_add_overflow(total, v, &total))
            return -1;
        p = q;
        parts++;
    }
    *out = total;
    return 0;
}

int cdn_parse_size(const char *s, uint64_t *out)
{
    if (s == NULL)
        return -1;
    uint64_t ip, fnum, fden;
    const char *p = parse_decimal(s, &ip, &fnum, &fden);
    if (p == NULL)
        return -1;
    if (*p == ' ')
        p++;
    uint64_t mult = 1;
    if (*p != '\0') {
        static const char letters[] = "kmgt";
        const char *l = strchr(letters, *p | 0x20);
        if (l != NULL && *p != '\0') {
            mult = 1024;
            for (const char *x = letters; x < l; x++)
                mult *= 1024;
            p++;
            if ((*p | 0x20) == 'i' && (p[1] | 0x20) == 'b')
                p += 2;
            else if ((*p | 0x20) == 'b')
                p++;
        } else if ((*p | 0x20) == 'b') {
            p++;
        }
        if (*p != '\0')
            return -1;
    }
    if (mult == 1 && fnum != 0)
        return -1; /* a fraction of a byte */
    return scale(ip, fnum, fden, mult, out);
}

static int parse_port(const char *s, size_t n, unsigned *port)
{
    if (n == 0 || n > 5)
        return -1;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > 65535)
        return -1;
    *port = v;
    return 0;
}

static int make_addr(const char *host, size_t hlen, unsigned port, int v6only, struct sockaddr_storage *out,
                     socklen_t *outlen)
{
    char h[64];
    if (hlen >= sizeof(h))
        return -1;
    memcpy(h, host, hlen);
    h[hlen] = '\0';
    if (strcmp(h, "*") == 0)
        strcpy(h, "0.0.0.0");
    else if (strcmp(h, "localhost") == 0)
        strcpy(h, "127.0.0.1");
    memset(out, 0, sizeof(*out));
    struct sockaddr_in *sin = (struct sockaddr_in *)out;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)out;
    if (!v6only && inet_pton(AF_INET, h, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        *outlen = sizeof(*sin);
        return 0;
    }
    if (inet_pton(AF_INET6, h, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        *outlen = sizeof(*sin6);
        return 0;
    }
    return -1;
}

int cdn_parse_addr(const char *s, const char *default_host, struct sockaddr_storage *out, socklen_t *outlen)
{
    if (s == NULL || out == NULL || outlen == NULL)
        return -1;
    unsigned port;
    size_t len = strlen(s);
    if (s[0] == '[') { /* [v6]:port */
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':' || parse_port(close + 2, strlen(close + 2), &port) != 0)
            return -1;
        return make_addr(s + 1, (size_t)(close - s - 1), port, 1, out, outlen);
    }
    const char *colon = strchr(s, ':');
    if (colon == NULL) { /* a bare port */
        if (parse_port(s, len, &port) != 0)
            return -1;
        const char *h = default_host != NULL ? default_host : "0.0.0.0";
        return make_addr(h, strlen(h), port, 0, out, outlen);
    }
    if (strchr(colon + 1, ':') != NULL || colon == s)
        return -1; /* an IPv6 literal needs brackets; ":80" has no host */
    if (parse_port(colon + 1, strlen(colon + 1), &port) != 0)
        return -1;
    return make_addr(s, (size_t)(colon - s), port, 0, out, outlen);
}

/* --- typed scalar readers --- */

int cdn_conf_str(const cdn_conf_t *c, const cdn_conf_node_t *n, const char **out, cdn_conf_err_t *err)
{
    if (n == NULL || n->kind != CDN_CONF_SCALAR)
        return cdn_conf_fail(c, n, err, "expected a scalar, got %s", GOT(n));
    *out = n->str;
    return 0;
}

int cdn_conf_int(const cdn_conf_t *c, const cdn_conf_node_t *n, long long min, long long max, long long *out,
                 cdn_conf_err_t *err)
{
    long long v;
    if (n == NULL || n->kind != CDN_CONF_SCALAR || parse_ll(n->str, &v) != 0 || v < min || v > max) {
        if (min == LLONG_MIN && max == LLONG_MAX)
            return cdn_conf_fail(c, n, err, "expected an integer, got %s", GOT(n));
        return cdn_conf_fail(c, n, err, "expected an integer from %lld to %lld, got %s", min, max, GOT(n));
    }
    *out = v;
    return 0;
}

int cdn_conf_double(const cdn_conf_t *c, const cdn_conf_node_t *n, double min, double max, double *out,
                    cdn_conf_err_t *err)
{
    int ok = n != NULL && n->kind == CDN_CONF_SCALAR && n->str[0] != '\0' &&
             strspn(n->str, "0123456789+-.eE") == strlen(n->str);
    double v = 0;
    if (ok) {
        char *end;
        errno = 0;
        v = strtod(n->str, &end);
        ok = *end == '\0' && errno != ERANGE && v >= min && v <= max;
    }
    if (!ok) {
        if (min == -DBL_MAX && max == DBL_MAX)
            return cdn_conf_fail(c, n, err, "expected a number, got %s", GOT(n));
        return cdn_conf_fail(c, n, err, "expected a number from %g to %g, got %s", min, max, GOT(n));
    }
    *out = v;
    return 0;
}

int cdn_conf_bool(const cdn_conf_t *c, const cdn_conf_node_t *n, int *out, cdn_conf_err_t *err)
{
    static const char *const yes[] = {"true", "yes", "on"}, *const no[] = {"false", "no", "off"};
    if (n != NULL && n->kind == CDN_CONF_SCALAR) {
        for (size_t i = 0; i < 3; i++) {
            if (strcasecmp(n->str, yes[i]) == 0) {
                *out = 1;
                return 0;
            }
            if (strcasecmp(n->str, no[i]) == 0) {
                *out = 0;
                return 0;
            }
        }
    }
    return cdn_conf_fail(c, n, err, "expected a boolean (true, false, yes, no, on, off), got %s", GOT(n));
}

int cdn_conf_duration_ms(const cdn_conf_t *c, const cdn_conf_node_t *n, uint64_t *out, cdn_conf_err_t *err)
{
    if (n == NULL || n->kind != CDN_CONF_SCALAR || cdn_parse_duration_ms(n->str, out) != 0)
        return cdn_conf_fail(c, n, err, "expected a duration (like 250ms, 10s, 2m, 1h, 1d, 1m30s), got %s", GOT(n));
    return 0;
}

int cdn_conf_size(const cdn_conf_t *c, const cdn_conf_node_t *n, uint64_t *out, cdn_conf_err_t *err)
{
    if (n == NULL || n->kind != CDN_CONF_SCALAR || cdn_parse_size(n->str, out) != 0)
        return cdn_conf_fail(c, n, err, "expected a size (like 512, 64k, 64KiB, 10MB, 1g), got %s", GOT(n));
    return 0;
}

int cdn_conf_addr(const cdn_conf_t *c, const cdn_conf_node_t *n, const char *default_host,
                  struct sockaddr_storage *out, socklen_t *outlen, cdn_conf_err_t *err)
{
    if (n == NULL || n->kind != CDN_CONF_SCALAR || cdn_parse_addr(n->str, default_host, out, outlen) != 0)
        return cdn_conf_fail(c, n, err, "expected an address (like 127.0.0.1:8080, [::1]:53 or a port), got %s",
                             GOT(n));
    return 0;
}

/* --- schema decoding --- */

static int decode_map(cdn_conf_t *c, const cdn_conf_node_t *n, const cdn_conf_field_t *fields, void *out,
                      cdn_conf_err_t *err);

/* "a, b, c" of the field keys or enum names, for messages. */
static const char *join(const char *const *names, size_t stride, char *buf, size_t len)
{
    size_t o = 0;
    buf[0] = '\0';
    for (const char *const *p = names; *p != NULL; p = (const char *const *)((const char *)p + stride)) {
        int w = snprintf(buf + o, len - o, "%s%s", o ? ", " : "", *p);
        if (w < 0 || (size_t)w >= len - o) {
            if (len > 4)
                strcpy(buf + len - 4, "...");
            break;
        }
        o += (size_t)w;
    }
    return buf;
}

static void *elem(void *base, size_t i, size_t size)
{
    return (char *)base + i * size;
}

static int decode_list(cdn_conf_t *c, const cdn_conf_node_t *v, const cdn_conf_field_t *f, void *dst,
                       cdn_conf_err_t *err)
{
    struct cdn_conf_list *l = dst;
    int strs = f->type == CDN_CT_STRLIST;
    if (f->type == CDN_CT_MAP ? v->kind != CDN_CONF_MAP : v->kind != CDN_CONF_SEQ)
        return cdn_conf_fail(c, v, err, "expected %s, got %s", f->type == CDN_CT_MAP ? "a mapping" : "a list",
                             GOT(v));
    size_t size = strs ? sizeof(const char *) : f->sub_size;
    if (size == 0 || (!strs && f->sub == NULL))
        return cdn_conf_fail(c, v, err, "internal: field \"%s\" has no element schema", f->key);
    void *items = NULL;
    if (v->n > 0) {
        if (v->n > SIZE_MAX / size || (items = cdn_conf_alloc(c, v->n * size)) == NULL)
            return cdn_conf_fail(c, v, err, "out of memory");
    }
    for (size_t i = 0; i < v->n; i++) {
        void *e = elem(items, i, size);
        if (strs) {
            const cdn_conf_node_t *it = v->kids[i];
            if (it->kind != CDN_CONF_SCALAR)
                return cdn_conf_fail(c, it, err, "%s: expected a scalar, got %s", f->key, GOT(it));
            *(const char **)e = it->str;
            continue;
        }
        if (f->sub_defaults != NULL)
            memcpy(e, f->sub_defaults, size);
        const cdn_conf_node_t *it = f->type == CDN_CT_MAP ? v->kids[2 * i + 1] : v->kids[i];
        if (f->type == CDN_CT_MAP)
            *(const char **)e = v->kids[2 * i]->str;
        if (decode_map(c, it, f->sub, e, err) != 0)
            return -1;
    }
    l->items = items;
    l->n = v->n;
    return 0;
}

static int decode_field(cdn_conf_t *c, const cdn_conf_node_t *v, const cdn_conf_field_t *f, void *out,
                        cdn_conf_err_t *err)
{
    void *dst = (char *)out + f->off;
    switch (f->type) {
    case CDN_CT_STR:
        if (v->kind != CDN_CONF_SCALAR)
            return cdn_conf_fail(c, v, err, "expected a scalar, got %s", GOT(v));
        *(const char **)dst = v->str;
        return 0;
    case CDN_CT_INT:
    case CDN_CT_UINT: {
        long long min = f->min, max = f->max, x;
        if (min == 0 && max == 0) {
            min = f->type == CDN_CT_INT ? LLONG_MIN : 0;
            max = f->type == CDN_CT_INT ? LLONG_MAX : UINT_MAX;
        }
        if (f->type == CDN_CT_UINT) {
            min = min < 0 ? 0 : min;
            max = max > (long long)UINT_MAX ? (long long)UINT_MAX : max;
        }
        if (cdn_conf_int(c, v, min, max, &x, err) != 0)
            return -1;
        if (f->type == CDN_CT_INT)
            *(long long *)dst = x;
        else
            *(unsigned *)dst = (unsigned)x;
        return 0;
    }
    case CDN_CT_DOUBLE: {
        double min = f->dmin, max = f->dmax;
        if (min == 0 && max == 0) {
            min = -DBL_MAX;
            max = DBL_MAX;
        }
        return cdn_conf_double(c, v, min, max, dst, err);
    }
    case CDN_CT_BOOL:
        return cdn_conf_bool(c, v, dst, err);
    case CDN_CT_DURATION:
        return cdn_conf_duration_ms(c, v, dst, err);
    case CDN_CT_SIZE:
        return cdn_conf_size(c, v, dst, err);
    case CDN_CT_ADDR: {
        struct cdn_conf_addr *a = dst;
        if (cdn_conf_addr(c, v, f->addr_default_host, &a->ss, &a->len, err) != 0)
            return -1;
        a->text = v->str;
        return 0;
    }
    case CDN_CT_ENUM:
        if (f->enum_names == NULL)
            return cdn_conf_fail(c, v, err, "internal: field \"%s\" has no enum names", f->key);
        if (v->kind == CDN_CONF_SCALAR && (*(int *)dst = cdn_conf_enum_index(f->enum_names, v->str)) >= 0)
            return 0;
        return cdn_conf_fail(c, v, err, "expected one of: %s; got %s",
                             join(f->enum_names, sizeof(char *), (char[256]){0}, 256), GOT(v));
    case CDN_CT_STRUCT:
        if (f->sub == NULL)
            return cdn_conf_fail(c, v, err, "internal: field \"%s\" has no sub-schema", f->key);
        return decode_map(c, v, f->sub, dst, err);
    case CDN_CT_LIST:
    case CDN_CT_STRLIST:
    case CDN_CT_MAP:
        return decode_list(c, v, f, dst, err);
    case CDN_CT_CUSTOM:
        if (f->custom == NULL)
            return cdn_conf_fail(c, v, err, "internal: field \"%s\" has no decoder", f->key);
        return f->custom(c, v, dst, err);
    }
    return cdn_conf_fail(c, v, err, "internal: field \"%s\" has an unknown type", f->key);
}

TRUNCATION_OK_BEGIN
/* An error found at the value itself gets the key in front: "port: expected an integer ...". */
static void name_key(cdn_conf_err_t *err, const cdn_conf_node_t *v, const char *key)
{
    if (err == NULL || err->line != v->line || err->col != v->col)
        return;
    int pre = snprintf(NULL, 0, "%s:%d:%d: ", err->file, err->line, err->col);
    if (pre < 0 || (size_t)pre >= sizeof(err->msg))
        return;
    char what[sizeof(err->msg)];
    snprintf(what, sizeof(what), "%s", err->msg + pre);
    snprintf(err->msg + pre, sizeof(err->msg) - (size_t)pre, "%s: %s", key, what);
}
TRUNCATION_OK_END

static int decode_map(cdn_conf_t *c, const cdn_conf_node_t *n, const cdn_conf_field_t *fields, void *out,
                      cdn_conf_err_t *err)
{
    if (n == NULL || (n->kind != CDN_CONF_MAP && !cdn_conf_is_null(n)))
        return cdn_conf_fail(c, n, err, "expected a mapping, got %s", GOT(n));
    /* A null node is an empty mapping: every field absent. */
    size_t npairs = n->kind == CDN_CONF_MAP ? n->n : 0;
    for (size_t i = 0; i < npairs; i++) {
        const cdn_conf_node_t *k = n->kids[2 * i], *v = n->kids[2 * i + 1];
        const cdn_conf_field_t *f = fields;
        while (f->key != NULL && strcmp(f->key, k->str) != 0)
            f++;
        if (f->key == NULL)
            return cdn_conf_fail(c, k, err, "unknown key \"%s\" (accepted: %s)", k->str,
                                 join(&fields->key, sizeof(*fields), (char[400]){0}, 400));
        if (cdn_conf_is_null(v)) {
            if (f->flags & CDN_CF_REQUIRED)
                return cdn_conf_fail(c, v, err, "%s: a value is required", f->key);
            if (f->type == CDN_CT_STR)
                *(const char **)((char *)out + f->off) = NULL; /* "key: ~" unsets a string */
            continue;                                          /* anything else keeps its default */
        }
        if (decode_field(c, v, f, out, err) != 0) {
            name_key(err, v, f->key);
            return -1;
        }
    }
    for (const cdn_conf_field_t *f = fields; f->key != NULL; f++)
        if ((f->flags & CDN_CF_REQUIRED) && cdn_conf_get(n, f->key) == NULL)
            return cdn_conf_fail(c, n, err, "missing required key \"%s\"", f->key);
    return 0;
}

int cdn_conf_decode(cdn_conf_t *c, const cdn_conf_node_t *n, const cdn_conf_field_t *fields, void *out,
                    cdn_conf_err_t *err)
{
    if (c == NULL || fields == NULL || out == NULL)
        return fail_at(err, cdn_conf_name(c), 0, 0, "internal: nothing to decode");
    return decode_map(c, n, fields, out, err);
}

int cdn_conf_enum_index(const char *const *names, const char *s)
{
    for (int i = 0; names[i] != NULL; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}
