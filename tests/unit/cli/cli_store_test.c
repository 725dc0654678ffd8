/* cli_store_test.c - the llmgatectl binary (env LLMGATECTL) on a store written through the
 * shm API (cli_fill.h): the table and JSON show what was recorded, actions change the store
 * and its history, every exit code, store lookup through --config and the environment, and
 * a store of another schema version. The integration test (tests/integration/test_cli.py)
 * does the same against a running server.
 *
 *   cli_store_test            run the tests
 *   cli_store_test --fill DIR write the test store into DIR (must not exist) and exit
 */
#include <jsmn.h>
#include <lmdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "cli_fill.h"
#include "shm/shm_tutil.h"
#include "t.h"

static const char *ctl_bin;
static char out[1 << 16];

/* Runs llmgatectl with args (a shell fragment); stdout+stderr into out; returns the exit code. */
static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
    char cmd[4096], args[3500];
    va_list ap;
    size_t n = 0;

    va_start(ap, fmt);
    vsnprintf(args, sizeof(args), fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof(cmd), "'%s' %s 2>&1", ctl_bin, args);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    while (n + 1 < sizeof(out)) {
        size_t r = fread(out + n, 1, sizeof(out) - 1 - n, p);
        if (r == 0)
            break;
        n += r;
    }
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void show(void)
{
    for (const char *p = out; *p;) {
        size_t n = strcspn(p, "\n");
        printf("#   | %.*s\n", (int)n, p);
        p += n + (p[n] == '\n');
    }
}

static void expect(int rc, int want_rc, const char *needle, const char *what)
{
    int ok = rc == want_rc && (!needle || strstr(out, needle));
    T_OK(ok, "%s", what);
    if (!ok) {
        printf("#   exit %d (want %d), want substring: %s\n", rc, want_rc, needle ? needle : "");
        show();
    }
}

/* The line of the keys table that starts with name. */
static const char *table_line(const char *name, char *buf, size_t len)
{
    size_t nl = strlen(name);
    for (const char *p = out; *p;) {
        size_t n = strcspn(p, "\n");
        if (n > nl && strncmp(p, name, nl) == 0 && p[nl] == ' ') {
            snprintf(buf, len, "%.*s", (int)n, p);
            return buf;
        }
        p += n + (p[n] == '\n');
    }
    snprintf(buf, len, "(no line for %s)", name);
    return buf;
}

/* Collapses runs of spaces so a row can be compared without its alignment. */
static const char *squeeze(const char *s, char *buf, size_t len)
{
    size_t o = 0;
    for (; *s && o + 1 < len; s++)
        if (*s != ' ' || (o && buf[o - 1] != ' '))
            buf[o++] = *s;
    buf[o] = '\0';
    return buf;
}

/* want matches the row with runs of spaces collapsed; a "*" word in want matches any one
 * word (a time left that depends on how fast the test runs). */
static int row_match(const char *got, const char *want)
{
    while (*want) {
        if (want[0] == '*' && (want[1] == ' ' || !want[1])) {
            got += strcspn(got, " ");
            want++;
        } else if (*got++ != *want++) {
            return 0;
        }
    }
    return *got == '\0';
}

static void expect_row(const char *name, const char *want, const char *what)
{
    char line[1024], sq[1024];
    squeeze(table_line(name, line, sizeof(line)), sq, sizeof(sq));
    T_OK(row_match(sq, want), "%s", what);
    if (!row_match(sq, want))
        printf("#   got  %s\n#   want %s\n", sq, want);
}

static int json_ok(void)
{
    jsmn_parser p;
    jsmntok_t tok[4096];
    jsmn_init(&p);
    int n = jsmn_parse(&p, out, strlen(out), tok, 4096);
    return n > 0 && tok[0].type == JSMN_OBJECT && (size_t)tok[0].end == strlen(out) - 1;
}

