/* yaml_tree.c - the libyaml event pass behind yaml_tree.h: nodes, lines, paths. */
#include "config/yaml_tree.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* A configuration is a few levels deep and its mappings have a dozen keys; these bounds only
 * keep a hostile or broken file from making the pass slow or deep. */
#define YTREE_MAX_DEPTH    64
#define YTREE_MAX_MAP_KEYS 1024

static void set_error(ytree_error_t *err, unsigned line, const ynode_t *at, const char *msg)
{
    err->line = line;
    ytree_path(at, err->path, sizeof(err->path));
    snprintf(err->msg, sizeof(err->msg), "%s", msg);
}

/* Printable rendering of a key for a message: at most 40 bytes, odd bytes as '?'. */
static void key_for_message(const char *key, char *buf, size_t len)
{
    size_t i = 0;

    for (; key[i] && i < 40 && i + 1 < len; i++)
        buf[i] = (key[i] >= 0x20 && key[i] < 0x7f) ? key[i] : '?';
    buf[i] = '\0';
}

/* Adds the key whose value was being read when the parse failed to the error's path. */
static void append_key(ytree_error_t *err, const char *key)
{
    char shown[48];
    size_t off = strlen(err->path);

    if (!key)
        return;
    key_for_message(key, shown, sizeof(shown));
    snprintf(err->path + off, sizeof(err->path) - off, "%s%s", off ? "." : "", shown);
}

static int add_kid(ynode_t *parent, ynode_t *kid)
{
    unsigned n = parent->nkids;

    if (n == 0 || (n >= 4 && (n & (n - 1)) == 0)) {
        /* capacity 4, then doubled whenever it is full */
        unsigned cap = n == 0 ? 4 : n * 2;
        ynode_t **k = realloc(parent->kids, cap * sizeof(*k));
        if (!k)
            return -1;
        parent->kids = k;
    }
    parent->kids[parent->nkids++] = kid;
    kid->parent = parent;
    return 0;
}

static ynode_t *new_node(enum ynode_kind kind, const yaml_event_t *ev)
{
    ynode_t *n = calloc(1, sizeof(*n));

    if (!n)
        return NULL;
    n->kind = kind;
    n->line = (unsigned)ev->start_mark.line + 1;
    if (kind == YNODE_SCALAR) {
        size_t len = ev->data.scalar.length;
        n->text = malloc(len + 1);
        if (!n->text) {
            free(n);
            return NULL;
        }
        memcpy(n->text, ev->data.scalar.value, len);
        n->text[len] = '\0';
        n->text_len = len;
        n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    }
    return n;
}

/* The parser state between events: the open container and, inside a mapping, the key
 * that waits for its value. */
typedef struct builder_s {
    ynode_t *root;
    ynode_t *cur;
    char *key;
    unsigned key_line;
    unsigned depth;
    unsigned docs;
} builder_t;

/* Handles a scalar or the start of a container. Returns 0, or -1 with err set. */
static int on_node(builder_t *b, const yaml_event_t *ev, enum ynode_kind kind, ytree_error_t *err)
{
    unsigned line = (unsigned)ev->start_mark.line + 1;
    ynode_t *n;

    if (b->cur && b->cur->kind == YNODE_MAP && !b->key) {
        if (kind != YNODE_SCALAR) {
            set_error(err, line, b->cur, "mapping keys must be plain text, not a list or mapping");
            return -1;
        }
        for (unsigned i = 0; i < b->cur->nkids; i++) {
            const ynode_t *k = b->cur->kids[i];
            if (strcmp(k->key, (const char *)ev->data.scalar.value) == 0) {
                char msg[64];
                snprintf(msg, sizeof(msg), "appears twice (first on line %u; keep one)", k->line);
                set_error(err, line, b->cur, msg);
                append_key(err, k->key);
                return -1;
            }
        }
        if (b->cur->nkids >= YTREE_MAX_MAP_KEYS) {
            set_error(err, line, b->cur, "too many keys in one mapping");
            return -1;
        }
        b->key = strdup((const char *)ev->data.scalar.value);
        if (!b->key)
            goto oom;
        b->key_line = line;
        return 0;
    }

    if (!b->cur && b->root) {
        set_error(err, line, NULL, "only one YAML document is allowed");
        return -1;
    }
    n = new_node(kind, ev);
    if (!n)
        goto oom;
    if (!b->cur) {
        b->root = n;
    } else {
        if (b->cur->kind == YNODE_MAP) {
            n->key = b->key;
            n->line = b->key_line;
            b->key = NULL;
        } else {
            n->index = b->cur->nkids;
        }
        if (add_kid(b->cur, n) < 0) {
            ytree_free(n);
            goto oom;
        }
    }
    if (kind != YNODE_SCALAR) {
        if (++b->depth > YTREE_MAX_DEPTH) {
            set_error(err, line, n, "nested too deeply");
            return -1;
        }
        b->cur = n;
    }
    return 0;
oom:
    set_error(err, line, b->cur, "out of memory");
    return -1;
}

