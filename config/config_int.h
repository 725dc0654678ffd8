/* config_int.h - what the parts of the config module share; not for use outside config/.
 *
 * The loader runs in passes, each in its own file:
 *
 *   yaml_tree.c  libyaml pass: a node tree with lines, for paths -> lines and raw scalars
 *   config.c     libcyaml load into cfg_t; libcyaml's own errors turned into our form;
 *                the problem report; cfg_free and the lookups
 *   schema.c     the libcyaml schema, the table of numeric fields (default, range), and a
 *                walk over schema + tree that fills defaults and checks what libcyaml lets
 *                through (1.5 for an integer, "maybe" for a boolean, an empty value)
 *   validate.c   meaning: listen addresses, URLs, names, references, headers
 *   secret.c     secrets from the environment or files, and their checks
 *
 * Every pass adds problems to one cfg_report_t; the load fails if any was added, and the
 * message lists them all, ordered by line.
 */
#ifndef LLMGATE_CONFIG_INT_H
#define LLMGATE_CONFIG_INT_H

#include <cyaml/cyaml.h>
#include <stddef.h>

#include "config/config.h"
#include "config/yaml_tree.h"

/* Size of the path buffers the passes build ("models[12].deployments[3].priority"). */
#define CFG_PATH_MAX 256

typedef struct cfg_problem_s {
    unsigned line;
    unsigned seq; /* insertion order, to keep the sort stable */
    char *text;   /* "config: FILE:LINE: path: message" */
} cfg_problem_t;

typedef struct cfg_report_s {
    const char *file;    /* name used in messages */
    const ynode_t *root; /* for path -> line; may be NULL */
    cfg_problem_t *v;
    unsigned n, cap;
    int oom;
    unsigned flags; /* CFG_LOAD_* of this load */
} cfg_report_t;

/* Adds a problem at path; the line is that of path in the tree (or of its nearest existing
 * ancestor, e.g. the mapping a required key is missing from). path "" is the top level. */
void cfg_report_add(cfg_report_t *r, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Same with an explicit line. */
void cfg_report_add_line(cfg_report_t *r, unsigned line, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The libcyaml schema of cfg_t (top level, a pointer to a mapping). */
extern const cyaml_schema_value_t cfg_schema;

/* The schema value at path ("providers[0].keys[1].rpm"), or NULL if the schema has none. */
const cyaml_schema_value_t *cfg_schema_at(const char *path);

/* "must be ..." for a value of schema v at path: the type and, for numbers, the range. */
void cfg_schema_expect(const char *path, const cyaml_schema_value_t *v, char *buf, size_t len);

/* A file path (secret_file, ca_file, tls.cert_file, tls.key_file) that starts with
 * "${CREDENTIALS_DIRECTORY}" gets that replaced by the variable's value: the directory
 * where systemd puts the files of LoadCredential=. Returns 0 when *file is usable (as it
 * was, or expanded: the old string freed), -1 when it names the variable and that is not
 * set (reported at path, unless the load reads no secrets: then *file is left as it is and
 * the caller skips its checks). */
int cfg_path_expand(char **file, const char *path, cfg_report_t *rep);

/* The default of the integer field at path (from the rules table, indices ignored): 1 with
 * *def set when the field has a rule, 0 when it takes any uint32_t and defaults to 0. */
int cfg_schema_default(const char *path, uint32_t *def);

/* "allowed: a, b, c" for the keys of mapping schema v. */
void cfg_schema_keys(const cyaml_schema_value_t *v, char *buf, size_t len);

/* Fills defaults of absent fields and checks every scalar that is present (see above). */
void cfg_schema_check(cfg_t *cfg, const ynode_t *root, cfg_report_t *rep);

/* How the value at node is shown after "got": a quoted, shortened scalar, "a list", "a
 * mapping", "nothing" - and never the value of a secret (decided from path). */
void cfg_got(const ynode_t *node, const char *path, char *buf, size_t len);

/* Meaning: builds cfg->listen from the tree, parses URLs, checks names and references,
 * resolves and checks secrets, resolves workers. */
void cfg_validate(cfg_t *cfg, const ynode_t *root, cfg_report_t *rep);

/* Client keys (clients.c): names, secrets to digests, models, and the rule that a
 * configuration without them says allow_unauthenticated: true. Runs after the models. */
void cfg_clients_validate(cfg_t *cfg, cfg_report_t *rep);

/* 64 hex digits (either case) into 32 bytes: 0, or -1 (then out is undefined). */
int cfg_parse_sha256(const char *s, unsigned char out[32]);

/* Resolves and checks the secret of key k at path kp, sets its fingerprint (secret.c). */
void cfg_secret_resolve(const cfg_t *cfg, cfg_key_t *k, const char *kp, cfg_report_t *rep);

/* 1 if s is an environment variable name ([A-Za-z_][A-Za-z0-9_]*) (secret.c). */
int cfg_env_name_ok(const char *s);

/* The cluster: section (cluster.c): the Redis address, names, shares, the password. */
void cfg_cluster_validate(cfg_t *cfg, cfg_report_t *rep);

/* A name for a message, at most 64 printable bytes (others as '?'); returns buf. Names are
 * not secret; never use this for a secret. */
const char *cfg_shown(const char *s, char *buf, size_t len);

/* snprintf that never fails the build on truncation warnings; returns buf. */
char *cfg_path_fmt(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