static void test_reads(const char *dir)
{
    int rc;

    rc = run("--state %s keys", dir);
    expect(rc, 0, "NAME", "keys: table");
    expect_row("k-a1",
               "k-a1 pa cooling * 21/100 21/1000 2170/90000 1/8 90ms 180ms 180ms 10% 21 "
               "2160 $0.0009",
               "k-a1: cooling, counts, one in flight, percentiles, 2 errors of 20 outcomes");
    expect_row("k-a2", "k-a2 pa active 5/5 5/- 600/- 0/- 300ms 300ms 300ms 0% 5 600 $0.0003",
               "k-a2: RPM used up");
    expect_row("k-b1",
               "k-b1 pb depleted until 00:00Z 3/- 3/3 360/- 0/- 40ms 40ms 40ms 0% 3 360 $0.0001",
               "k-b1: day quota used up");
    expect_row("k-b2", "k-b2 pb disabled 0/- 0/- 0/- 0/- - - - - 0 0 $0.0000", "k-b2: disabled");
    expect_row("k-old", "k-old pa orphaned 0/- 0/- 0/- 0/- - - - - 0 0 $0.0000", "k-old: orphaned");
    T_OK(strchr(out, '\x1b') == NULL, "no colour when stdout is not a terminal");

    rc = run("--state %s keys --json", dir);
    expect(rc, 0, "{\"schema\":1,\"command\":\"keys\",", "keys --json: schema 1 first");
    T_OK(json_ok(), "  ... one valid JSON document");
    T_OK(strstr(out, "\"name\":\"k-a1\",\"fingerprint\":\"a1a1a1a1a1a1\",\"provider\":\"pa\","
                     "\"state\":\"cooling\",\"status\":\"cooling\",\"reason\":\"admin\","
                     "\"status_text\":\"cooling ") != NULL,
         "  ... k-a1 named, state and status text as in the table");
    T_OK(strstr(out, "\"latency_ms\":{\"samples\":18,\"p50\":90,\"p95\":180,\"p99\":180}") &&
             strstr(out, "\"outcomes\":{\"success\":18,\"rate_limited\":1,\"server_error\":1,") &&
             strstr(out, "\"errors\":2,\"error_rate\":0.100000"),
         "  ... latency, outcomes and error rate");
    T_OK(strstr(out, "\"limited_by\":[\"rpm\"]") &&
             strstr(out, "\"limited_by\":[\"rpd\",\"circuit\"]"),
         "  ... limited_by rpm (k-a2), rpd and circuit (k-b1)");
    T_OK(strstr(out, "\"latency_ms\":{\"samples\":0,\"p50\":null,"), "  ... null without data");

    rc = run("--state %s keys --status disabled,orphaned --sort name --reverse", dir);
    expect(rc, 0, "k-old", "--status filters by state");
    T_OK(!strstr(out, "k-a1") && strstr(out, "k-old") < strstr(out, "k-b2"),
         "  ... only those, sorted by --sort name --reverse");
    rc = run("--state %s keys --provider pb --sort requests", dir);
    T_OK(rc == 0 && !strstr(out, "k-a") && strstr(out, "k-b1") < strstr(out, "k-b2"),
         "--provider filters, --sort requests largest first");

    rc = run("--state %s providers", dir);
    expect(rc, 0, "PROVIDER", "providers: table");
    expect_row("pa", "pa closed 2 1 26 8.0% 2 0", "pa: circuit closed, error ratio of its keys");
    expect_row("pb", "pb open * 2 0 3 0% 0 0", "pb: open, no key available");
    rc = run("--state %s providers --json", dir);
    T_OK(rc == 0 && json_ok() && strstr(out, "\"name\":\"pb\",\"circuit\":\"open\","),
         "providers --json");

    rc = run("--state %s key k-a1", dir);
    expect(rc, 0, "fingerprint a1a1a1a1a1a1", "key: detail names the fingerprint");
    T_OK(strstr(out, "latency histogram") && strstr(out, "<=  250ms  ##########") &&
             strstr(out, "last error   429 at ") && strstr(out, "cooldown   cooling   admin") &&
             strstr(out, "outcomes     success 18, 429 1, 5xx 1,"),
         "  ... histogram, last error, history with the admin cooldown, outcomes");
    rc = run("--state %s key k-a1 --json", dir);
    T_OK(rc == 0 && json_ok() && strstr(out, "\"histogram\":[{\"le_ms\":10,\"count\":1},") &&
             strstr(out, "{\"le_ms\":null,\"count\":0}]") &&
             strstr(out, "\"event\":\"cooldown\",\"status\":\"cooling\",\"reason\":\"admin\""),
         "key --json: histogram and history");
}