int ytree_parse(const char *buf, size_t len, ynode_t **root, ytree_error_t *err)
{
    yaml_parser_t parser;
    yaml_event_t ev;
    builder_t b = {0};
    int rc = -1, done = 0;

    *root = NULL;
    memset(err, 0, sizeof(*err));
    if (!yaml_parser_initialize(&parser)) {
        set_error(err, 1, NULL, "out of memory");
        return -1;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);

    while (!done) {
        int bad = 0;
        if (!yaml_parser_parse(&parser, &ev)) {
            char msg[200];
            unsigned line = (unsigned)parser.problem_mark.line + 1;
            snprintf(msg, sizeof(msg), "YAML syntax error: %s%s%s",
                     parser.problem ? parser.problem : "unreadable input",
                     parser.context ? " " : "", parser.context ? parser.context : "");
            set_error(err, line, b.cur, msg);
            append_key(err, b.key);
            goto exit;
        }
        switch (ev.type) {
        case YAML_DOCUMENT_START_EVENT:
            if (++b.docs > 1) {
                set_error(err, (unsigned)ev.start_mark.line + 1, NULL,
                          "only one YAML document is allowed (remove the second \"---\")");
                bad = 1;
            }
            break;
        case YAML_ALIAS_EVENT:
            set_error(err, (unsigned)ev.start_mark.line + 1, b.cur,
                      "YAML aliases (*name) are not supported (write the value out)");
            append_key(err, b.key);
            bad = 1;
            break;
        case YAML_SCALAR_EVENT:
            bad = on_node(&b, &ev, YNODE_SCALAR, err) < 0;
            break;
        case YAML_SEQUENCE_START_EVENT:
            bad = on_node(&b, &ev, YNODE_SEQ, err) < 0;
            break;
        case YAML_MAPPING_START_EVENT:
            bad = on_node(&b, &ev, YNODE_MAP, err) < 0;
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            b.cur = b.cur ? b.cur->parent : NULL;
            b.depth--;
            break;
        case YAML_STREAM_END_EVENT:
            done = 1;
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
        if (bad)
            goto exit;
    }
    *root = b.root;
    b.root = NULL;
    rc = 0;
exit:
    free(b.key);
    ytree_free(b.root);
    yaml_parser_delete(&parser);
    return rc;
}

void ytree_free(ynode_t *n)
{
    if (!n)
        return;
    for (unsigned i = 0; i < n->nkids; i++)
        ytree_free(n->kids[i]);
    free(n->kids);
    free(n->key);
    free(n->text);
    free(n);
}

const ynode_t *ytree_child(const ynode_t *map, const char *key)
{
    if (!map || map->kind != YNODE_MAP)
        return NULL;
    for (unsigned i = 0; i < map->nkids; i++)
        if (strcmp(map->kids[i]->key, key) == 0)
            return map->kids[i];
    return NULL;
}

const ynode_t *ytree_get(const ynode_t *root, const char *path, const ynode_t **deepest)
{
    const ynode_t *n = root;
    const char *p = path;

    if (deepest)
        *deepest = root;
    while (n && *p) {
        const ynode_t *next = NULL;
        if (*p == '[') {
            char *end;
            unsigned long i = strtoul(p + 1, &end, 10);
            if (*end != ']')
                return NULL;
            if (n->kind == YNODE_SEQ && i < n->nkids)
                next = n->kids[i];
            p = end + 1;
        } else {
            char key[128];
            size_t len;
            if (*p == '.')
                p++;
            len = strcspn(p, ".[");
            if (len >= sizeof(key))
                return NULL;
            memcpy(key, p, len);
            key[len] = '\0';
            next = ytree_child(n, key);
            p += len;
        }
        if (!next)
            return NULL;
        n = next;
        if (deepest)
            *deepest = n;
    }
    return n;
}

unsigned ytree_line(const ynode_t *root, const char *path)
{
    const ynode_t *deepest = NULL;

    ytree_get(root, path, &deepest);
    return deepest ? deepest->line : 1;
}

void ytree_path(const ynode_t *node, char *buf, size_t len)
{
    const ynode_t *chain[YTREE_MAX_DEPTH + 2];
    unsigned n = 0;
    size_t off = 0;

    if (len == 0)
        return;
    buf[0] = '\0';
    for (const ynode_t *p = node; p && p->parent && n < YTREE_MAX_DEPTH + 2; p = p->parent)
        chain[n++] = p;
    while (n-- > 0 && off < len) {
        const ynode_t *p = chain[n];
        int w;
        if (p->key) {
            char shown[48];
            key_for_message(p->key, shown, sizeof(shown));
            w = snprintf(buf + off, len - off, "%s%s", off ? "." : "", shown);
        } else {
            w = snprintf(buf + off, len - off, "[%u]", p->index);
        }
        if (w < 0)
            break;
        off += (size_t)w;
    }
}
