/* schema_keys.c - print every key of the config schema, one a line, for the test that holds
 * the llmgate.yaml(5) page to it (manpage_test.py):
 *
 *   PATH <TAB> KIND <TAB> RULE <TAB> DEFAULT
 *
 * PATH as the page writes it ("providers[].keys[].rpm"), KIND one of integer, number,
 * boolean, string, enum, list, mapping, any; RULE the "must be ..." text of the loader's
 * errors; DEFAULT the numeric default ("-" for other kinds).
 */
#include "config/config_int.h"

#include <stdio.h>

static const char *kind(const cyaml_schema_value_t *v)
{
    switch (v->type) {
    case CYAML_UINT:
    case CYAML_INT:
        return "integer";
    case CYAML_FLOAT:
        return "number";
    case CYAML_BOOL:
        return "boolean";
    case CYAML_STRING:
        return "string";
    case CYAML_ENUM:
        return "enum";
    case CYAML_MAPPING:
        return "mapping";
    case CYAML_SEQUENCE:
    case CYAML_SEQUENCE_FIXED:
        return "list";
    default:
        return "any";
    }
}

static void walk(const cyaml_schema_field_t *fields, const char *prefix)
{
    for (const cyaml_schema_field_t *f = fields; f->key; f++) {
        char path[256], rule[512];
        const cyaml_schema_value_t *v = &f->value;
        uint32_t def = 0;

        snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "", f->key);
        if (v->type == CYAML_SEQUENCE && v->sequence.entry->type == CYAML_MAPPING) {
            char sub[260];
            printf("%s\tlist\tmust be a list of mappings\t-\n", path);
            snprintf(sub, sizeof(sub), "%s[]", path);
            walk(v->sequence.entry->mapping.fields, sub);
            continue;
        }
        if (v->type == CYAML_MAPPING) {
            printf("%s\tmapping\tmust be a mapping of keys to values\t-\n", path);
            walk(v->mapping.fields, path);
            continue;
        }
        if (v->type == CYAML_IGNORE)
            snprintf(rule, sizeof(rule), "read by validate.c");
        else
            cfg_schema_expect(path, v, rule, sizeof(rule));
        if (v->type == CYAML_UINT) {
            cfg_schema_default(path, &def);
            printf("%s\t%s\t%s\t%u\n", path, kind(v), rule, def);
        } else {
            printf("%s\t%s\t%s\t-\n", path, kind(v), rule);
        }
    }
}

int main(void)
{
    walk(cfg_schema.mapping.fields, "");
    return 0;
}