static void test_actions(const char *dir, shm_t *s)
{
    shm_key_t k;
    shm_event_t ev[SHM_HISTORY_RING];
    unsigned nev = 0;
    int rc;

    rc = run("--state %s disable k-a2", dir);
    expect(rc, 0, "k-a2: active -> disabled", "disable prints the change");
    T_OK(shm_key_get(s, "k-a2", SHM_NOW, &k) == 0 && k.status == SHM_ST_DISABLED,
         "  ... and the store (as a server sees it) has it");
    shm_key_history(s, "k-a2", ev, SHM_HISTORY_RING, &nev);
    T_OK(nev > 0 && ev[nev - 1].type == SHM_EV_DISABLE &&
             strncmp(ev[nev - 1].text, "llmgatectl uid ", 15) == 0,
         "  ... recorded in the key's history with the actor");
    rc = run("--state %s disable k-a2", dir);
    expect(rc, 0, "k-a2: already disabled", "disable again says so");
    rc = run("--state %s enable k-a2", dir);
    expect(rc, 0, "k-a2: disabled -> active", "enable");
    rc = run("--state %s cooldown k-a2 1m30s", dir);
    expect(rc, 0, "k-a2: active -> cooling 1m30s (until ", "cooldown 1m30s");
    T_OK(shm_key_get(s, "k-a2", SHM_NOW, &k) == 0 && k.status == SHM_ST_COOLING, "  ... stored");
    rc = run("--state %s cooldown k-a2 45", dir);
    expect(rc, 0, " -> cooling 45s (until ", "cooldown in plain seconds replaces it");
    rc = run("--state %s enable k-b1", dir);
    expect(rc, 0, "k-b1: already depleted until 00:00Z", "enable does not lift a used-up RPD");
    rc = run("--state %s reset k-b1 --rpd", dir);
    expect(rc, 0, "k-b1: reset rpd 3/3 -> 0/3; status circuit open ", "reset --rpd");
    rc = run("--state %s reset k-a1", dir);
    expect(rc, 0, "k-a1: reset rpm 21/100 -> 0/100, rpd 21/1000 -> 0/1000, tpm ",
           "reset (default: rpm, rpd, tpm)");
    rc = run("--state %s reset k-a1 --all", dir);
    expect(rc, 0, "counters (requests 21 -> 0", "reset --all clears the counters");
    T_OK(shm_key_get(s, "k-a1", SHM_NOW, &k) == 0 && k.requests == 0 && k.rpm_used == 0,
         "  ... stored");
    rc = run("--state %s prune", dir);
    expect(rc, 0, "pruned 1 orphaned key: k-old", "prune names what it deleted");
    rc = run("--state %s prune", dir);
    expect(rc, 0, "no orphaned keys: nothing pruned", "prune again");
    rc = run("--state %s key k-old", dir);
    expect(rc, 3, "no key \"k-old\"", "a pruned key is gone (exit 3)");
}

static void test_exit_codes(const char *parent, const char *dir)
{
    char path[600], cfg[700];

    expect(run("--state %s key nosuch", dir), 3, "no key \"nosuch\" in the store", "key: 3");
    expect(run("--state %s disable nosuch", dir), 3, "no key \"nosuch\"", "disable: 3");
    expect(run("--state %s cooldown nosuch 5m", dir), 3, NULL, "cooldown: 3");
    expect(run("--state %s/nothing keys", parent), 2, "no store in ", "missing dir: 2");
    T_OK(strstr(out, "start it once to create the store"), "  ... says what to do");
    snprintf(path, sizeof(path), "%s/empty", parent);
    mkdir(path, 0700);
    expect(run("--state %s keys", path), 2, "no store in ", "dir without a store: 2");
    expect(run("--state %s disable k-a1", path), 2, "no store in ",
           "an action never creates a store: 2");
    struct stat st;
    snprintf(cfg, sizeof(cfg), "%s/data.mdb", path);
    T_OK(stat(cfg, &st) != 0, "  ... and none was created");
    expect(run("keys </dev/null"), 1, "where is the store?", "no store given: 1");
    expect(run("--state %s", dir), 1, "usage:", "no command: 1");
    expect(run("--state %s frobnicate", dir), 1, "unknown command", "unknown command: 1");
    expect(run("--state %s keys --bogus", dir), 1, "unknown option", "unknown option: 1");
    expect(run("--state %s key", dir), 1, "key takes one argument", "missing argument: 1");
    expect(run("--state %s cooldown k-a1 5parsecs", dir), 1, "is not a duration",
           "bad duration: 1");
    expect(run("--state %s cooldown k-a1 0", dir), 1, "is not a duration", "zero duration: 1");
    expect(run("--state %s keys --sort bogus", dir), 1, "unknown column", "bad --sort: 1");
    expect(run("--state %s keys --status sleepy", dir), 1, "unknown state", "bad --status: 1");
    expect(run("--state %s disable k-a1 --json", dir), 1, "--json does not apply to disable",
           "--json on an action: 1");
    expect(run("--state %s keys --model m", dir), 1, "--model needs the server's config",
           "--model without a config: 1");
    expect(run("--state %s watch </dev/null", dir), 1, "watch needs a terminal",
           "watch without a terminal: 1");
    expect(run("--help"), 0, "Exit codes: 0 ok, 1 usage error", "--help: 0");
}

