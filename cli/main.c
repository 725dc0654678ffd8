/* main.c - llmgatectl: the command line, dispatch, and the keys and providers commands.
 *
 * Every command is checked completely (command, arguments, which options apply to it,
 * durations) before the store (or, for `cluster`, the config and Redis) is opened, so a usage
 * error is always exit 1 and never touches the store. See usage() and cli/README.md for the
 * reference.
 *
 * `client` commands are two words (`client add NAME`; `client NAME` and `client show NAME`
 * show one), and take --rpm N and --rpd N with a value, where `reset` takes --rpm and --rpd
 * alone: the command word is found first (with the client table of options), and the command
 * line is then parsed with the table of its command.
 */
#include "llmgate_version.h"

#include "cli/ctl.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Which options a command accepts. */
enum {
    O_JSON = 1,
    O_FILTER = 2, /* --provider, --model */
    O_STATUS = 4, /* --status, --sort, --reverse */
    O_INTERVAL = 8,
    O_RESET = 16,
    O_CLIENT = 32, /* client add / set: --models, --rpm N, ... --expires */
    O_GRACE = 64,  /* client rotate */
    O_USAGE = 128, /* usage: --client, --from, --to, --by, --csv */
    O_STATS = 256, /* stats: --key, --range (and --model, a series name) */
};

/* How a command uses the store. */
enum { S_READ, S_WRITE, S_NONE /* cluster: the config and Redis instead */ };

typedef struct cmd_s {
    const char *name;
    unsigned args; /* positional arguments after the command */
    int store;     /* S_* */
    unsigned opts; /* O_* it accepts */
    const char *synopsis;
} cmd_t;

static const cmd_t cmds[] = {
    {"keys", 0, S_READ, O_JSON | O_FILTER | O_STATUS, "keys"},
    {"key", 1, S_READ, O_JSON, "key NAME"},
    {"providers", 0, S_READ, O_JSON | O_FILTER, "providers"},
    {"watch", 0, S_READ, O_FILTER | O_STATUS | O_INTERVAL, "watch"},
    {"cooldown", 2, S_WRITE, 0, "cooldown NAME DURATION"},
    {"disable", 1, S_WRITE, 0, "disable NAME"},
    {"enable", 1, S_WRITE, 0, "enable NAME"},
    {"reset", 1, S_WRITE, O_RESET, "reset NAME [--rpm] [--rpd] [--tpm] [--counters] [--all]"},
    {"prune", 0, S_WRITE, 0, "prune"},
    {"cluster", 0, S_NONE, O_JSON, "cluster"},
    {"clients", 0, S_READ, O_JSON, "clients"},
    {"client", 1, S_READ, O_JSON, "client NAME  (or: client show NAME)"},
    {"client add", 1, S_WRITE, O_JSON | O_CLIENT,
     "client add NAME [--models M1,M2] [--rpm N] [--rpd N] [--tokens-per-day N]\n"
     "         [--tokens-per-month N] [--cost-per-day-usd X] [--cost-per-month-usd X]\n"
     "         [--expires DURATION|never] [--json]"},
    {"client set", 1, S_WRITE, O_CLIENT,
     "client set NAME [--models M1,M2|''] [--rpm N] [--rpd N] [--tokens-per-day N]\n"
     "         [--tokens-per-month N] [--cost-per-day-usd X] [--cost-per-month-usd X]\n"
     "         [--expires DURATION|never]   (at least one)"},
    {"client rotate", 1, S_WRITE, O_JSON | O_GRACE,
     "client rotate NAME [--grace DURATION] [--json]"},
    {"client revoke", 1, S_WRITE, 0, "client revoke NAME"},
    {"usage", 0, S_READ, O_JSON | O_USAGE,
     "usage [--client NAME] [--from DATE] [--to DATE] [--by day|month] [--csv | --json]"},
    {"stats", 0, S_READ, O_JSON | O_STATS,
     "stats [--model M | --key K] [--range 1h|6h|24h|7d|30d|90d] [--json]"},
};

