/* yaml_tree.h - one YAML document as a small node tree, built by a libyaml event pass.
 *
 * Design note
 * -----------
 * libcyaml loads the configuration into C structs but says little about where a value
 * came from. This pass reads the same bytes with libyaml and keeps, for every node, its
 * kind, its line, its key or index and (for scalars) its text, so that any YAML path
 * ("providers[1].keys[0].rpm") can be turned back into a line number, and so that the
 * loader can look at a scalar exactly as it was written (for "got ..." in messages and for
 * checks libcyaml is too lenient about).
 *
 * The pass also rejects what the loader does not support: more than one document, YAML
 * aliases, non-scalar mapping keys, and duplicate keys in one mapping.
 *
 * Not thread-bound; a tree is owned by whoever parsed it and freed with ytree_free().
 */
#ifndef LLMGATE_CONFIG_YAML_TREE_H
#define LLMGATE_CONFIG_YAML_TREE_H

#include <stddef.h>

enum ynode_kind {
    YNODE_SCALAR = 0,
    YNODE_SEQ,
    YNODE_MAP,
};

typedef struct ynode_s {
    enum ynode_kind kind;
    unsigned line;  /* 1-based; for a mapping value the line of its key */
    char *key;      /* for a mapping value: its key, else NULL */
    unsigned index; /* for a sequence entry: its index */
    struct ynode_s *parent;
    char *text;      /* scalars: the value, NUL terminated (it may also contain NULs) */
    size_t text_len; /* scalars: length of text */
    int plain;       /* scalars: written without quotes or block style */
    struct ynode_s **kids;
    unsigned nkids;
} ynode_t;

/* Where and why a parse failed. path is the innermost open node ("" for the top). */
typedef struct ytree_error_s {
    unsigned line;
    char path[256];
    char msg[256];
} ytree_error_t;

/* Parses buf[0..len). Returns 0 and sets *root (NULL for a stream without a document, for
 * example an empty or comments-only file), or -1 and fills *err. */
int ytree_parse(const char *buf, size_t len, ynode_t **root, ytree_error_t *err);

void ytree_free(ynode_t *root);

/* The value under key in mapping map, or NULL (also if map is NULL or not a mapping). */
const ynode_t *ytree_child(const ynode_t *map, const char *key);

/* The node at path ("a.b[2].c", "" = root), or NULL. If deepest is not NULL it receives the
 * deepest node found along the path (at worst root). */
const ynode_t *ytree_get(const ynode_t *root, const char *path, const ynode_t **deepest);

/* The line of the node at path, or of its deepest existing ancestor; 1 without a tree. */
unsigned ytree_line(const ynode_t *root, const char *path);

/* Writes node's path into buf ("" for the root). */
void ytree_path(const ynode_t *node, char *buf, size_t len);

#endif