static void test_lookup(const char *parent, const char *dir)
{
    char cfg[600], rel[700];
    FILE *f;

    snprintf(cfg, sizeof(cfg), "%s/llmgate.yaml", parent);
    f = fopen(cfg, "w");
    fprintf(f,
            "listen: [\"127.0.0.1:0\"]\n"
            "state_dir: %s\n"
            "providers:\n"
            "  - name: pa\n"
            "    base_url: http://127.0.0.1:9/v1\n"
            "    keys:\n"
            "      - {name: k-a1, secret_env: CLI_TEST_UNSET_1}\n"
            "      - {name: k-a2, secret_file: /nonexistent/secret}\n"
            "  - name: pb\n"
            "    base_url: http://127.0.0.1:9/v1\n"
            "    keys:\n"
            "      - {name: k-b1, secret_env: CLI_TEST_UNSET_2}\n"
            "      - {name: k-b2, secret_env: CLI_TEST_UNSET_3}\n"
            "models:\n"
            "  - {name: m-a, aliases: [alias-a], deployments: [{provider: pa, model: x}]}\n"
            "  - {name: m-b, deployments: [{provider: pb, model: y}]}\n",
            dir);
    fclose(f);
    unsetenv("CLI_TEST_UNSET_1");
    expect(run("--config %s keys", cfg), 0, "k-b2", "--config finds state_dir, no secrets needed");
    expect(run("--config %s keys --model alias-a", cfg), 0, "k-a1", "--model by alias");
    T_OK(!strstr(out, "k-b1"), "  ... only the keys of the model's providers");
    expect(run("--config %s keys --model nosuch", cfg), 1, "no model or alias \"nosuch\"",
           "unknown model: 1");
    T_OK(strstr(out, "(models: m-a, m-b)") != NULL, "  ... lists the models");
    expect(run("--state /nonexistent keys --config %s --model m-b", cfg), 2, "/nonexistent",
           "--state wins over --config");
    snprintf(rel, sizeof(rel), "%s/bad.yaml", parent);
    f = fopen(rel, "w");
    fprintf(f, "listen: nope\n");
    fclose(f);
    expect(run("--config %s keys", rel), 2, "cannot use the config", "broken config: 2");
}

static void test_env(const char *dir, const char *parent)
{
    char cfg[600];
    int rc;

    snprintf(cfg, sizeof(cfg), "%s/llmgate.yaml", parent);
    setenv("LLMGATE_STATE_DIR", dir, 1);
    rc = run("keys");
    expect(rc, 0, "k-b1", "LLMGATE_STATE_DIR");
    setenv("LLMGATE_CONFIG", "/nonexistent.yaml", 1);
    expect(run("keys"), 0, "k-b1", "LLMGATE_STATE_DIR wins over LLMGATE_CONFIG");
    unsetenv("LLMGATE_STATE_DIR");
    expect(run("keys"), 2, "/nonexistent.yaml", "LLMGATE_CONFIG is used last");
    setenv("LLMGATE_CONFIG", cfg, 1);
    expect(run("keys --model m-b"), 0, "k-b2", "LLMGATE_CONFIG: store and --model");
    unsetenv("LLMGATE_CONFIG");
}