/* The second words of the two-word client commands ("show" is `client NAME`). */
static const char *const client_verbs[] = {"add", "set", "rotate", "revoke", "show"};

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: llmgatectl [--state DIR | --config FILE] COMMAND [ARGS] [OPTIONS]\n"
        "\n"
        "Read commands (the store is opened read-only):\n"
        "  keys                     one row per key: status, RPM/RPD/TPM used of limit,\n"
        "                           in-flight, p50/p95/p99, error rate, requests, tokens, cost\n"
        "  key NAME                 everything about one key: histogram, last errors, history\n"
        "  providers                circuit state and error ratio per provider\n"
        "  watch                    the keys table, refreshed live (q or Ctrl-C quits)\n"
        "\n"
        "Actions (running servers obey them at their next admission; each is recorded in\n"
        "the key's history):\n"
        "  cooldown NAME DURATION   cool the key down (30s, 5m, 2h, 1h30m, or seconds)\n"
        "  disable NAME             take the key out of rotation until `enable`\n"
        "  enable NAME              make it active (clears cooling, disabled, invalid, depleted)\n"
        "  reset NAME [--rpm] [--rpd] [--tpm] [--counters] [--all]\n"
        "                           zero its usage (default: --rpm --rpd --tpm; --all adds\n"
        "                           --counters: totals, latency ring, last error)\n"
        "  prune                    delete the keys that are no longer in the config\n"
        "\n"
        "Client keys (the gateway's own API keys: the config's client_keys, and those kept\n"
        "in the store, which every running server accepts or refuses at its next request):\n"
        "  clients                  one row per client: source (config or store), status,\n"
        "                           RPM/RPD used of limit, tokens and cost of the day and\n"
        "                           month of their budgets, requests, last seen\n"
        "  client NAME              everything about one client (also: client show NAME)\n"
        "  client add NAME [--models M1,M2] [--rpm N] [--rpd N] [--tokens-per-day N]\n"
        "      [--tokens-per-month N] [--cost-per-day-usd X] [--cost-per-month-usd X]\n"
        "      [--expires DURATION|never]\n"
        "                           a client of the store, with a new key (lgk-...) that is\n"
        "                           printed this once and kept nowhere (the store keeps its\n"
        "                           SHA-256); 0 or no option = unlimited, no --models = all\n"
        "  client set NAME [the options of add]\n"
        "                           change only what is given (--models '' = all models,\n"
        "                           --expires never lifts the expiry)\n"
        "  client rotate NAME [--grace DURATION]\n"
        "                           a new key, printed once; the old one works for the grace\n"
        "                           (default 1h; 0 stops it at once)\n"
        "  client revoke NAME       refuse its keys from now on (its usage stays readable)\n"
        "  usage [--client NAME] [--from DATE] [--to DATE] [--by day|month] [--csv]\n"
        "                           what clients used, per UTC day (or month) and model:\n"
        "                           requests, errors, refused, tokens, cost (billing export;\n"
        "                           DATE is YYYY-MM-DD or YYYY-MM; default: this month)\n"
        "\n"
        "History (per-minute, per-hour and per-day rows in the store, kept 48h, 90d, 400d):\n"
        "  stats [--model M | --key K] [--range 1h|6h|24h|7d|30d|90d]\n"
        "                           per model (or per key) over the range (default 1h):\n"
        "                           upstream attempts, error rate, p50/p95/p99 and time to\n"
        "                           first byte, tokens, cost, today's and this month's cost,\n"
        "                           and a sparkline of requests on a terminal\n"
        "\n"
        "Cluster mode (reads the config's cluster section and its Redis, not the store):\n"
        "  cluster                  one row per node: mode, last contact, pid, grants, units,\n"
        "                           refills, refill p50/max; then per key and client key with\n"
        "                           a limit: the live units each node holds of it, of the limit\n"
        "\n"
        "The store: --state DIR, else the state_dir of --config FILE (the server's config),\n"
        "else $LLMGATE_STATE_DIR, else the state_dir of $LLMGATE_CONFIG.\n"
        "\n"
        "Options:\n"
        "  --json                   JSON output of keys, key, providers, cluster, clients,\n"
        "                           client, usage, stats, and of client add / rotate with the\n"
        "                           key\n"
        "                           (schema: cli/README.md)\n"
        "  --csv                    usage as CSV (RFC 4180, exact costs in USD)\n"
        "  --provider P[,P...]      only these providers' keys (keys, providers, watch)\n"
        "  --model M                only keys serving model M (needs the config); stats: the\n"
        "                           history of model M (a name as clients send it)\n"
        "  --key K                  stats: the history of key K\n"
        "  --range R                stats: 1h, 6h, 24h, 7d, 30d or 90d (default 1h)\n"
        "  --status S[,S...]        only keys in these states: active, cooling, half_open,\n"
        "                           disabled, invalid, depleted, orphaned (keys, watch)\n"
        "  --sort COL               %s\n"
        "                           (numbers largest first); --reverse flips it\n"
        "  --interval DURATION      watch refresh (default 1s)\n"
        "  --no-color               no colours (they are used only on a terminal, and never\n"
        "                           when NO_COLOR is set)\n"
        "  -h, --help, --version\n"
        "\n"
        "Exit codes: 0 ok, 1 usage error (cluster: also no cluster section, or Redis cannot be\n"
        "reached; client: a name taken, a model the config lacks, a revoked or config client\n"
        "to change; usage: a bad date, --from after --to), 2 store missing, unreadable or of\n"
        "another version (or a write failed, or the config cannot be loaded), 3 key or client\n"
        "not found. No secret is ever printed: keys are shown by name and fingerprint, Redis by\n"
        "its address; a new client key only in the one output of client add or client rotate.\n",
        ctl_sort_names);
}