/* Put size bytes of data under key in the database db of the (closed) store in dir, with raw
 * LMDB, behind the store's back. 0 or an LMDB code. */
static int raw_put(const char *dir, const char *db, const char *key, const void *data, size_t size)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_val k = {strlen(key), (void *)key}, d = {size, (void *)data};
    int rc = mdb_env_create(&env);

    if (rc != 0)
        return rc;
    mdb_env_set_maxdbs(env, 8);
    rc = mdb_env_open(env, dir, 0, 0600);
    rc = rc ? rc : mdb_txn_begin(env, NULL, 0, &txn);
    rc = rc ? rc : mdb_dbi_open(txn, db, 0, &dbi);
    rc = rc ? rc : mdb_put(txn, dbi, &k, &d, 0);
    rc = rc ? rc : mdb_txn_commit(txn);
    mdb_env_close(env);
    return rc;
}

static void test_version(const char *parent)
{
    char dir[600];
    uint32_t v = 99;
    shm_t *s;

    snprintf(dir, sizeof(dir), "%s/v99", parent);
    s = tu_open(dir, SHM_NOW);
    shm_store_close(s);
    T_EQ_INT(raw_put(dir, "meta", "schema_version", &v, sizeof(v)), 0,
             "a store of schema 99 written");
    expect(run("--state %s keys", dir), 2, "schema version 99 is newer", "version mismatch: 2");
    T_OK(strstr(out, "use the llmgatectl of the same release") != NULL, "  ... says what to do");
    expect(run("--state %s disable k", dir), 2, "schema version 99", "  ... also for actions");
}

/* A key record damaged behind the store's back (3 bytes): the readers refuse the store with
 * exit 2 and a message that names the record and says what to do, never a crash. */
static void test_corrupt(const char *parent)
{
    char dir[600];
    shm_key_spec_t sp[2] = {tu_spec("k-x", "p", 0, 0, 0, 0), tu_spec("k-y", "p", 0, 0, 0, 0)};
    shm_t *s;

    snprintf(dir, sizeof(dir), "%s/corrupt", parent);
    s = tu_open(dir, SHM_NOW);
    T_OK(s && shm_keys_sync(s, sp, 2, SHM_NOW, NULL) == 0, "a store with two keys");
    shm_store_close(s);
    T_EQ_INT(raw_put(dir, "keys", "k-x", "abc", 3), 0, "k-x's record overwritten with 3 bytes");
    expect(run("--state %s keys", dir), 2, "key record \"k-x\" (database keys): 3 bytes",
           "keys: refused, exit 2, the record named");
    T_OK(strstr(out, "remove the state dir") != NULL, "  ... says what to do");
    expect(run("--state %s key k-x", dir), 2, "key record \"k-x\"", "key k-x: refused too");
    expect(run("--state %s key k-y", dir), 0, "k-y", "key k-y: the sound key still reads");
    expect(run("--state %s disable k-x", dir), 2, "3 bytes", "disable k-x: refused");
    expect(run("--state %s prune", dir), 2, "key record \"k-x\"", "prune: refused");
}

int main(int argc, char **argv)
{
    char parent[256], dir[300];
    shm_resv_t inflight;
    shm_t *s;

    if (argc == 3 && strcmp(argv[1], "--fill") == 0) {
        s = fill_store(argv[2], &inflight);
        shm_store_close(s);
        return s ? 0 : 1;
    }
    ctl_bin = getenv("LLMGATECTL");
    if (!ctl_bin) {
        printf("1..0 # SKIP LLMGATECTL (the llmgatectl binary) not set\n");
        return 0;
    }
    unsetenv("LLMGATE_STATE_DIR");
    unsetenv("LLMGATE_CONFIG");
    tu_mkdir(parent, sizeof(parent), dir, sizeof(dir));
    s = fill_store(dir, &inflight); /* kept open: the in-flight reservation stays counted */
    T_OK(s != NULL, "test store filled");
    if (s) {
        test_reads(dir);
        test_lookup(parent, dir);
        test_env(dir, parent);
        test_actions(dir, s);
        test_exit_codes(parent, dir);
        test_version(parent);
        test_corrupt(parent);
        shm_store_close(s);
    }
    tu_rmdir(parent);
    return t_done();
}