static int usage_error(const char *fmt, const char *arg)
{
    fputs("llmgatectl: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs("\n(llmgatectl --help lists the commands and options)\n", stderr);
    return CTL_EXIT_USAGE;
}

static int parse_states(ctl_t *c, const char *list)
{
    for (const char *p = list; *p;) {
        size_t n = strcspn(p, ",");
        int st = vw_state_parse(p, n);
        if (st < 0)
            return usage_error("--status: unknown state in \"%s\" (use active, cooling, "
                               "half_open, disabled, invalid, depleted, orphaned)",
                               list);
        c->f_states |= 1u << st;
        p += n + (p[n] == ',');
    }
    if (!c->f_states)
        return usage_error("--status: empty list%s", "");
    return 0;
}

static int cmd_keys(ctl_t *c)
{
    vw_key_t *rows = NULL;
    unsigned n = 0;
    vw_buf_t o = {0};
    int rc = ctl_rows_load(c, &rows, &n);
    if (rc != 0)
        return rc;
    if (c->json)
        ctl_json_keys(c, rows, n, &o);
    else
        ctl_render_keys(rows, n, c->color, &o);
    rc = ctl_write_out(&o) == 0 ? 0 : ctl_fail(CTL_EXIT_STORE, "cannot write the output");
    free(rows);
    vw_buf_free(&o);
    return rc;
}

static int cmd_providers(ctl_t *c)
{
    vw_prov_t *rows = NULL;
    unsigned n = 0;
    vw_buf_t o = {0};
    int rc = ctl_prows_load(c, &rows, &n);
    if (rc != 0)
        return rc;
    if (c->json)
        ctl_json_providers(c, rows, n, &o);
    else
        ctl_render_providers(rows, n, c->color, &o);
    rc = ctl_write_out(&o) == 0 ? 0 : ctl_fail(CTL_EXIT_STORE, "cannot write the output");
    free(rows);
    vw_buf_free(&o);
    return rc;
}

enum {
    OPT_STATE = 256,
    OPT_CONFIG,
    OPT_JSON,
    OPT_PROVIDER,
    OPT_MODEL,
    OPT_STATUS,
    OPT_SORT,
    OPT_REVERSE,
    OPT_INTERVAL,
    OPT_NO_COLOR,
    OPT_RPM,
    OPT_RPD,
    OPT_TPM,
    OPT_COUNTERS,
    OPT_ALL,
    OPT_C_RPM, /* client add / set: --rpm N, --rpd N */
    OPT_C_RPD,
    OPT_MODELS,
    OPT_TOK_DAY,
    OPT_TOK_MON,
    OPT_COST_DAY,
    OPT_COST_MON,
    OPT_EXPIRES,
    OPT_GRACE,
    OPT_CLIENT,
    OPT_FROM,
    OPT_TO,
    OPT_BY,
    OPT_CSV,
    OPT_KEY,
    OPT_RANGE,
    OPT_VERSION
};

static const struct option long_opts[] = {
    {"state", required_argument, NULL, OPT_STATE},
    {"config", required_argument, NULL, OPT_CONFIG},
    {"json", no_argument, NULL, OPT_JSON},
    {"provider", required_argument, NULL, OPT_PROVIDER},
    {"model", required_argument, NULL, OPT_MODEL},
    {"status", required_argument, NULL, OPT_STATUS},
    {"sort", required_argument, NULL, OPT_SORT},
    {"reverse", no_argument, NULL, OPT_REVERSE},
    {"interval", required_argument, NULL, OPT_INTERVAL},
    {"no-color", no_argument, NULL, OPT_NO_COLOR},
    {"rpm", no_argument, NULL, OPT_RPM},
    {"rpd", no_argument, NULL, OPT_RPD},
    {"tpm", no_argument, NULL, OPT_TPM},
    {"counters", no_argument, NULL, OPT_COUNTERS},
    {"all", no_argument, NULL, OPT_ALL},
    {"models", required_argument, NULL, OPT_MODELS},
    {"tokens-per-day", required_argument, NULL, OPT_TOK_DAY},
    {"tokens-per-month", required_argument, NULL, OPT_TOK_MON},
    {"cost-per-day-usd", required_argument, NULL, OPT_COST_DAY},
    {"cost-per-month-usd", required_argument, NULL, OPT_COST_MON},
    {"expires", required_argument, NULL, OPT_EXPIRES},
    {"grace", required_argument, NULL, OPT_GRACE},
    {"client", required_argument, NULL, OPT_CLIENT},
    {"from", required_argument, NULL, OPT_FROM},
    {"to", required_argument, NULL, OPT_TO},
    {"by", required_argument, NULL, OPT_BY},
    {"csv", no_argument, NULL, OPT_CSV},
    {"key", required_argument, NULL, OPT_KEY},
    {"range", required_argument, NULL, OPT_RANGE},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

#define N_OPTS (sizeof(long_opts) / sizeof(long_opts[0]))

/* long_opts with --rpm N and --rpd N taking a value (client add / set). */
static struct option client_opts[N_OPTS];

static void client_opts_init(void)
{
    memcpy(client_opts, long_opts, sizeof(long_opts));
    for (size_t i = 0; i < N_OPTS; i++) {
        if (client_opts[i].val == OPT_RPM || client_opts[i].val == OPT_RPD) {
            client_opts[i].has_arg = required_argument;
            client_opts[i].val = client_opts[i].val == OPT_RPM ? OPT_C_RPM : OPT_C_RPD;
        }
    }
}

/* The first argument that is neither an option nor an option's value, with opts; NULL if
 * none. getopt's state is reset before and after. */
static const char *first_word(int argc, char **argv, const struct option *opts)
{
    const char *w = NULL;
    int o;

    optind = 0;
    while ((o = getopt_long(argc, argv, "-:h", opts, NULL)) != -1)
        if (o == 1) {
            w = optarg;
            break;
        }
    optind = 0;
    return w;
}

/* Option -> (O_* class, its name for messages). */
static unsigned opt_class(int o)
{
    switch (o) {
    case OPT_JSON:
        return O_JSON;
    case OPT_PROVIDER:
    case OPT_MODEL:
        return O_FILTER;
    case OPT_STATUS:
    case OPT_SORT:
    case OPT_REVERSE:
        return O_STATUS;
    case OPT_INTERVAL:
        return O_INTERVAL;
    case OPT_RPM:
    case OPT_RPD:
    case OPT_TPM:
    case OPT_COUNTERS:
    case OPT_ALL:
        return O_RESET;
    case OPT_C_RPM:
    case OPT_C_RPD:
    case OPT_MODELS:
    case OPT_TOK_DAY:
    case OPT_TOK_MON:
    case OPT_COST_DAY:
    case OPT_COST_MON:
    case OPT_EXPIRES:
        return O_CLIENT;
    case OPT_GRACE:
        return O_GRACE;
    case OPT_CLIENT:
    case OPT_FROM:
    case OPT_TO:
    case OPT_BY:
    case OPT_CSV:
        return O_USAGE;
    case OPT_KEY:
    case OPT_RANGE:
        return O_STATS;
    default:
        return 0;
    }
}

static const char *opt_name(int o)
{
    for (const struct option *p = long_opts; p->name; p++)
        if (p->val == o)
            return p->name;
    for (const struct option *p = client_opts; p->name; p++)
        if (p->val == o)
            return p->name;
    return "?";
}

static void on_oom(void)
{
    fputs("llmgatectl: out of memory\n", stderr);
    exit(2);
}

int main(int argc, char **argv)
{
    ctl_t c;
    const cmd_t *cmd = NULL;
    int given[OPT_VERSION + 1] = {0};
    const char *pos[3], *word;
    const struct option *opts = long_opts;
    unsigned npos = 0;
    int no_color = 0, o, rc;
    static const int client_copt[] = {
        [OPT_C_RPM] = CTL_CO_RPM,         [OPT_C_RPD] = CTL_CO_RPD,
        [OPT_MODELS] = CTL_CO_MODELS,     [OPT_TOK_DAY] = CTL_CO_TOK_DAY,
        [OPT_TOK_MON] = CTL_CO_TOK_MON,   [OPT_COST_DAY] = CTL_CO_COST_DAY,
        [OPT_COST_MON] = CTL_CO_COST_MON, [OPT_EXPIRES] = CTL_CO_EXPIRES,
        [OPT_GRACE] = CTL_CO_GRACE,
    };

    memset(&c, 0, sizeof(c));
    vw_buf_on_oom(on_oom);
    c.interval_ms = 1000;
    c.grace_ms = CTL_GRACE_MS;
    opterr = 0;
    client_opts_init();
    word = first_word(argc, argv, client_opts);
    if (word && strcmp(word, "client") == 0)
        opts = client_opts;
    /* "-": positional arguments come back in order as option 1, so options may stand
     * anywhere (also with POSIXLY_CORRECT set); ":": a missing value is reported as ':'. */
    while ((o = getopt_long(argc, argv, "-:h", opts, NULL)) != -1) {
        if (o == 1) {
            if (npos == 3)
                return usage_error("too many arguments (at \"%s\")", optarg);
            pos[npos++] = optarg;
            continue;
        }
        if (o == '?')
            return usage_error("unknown option %s", argv[optind - 1]);
        if (o == ':')
            return usage_error("option %s needs a value", argv[optind - 1]);
        if (o == 'h') {
            usage(stdout);
            return CTL_EXIT_OK;
        }
        if (o == OPT_VERSION) {
            printf("llmgatectl %s%s%s%s (store schema %d)\nbuild: %s\n", LLMGATE_VERSION,
                   LLMGATE_VCS[0] ? " (git " : "", LLMGATE_VCS, LLMGATE_VCS[0] ? ")" : "",
                   SHM_SCHEMA_VERSION, LLMGATE_BUILD_OPTIONS);
            return CTL_EXIT_OK;
        }
        given[o] = 1;
        switch (o) {
        case OPT_STATE:
            c.state_opt = optarg;
            break;
        case OPT_CONFIG:
            c.config_opt = optarg;
            break;
        case OPT_JSON:
            c.json = 1;
            break;
        case OPT_PROVIDER:
            if (!*optarg)
                return usage_error("--provider needs a name%s", "");
            c.f_provider = optarg;
            break;
        case OPT_MODEL:
            if (!*optarg)
                return usage_error("--model needs a name%s", "");
            c.f_model = optarg;
            break;
        case OPT_STATUS:
            if ((rc = parse_states(&c, optarg)) != 0)
                return rc;
            break;
        case OPT_SORT:
            if ((c.sort = ctl_sort_parse(optarg)) < 0) {
                fprintf(stderr, "llmgatectl: --sort: unknown column \"%s\" (use %s)\n", optarg,
                        ctl_sort_names);
                return CTL_EXIT_USAGE;
            }
            break;
        case OPT_REVERSE:
            c.reverse = 1;
            break;
        case OPT_INTERVAL:
            if (vw_parse_duration(optarg, &c.interval_ms) != 0 || c.interval_ms < 100)
                return usage_error("--interval: \"%s\" is not a duration of at least 100ms "
                                   "(e.g. 1s, 500ms, 2s)",
                                   optarg);
            break;
        case OPT_NO_COLOR:
            no_color = 1;
            break;
        case OPT_RPM:
            c.reset_what |= SHM_RESET_RPM;
            break;
        case OPT_RPD:
            c.reset_what |= SHM_RESET_RPD;
            break;
        case OPT_TPM:
            c.reset_what |= SHM_RESET_TPM;
            break;
        case OPT_COUNTERS:
            c.reset_what |= SHM_RESET_COUNTERS;
            break;
        case OPT_ALL:
            c.reset_what |= SHM_RESET_ALL;
            break;
        case OPT_C_RPM:
        case OPT_C_RPD:
        case OPT_MODELS:
        case OPT_TOK_DAY:
        case OPT_TOK_MON:
        case OPT_COST_DAY:
        case OPT_COST_MON:
        case OPT_EXPIRES:
        case OPT_GRACE:
            if ((rc = ctl_client_option(&c, client_copt[o], optarg)) != 0)
                return rc;
            break;
        case OPT_CLIENT:
            c.u_client = optarg;
            break;
        case OPT_FROM:
        case OPT_TO:
            if (vw_parse_date(optarg, o == OPT_TO, o == OPT_FROM ? &c.u_from_day : &c.u_to_day))
                return usage_error(o == OPT_FROM ? "--from: \"%s\" is not a UTC date "
                                                   "(YYYY-MM-DD, or YYYY-MM for its first day)"
                                                 : "--to: \"%s\" is not a UTC date (YYYY-MM-DD, "
                                                   "or YYYY-MM for its last day)",
                                   optarg);
            *(o == OPT_FROM ? &c.u_from_set : &c.u_to_set) = 1;
            break;
        case OPT_BY:
            if (strcmp(optarg, "day") == 0)
                c.u_by = CTL_BY_DAY;
            else if (strcmp(optarg, "month") == 0)
                c.u_by = CTL_BY_MONTH;
            else
                return usage_error("--by: \"%s\" is not day or month", optarg);
            break;
        case OPT_CSV:
            c.u_csv = 1;
            break;
        case OPT_KEY:
            if (!*optarg)
                return usage_error("--key needs a name%s", "");
            c.s_key = optarg;
            break;
        case OPT_RANGE:
            c.s_range = optarg;
            break;
        }
    }
    if (npos == 0) {
        usage(stderr);
        return CTL_EXIT_USAGE;
    }
    if (strcmp(pos[0], "help") == 0) {
        usage(stdout);
        return CTL_EXIT_OK;
    }
    char cmd_name[32];
    unsigned skip = 1; /* words of the command */
    snprintf(cmd_name, sizeof(cmd_name), "%s", pos[0]);
    if (strcmp(pos[0], "client") == 0 && npos >= 2)
        for (size_t i = 0; i < sizeof(client_verbs) / sizeof(client_verbs[0]); i++)
            if (strcmp(pos[1], client_verbs[i]) == 0) {
                if (strcmp(pos[1], "show") != 0)
                    snprintf(cmd_name, sizeof(cmd_name), "client %s", pos[1]);
                skip = 2;
            }
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        if (strcmp(cmd_name, cmds[i].name) == 0)
            cmd = &cmds[i];
    if (!cmd)
        return usage_error("unknown command \"%s\"", pos[0]);
    if (npos - skip != cmd->args) {
        fprintf(stderr, "llmgatectl: %s takes %s\nusage: llmgatectl %s\n", cmd->name,
                cmd->args == 0   ? "no arguments"
                : cmd->args == 1 ? "one argument"
                                 : "two arguments",
                cmd->synopsis);
        return CTL_EXIT_USAGE;
    }
    if (strcmp(cmd->name, "stats") == 0 && given[OPT_MODEL]) {
        /* stats --model names a series, not a config model: no config needed */
        c.s_model = c.f_model;
        c.f_model = NULL;
        given[OPT_MODEL] = 0;
        if (c.s_key)
            return usage_error("stats: --model or --key, not both%s", "");
    }
    for (int i = OPT_STATE; i <= OPT_VERSION; i++) {
        unsigned cls = opt_class(i);
        if (given[i] && cls && !(cmd->opts & cls)) {
            fprintf(stderr, "llmgatectl: --%s does not apply to %s\nusage: llmgatectl %s\n",
                    opt_name(i), cmd->name, cmd->synopsis);
            return CTL_EXIT_USAGE;
        }
    }
    if (cmd->store == S_NONE && c.state_opt) {
        fprintf(stderr,
                "llmgatectl: --state does not apply to %s (it reads the config's cluster "
                "section and Redis, not the store)\nusage: llmgatectl %s\n",
                cmd->name, cmd->synopsis);
        return CTL_EXIT_USAGE;
    }
    if (strcmp(cmd->name, "cooldown") == 0 && vw_parse_duration(pos[2], &c.duration_ms) != 0)
        return usage_error("cooldown: \"%s\" is not a duration (e.g. 30s, 5m, 2h, 1h30m, or "
                           "seconds; at most 366d)",
                           pos[2]);
    if (strcmp(cmd->name, "reset") == 0 && !c.reset_what)
        c.reset_what = SHM_RESET_RPM | SHM_RESET_RPD | SHM_RESET_TPM;
    const char *name = cmd->args ? pos[skip] : NULL;
    if (strncmp(cmd->name, "client", 6) == 0 && name && !ctl_client_name_ok(name)) {
        char nb[SHM_NAME_MAX * 2 + 2];
        fprintf(stderr,
                "llmgatectl: \"%s\" is not a client name (1 to %d letters, digits, '.', '_' "
                "and '-')\nusage: llmgatectl %s\n",
                vw_printable(name, nb, sizeof(nb)), SHM_NAME_MAX, cmd->synopsis);
        return CTL_EXIT_USAGE;
    }
    if (strcmp(cmd->name, "client set") == 0 && !c.cset) {
        fprintf(stderr,
                "llmgatectl: client set needs at least one option to change\nusage: "
                "llmgatectl %s\n",
                cmd->synopsis);
        return CTL_EXIT_USAGE;
    }
    if (c.u_csv && c.json)
        return usage_error("--csv and --json: one output at a time%s", "");
    const char *nc = getenv("NO_COLOR"); /* no-color.org: set and not empty */
    c.color = !no_color && !(nc && *nc) && isatty(STDOUT_FILENO) && !c.json;

    if (cmd->store == S_NONE) {
        rc = ctl_cmd_cluster(&c);
        ctl_close(&c);
        return rc;
    }
    if ((rc = ctl_open(&c, cmd->store == S_WRITE)) != 0) {
        ctl_close(&c);
        return rc;
    }
    if (strcmp(cmd->name, "keys") == 0)
        rc = cmd_keys(&c);
    else if (strcmp(cmd->name, "key") == 0)
        rc = ctl_cmd_key(&c, pos[1]);
    else if (strcmp(cmd->name, "providers") == 0)
        rc = cmd_providers(&c);
    else if (strcmp(cmd->name, "watch") == 0)
        rc = ctl_cmd_watch(&c);
    else if (strcmp(cmd->name, "prune") == 0)
        rc = ctl_cmd_prune(&c);
    else if (strcmp(cmd->name, "clients") == 0)
        rc = ctl_cmd_clients(&c);
    else if (strcmp(cmd->name, "client") == 0)
        rc = ctl_cmd_client(&c, name);
    else if (strcmp(cmd->name, "client add") == 0)
        rc = ctl_cmd_client_add(&c, name);
    else if (strcmp(cmd->name, "client set") == 0)
        rc = ctl_cmd_client_set(&c, name);
    else if (strcmp(cmd->name, "client rotate") == 0)
        rc = ctl_cmd_client_rotate(&c, name);
    else if (strcmp(cmd->name, "client revoke") == 0)
        rc = ctl_cmd_client_revoke(&c, name);
    else if (strcmp(cmd->name, "usage") == 0)
        rc = ctl_cmd_usage(&c);
    else if (strcmp(cmd->name, "stats") == 0)
        rc = ctl_cmd_stats(&c);
    else
        rc = ctl_cmd_action(&c, cmd->name, pos[1]);
    ctl_close(&c);
    return rc;
}
