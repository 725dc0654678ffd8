/* obs_test.c - the observability hooks with a real store: request metrics and the store's
 * families in one scrape, readiness flipping to 503 and back as keys are disabled, cooled
 * down or their circuit opens (fallbacks count), the access log file, and the admin
 * listener answering /metrics, /health, /health/full over HTTP. */
#include <stdlib.h>
#include <string.h>

#include "obs_tutil.h"
#include "server/obs/obs.h"
#include "t.h"

static char dir[64], yaml[4096];

/* m1 -> p1 (k1, k2), falls back to m2 -> p2 (k3); m3 -> p2 (k3). */
static void make_yaml(void)
{
    snprintf(yaml, sizeof(yaml),
             "listen: [\"127.0.0.1:0\"]\n"
             "allow_inline_secrets: true\n"
             "allow_unauthenticated: true\n"
             "state_dir: %s/state\n"
             "metrics: {listen: \"127.0.0.1:0\"}\n"
             "access_log: {path: %s/access.log}\n"
             "providers:\n"
             "  - name: p1\n"
             "    base_url: http://127.0.0.1:9/v1\n"
             "    keys:\n"
             "      - {name: k1, secret: sk-obs-secret-1, rpm: 100}\n"
             "      - {name: k2, secret: sk-obs-secret-2}\n"
             "  - name: p2\n"
             "    base_url: http://127.0.0.1:9/v1\n"
             "    keys:\n"
             "      - {name: k3, secret: sk-obs-secret-3}\n"
             "models:\n"
             "  - name: m1\n"
             "    deployments: [{provider: p1, model: up1}]\n"
             "    fallbacks: [m2]\n"
             "    input_price_per_m: 2\n"
             "    output_price_per_m: 4\n"
             "  - name: m2\n"
             "    deployments: [{provider: p2, model: up2}]\n"
             "  - name: m3\n"
             "    deployments: [{provider: p2, model: up3}]\n",
             dir, dir);
}

static int readiness(char **body)
{
    buf_t b = {0};
    int st = obs_render_readiness(&b);

    *body = b.data;
    return st;
}

static double scrape(const char *series)
{
    buf_t b = {0};
    double v;

    obs_render_metrics(&b);
    v = tu_prom_value(b.data ? b.data : "", series);
    buf_free(&b);
    return v;
}

static void test_readiness(shm_t *shm)
{
    char *body = NULL;
    int st;

    st = readiness(&body);
    T_EQ_INT(st, 200, "ready with every key active");
    T_OK(body && strstr(body, "{\"status\":\"ready\",\"models\":[{\"model\":\"m1\",\"ready\":true,"
                              "\"admissible_keys\":3,\"keys\":3}"),
         "m1 counts its keys and its fallback's: %s", body);
    free(body);

    shm_key_disable(shm, "k3", "test", SHM_NOW);
    st = readiness(&body);
    T_EQ_INT(st, 503, "k3 disabled: m2 and m3 have no admissible key");
    T_OK(body && strstr(body, "\"status\":\"not_ready\"") &&
             strstr(body, "{\"model\":\"m1\",\"ready\":true,\"admissible_keys\":2,\"keys\":3}") &&
             strstr(body, "\"missing\":[{\"model\":\"m2\",\"reason\":\"no admissible key\","
                          "\"keys\":[{\"key\":\"k3\",\"provider\":\"p2\",\"state\":\"disabled\"}]}"
                          ",{\"model\":\"m3\""),
         "503 names the models and why their keys are out: %s", body);
    free(body);
    T_EQ_INT(scrape("llmgate_model_ready{model=\"m3\"}"), 0, "llmgate_model_ready 0");
    T_EQ_INT(scrape("llmgate_model_admissible_keys{model=\"m1\"}"), 2,
             "llmgate_model_admissible_keys");
    T_EQ_INT(scrape("llmgate_key_status{key=\"k3\",provider=\"p2\",status=\"disabled\"}"), 1,
             "key status gauge: disabled 1");
    T_EQ_INT(scrape("llmgate_key_status{key=\"k3\",provider=\"p2\",status=\"active\"}"), 0,
             "key status gauge: active 0");

    shm_key_disable(shm, "k1", "test", SHM_NOW);
    shm_key_cooldown(shm, "k2", 60000, "test", SHM_NOW);
    st = readiness(&body);
    T_OK(st == 503 && body && strstr(body, "\"missing\":[{\"model\":\"m1\"") &&
             strstr(body, "{\"key\":\"k2\",\"provider\":\"p1\",\"state\":\"cooling\"}"),
         "m1: k1 disabled, k2 cooling, fallback k3 disabled: not ready");
    free(body);
    {
        double left = scrape("llmgate_key_cooldown_seconds{key=\"k2\",provider=\"p1\"}");
        T_OK(left > 55 && left <= 60, "cooldown seconds left (%.3f)", left);
    }
    T_EQ_INT(scrape("llmgate_key_status{key=\"k2\",provider=\"p1\",status=\"cooling\"}"), 1,
             "key status gauge: cooling");

    shm_key_enable(shm, "k3", NULL, SHM_NOW);
    shm_provider_set_circuit(shm, "p2", SHM_CIRCUIT_OPEN, (int64_t)time(NULL) * 1000 + 600000,
                             SHM_RS_SERVER_ERROR, SHM_NOW);
    st = readiness(&body);
    T_OK(st == 503 && body &&
             strstr(body, "{\"key\":\"k3\",\"provider\":\"p2\",\"state\":\"circuit_open\"}"),
         "k3 active but its provider's circuit open: not admissible");
    free(body);
    T_EQ_INT(scrape("llmgate_provider_circuit_state{provider=\"p2\",state=\"open\"}"), 1,
             "circuit state gauge");
    T_OK(scrape("llmgate_provider_circuit_open_seconds{provider=\"p2\"}") > 500,
         "circuit open seconds left");

    shm_provider_set_circuit(shm, "p2", SHM_CIRCUIT_CLOSED, 0, SHM_RS_NONE, SHM_NOW);
    shm_key_enable(shm, "k1", NULL, SHM_NOW);
    shm_key_enable(shm, "k2", NULL, SHM_NOW);
    st = readiness(&body);
    T_EQ_INT(st, 200, "everything enabled again: 200");
    free(body);
}

static void test_metrics(shm_t *shm, const cfg_t *cfg)
{
    obs_record_t r;
    shm_resv_t resv;
    shm_outcome_t o;
    const char *names[1] = {"k1"};
    shm_admit_req_t ar = {.names = names, .count = 1, .tokens = 10};
    buf_t b = {0};
    int bad, samples;

    memset(&r, 0, sizeof(r));
    r.start_ms = (int64_t)time(NULL) * 1000;
    r.request_id = "obs-test-1";
    r.model = "m1";
    r.provider = "p1";
    r.key = "k1";
    r.attempts = 1;
    r.status = 200;
    r.upstream_status = 200;
    r.ttfb_s = 0.1;
    r.duration_s = 0.5;
    r.upstream_s = 0.49;
    r.prompt_tokens = 1000;
    r.completion_tokens = 500;
    r.cost_usd = obs_cost_usd(&cfg->models[0], 1000, 500);
    T_OK(r.cost_usd > 0.003999 && r.cost_usd < 0.004001,
         "obs_cost_usd: 1000 x $2/M + 500 x $4/M = $0.004");
    T_OK(!strcmp(obs_outcome_reason(SHM_CL_429, SHM_RS_QUOTA), "quota") &&
             !strcmp(obs_outcome_reason(SHM_CL_429, SHM_RS_RATE_LIMITED), "rate_limited") &&
             !strcmp(obs_outcome_reason(SHM_CL_5XX, SHM_RS_NONE), "server_error") &&
             !strcmp(obs_outcome_reason(SHM_CL_TIMEOUT, SHM_RS_NONE), "timeout") &&
             !strcmp(obs_outcome_reason(SHM_CL_CONNECT, SHM_RS_NONE), "connect") &&
             !strcmp(obs_outcome_reason(SHM_CL_AUTH, SHM_RS_AUTH), "auth") &&
             !strcmp(obs_outcome_reason(SHM_CL_OTHER, SHM_RS_NONE), "other"),
         "obs_outcome_reason maps outcomes to the reasons of the metrics");
    obs_inflight_add(0, 1);
    obs_request_done(0, &r);
    obs_request_done(1, &r);
    obs_retry(1, "rate_limited");
    obs_rotation(0, "auth");

    /* the store's side: one admitted and recorded request on k1 */
    if (shm_key_admit(shm, &ar, SHM_NOW, &resv, NULL) == 0) {
        shm_outcome_init(&o, SHM_CL_SUCCESS);
        o.total_ms = 500;
        o.prompt_tokens = 1000;
        o.completion_tokens = 500;
        o.cost_micro_usd = 4000;
        shm_key_record(shm, &resv, &o, SHM_NOW);
    }

    T_EQ_INT(obs_render_metrics(&b), 0, "obs_render_metrics");
    bad = tu_prom_check(b.data, &samples);
    T_EQ_INT(bad, 0, "the whole scrape passes the format check (%d samples)", samples);
    T_EQ_INT(tu_prom_value(b.data, "llmgate_requests_total{model=\"m1\",provider=\"p1\",key=\"k1\","
                                   "status_class=\"2xx\"}"),
             2, "requests from two workers");
    T_EQ_INT(tu_prom_value(b.data, "llmgate_inflight_requests"), 1, "in flight");
    T_EQ_INT(tu_prom_value(b.data, "llmgate_retries_total{reason=\"rate_limited\"}"), 1, "retries");
    T_EQ_INT(tu_prom_value(b.data, "llmgate_rotations_total{reason=\"auth\"}"), 1, "rotations");
    T_OK(tu_prom_value(b.data, "llmgate_cost_usd_total{model=\"m1\"}") > 0.0079, "cost by model");
    T_EQ_INT(tu_prom_value(b.data, "llmgate_key_requests_total{key=\"k1\",provider=\"p1\"}"), 1,
             "the store's request total of k1");
    T_EQ_INT(tu_prom_value(b.data, "llmgate_key_outcomes_total{key=\"k1\",provider=\"p1\","
                                   "class=\"success\"}"),
             1, "the store's outcomes by class");
    T_EQ_INT(tu_prom_value(b.data, "llmgate_key_tokens_total{key=\"k1\",provider=\"p1\","
                                   "type=\"completion\"}"),
             500, "the store's token totals");
    T_OK(tu_prom_value(b.data, "llmgate_key_cost_usd_total{key=\"k1\",provider=\"p1\"}") == 0.004,
         "the store's cost in USD");
    T_EQ_INT(tu_prom_value(b.data, "llmgate_key_quota_limit{key=\"k1\",provider=\"p1\","
                                   "limit=\"rpm\"}"),
             100, "quota limit");
    T_EQ_INT(tu_prom_value(b.data, "llmgate_key_quota_used{key=\"k1\",provider=\"p1\","
                                   "limit=\"rpm\"}"),
             1, "quota used");
    T_EQ_INT(tu_prom_value(b.data, "llmgate_store_up"), 1, "store up");
    T_EQ_INT(tu_prom_value(b.data, "llmgate_model_ready{model=\"m1\"}"), 1, "model ready");
    T_OK(!strstr(b.data, "sk-obs-secret"), "no secret in the scrape");
    obs_inflight_add(0, -1);
    buf_free(&b);
}

/* ---- the admin listener ------------------------------------------------------------------ */

typedef struct client_s {
    int port;
    uv_async_t *done;
    char *resp[8];
} client_t;

static char *http(int port, const char *req)
{
    struct sockaddr_in a;
    char *out = calloc(1, 1 << 20);
    size_t got = 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        send(fd, req, strlen(req), MSG_NOSIGNAL) > 0) {
        ssize_t r;
        while (got < (1 << 20) - 1 && (r = recv(fd, out + got, (1 << 20) - 1 - got, 0)) > 0)
            got += (size_t)r;
    }
    close(fd);
    return out;
}

static void client_main(void *arg)
{
    client_t *c = arg;

    c->resp[0] = http(c->port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    c->resp[1] = http(c->port, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    c->resp[2] = http(c->port, "GET /health/full?verbose=1 HTTP/1.1\r\nHost: x\r\n\r\n");
    c->resp[3] = http(c->port, "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n");
    c->resp[4] = http(c->port, "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    c->resp[5] = http(c->port, "HEAD /health HTTP/1.1\r\nHost: x\r\n\r\n");
    c->resp[6] = http(c->port, "GARBAGE\r\n\r\n");
    c->resp[7] =
        http(c->port, "GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
    uv_async_send(c->done);
}

static void on_done_cb(uv_async_t *a)
{
    obs_admin_stop();
    uv_close((uv_handle_t *)a, NULL);
}

static void test_admin(void)
{
    uv_loop_t loop;
    uv_async_t done;
    uv_thread_t th;
    client_t c;
    char err[256];
    int bad, samples = 0;

    memset(&c, 0, sizeof(c));
    uv_loop_init(&loop);
    T_EQ_INT(obs_admin_start(&loop, err, sizeof(err)), 0, "admin listener starts");
    c.port = obs_admin_port();
    T_OK(c.port > 0, "on a port (%d)", c.port);
    uv_async_init(&loop, &done, on_done_cb);
    c.done = &done;
    uv_thread_create(&th, client_main, &c);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_thread_join(&th);
    T_EQ_INT(uv_loop_close(&loop), 0, "every handle closed after obs_admin_stop");
    T_OK(strncmp(c.resp[0], "HTTP/1.1 200 OK\r\n", 17) == 0 &&
             strstr(c.resp[0], "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n") &&
             strstr(c.resp[0], "Connection: close\r\n"),
         "GET /metrics: 200, exposition content type, Connection: close");
    {
        char *body = strstr(c.resp[0], "\r\n\r\n");
        bad = body ? tu_prom_check(body + 4, &samples) : 1;
        T_EQ_INT(bad, 0, "the body passes the format check (%d samples)", samples);
    }
    T_OK(strncmp(c.resp[1], "HTTP/1.1 200 OK\r\n", 17) == 0 &&
             strstr(c.resp[1], "\r\n\r\n{\"status\":\"ok\"}"),
         "GET /health: 200 {\"status\":\"ok\"}");
    T_OK(strncmp(c.resp[2], "HTTP/1.1 200 OK\r\n", 17) == 0 &&
             strstr(c.resp[2], "{\"status\":\"ready\""),
         "GET /health/full (query ignored): 200 ready");
    T_OK(strncmp(c.resp[3], "HTTP/1.1 404 ", 13) == 0 && strstr(c.resp[3], "\"error\""),
         "unknown path: 404 with an error body");
    T_OK(strncmp(c.resp[4], "HTTP/1.1 405 ", 13) == 0, "POST: 405");
    T_OK(strncmp(c.resp[5], "HTTP/1.1 200 OK\r\n", 17) == 0 &&
             strstr(c.resp[5], "Content-Length: 15\r\n") && strstr(c.resp[5], "\r\n\r\n")[4] == 0,
         "HEAD: the head without the body");
    T_OK(strncmp(c.resp[6], "HTTP/1.1 400 ", 13) == 0, "garbage: 400");
    T_OK(strncmp(c.resp[7], "HTTP/1.1 413 ", 13) == 0, "a request body: 413");
    for (int i = 0; i < 8; i++)
        free(c.resp[i]);
}

int main(void)
{
    cfg_t *cfg;
    cfg_ref_t *ref;
    shm_t *shm = NULL;
    shm_opts_t so;
    char err[512], path[128], *log;

    tu_tmpdir(dir, sizeof(dir));
    make_yaml();
    cfg = tu_cfg(yaml);
    T_OK(cfg != NULL, "configuration loads");
    if (!cfg)
        return t_done();
    memset(&so, 0, sizeof(so));
    so.dir = cfg->state_dir;
    if (shm_store_open(&so, SHM_NOW, &shm, err, sizeof(err)) != 0 ||
        shm_keys_sync_cfg(shm, cfg, SHM_NOW, NULL) != 0) {
        T_OK(0, "store: %s", err);
        return t_done();
    }
    ref = cfgref_new(cfg, 1);
    T_EQ_INT(obs_init(ref, shm, 2, err, sizeof(err)), 0, "obs_init");
    T_EQ_INT(obs_init(ref, shm, 2, err, sizeof(err)), -1, "a second obs_init is refused");
    test_readiness(shm);
    test_metrics(shm, cfg);
    test_admin();
    {
        /* SIGHUP: a new configuration with one more model; the old one is freed at once
         * (obs holds no pointer into it any more: ASan would tell) */
        char yaml2[sizeof(yaml) + 128], *body = NULL;
        cfg_t *cfg2;
        cfg_ref_t *ref2;
        buf_t b = {0};
        snprintf(yaml2, sizeof(yaml2),
                 "%s  - name: m4\n    deployments: [{provider: p1, model: up4}]\n", yaml);
        cfg2 = tu_cfg(yaml2);
        ref2 = cfg2 ? cfgref_new(cfg2, 2) : NULL;
        if (ref2) {
            obs_reload(ref2);
            cfgref_put(ref2);
            cfgref_put(ref); /* the first configuration goes now */
            ref = NULL;
            T_EQ_INT(readiness(&body), 200, "after a reload: ready");
            T_OK(body && strstr(body, "{\"model\":\"m4\",\"ready\":true"),
                 "readiness follows the new configuration's models");
            free(body);
            obs_render_metrics(&b);
            T_OK(b.data && strstr(b.data, "llmgate_model_ready{model=\"m4\"} 1\n") &&
                     strstr(b.data, "llmgate_requests_total{model=\"m1\",provider=\"p1\","
                                    "key=\"k1\",status_class=\"2xx\"} 2\n"),
                 "metrics after a reload: new models, old series kept");
            buf_free(&b);
        }
    }
    obs_shutdown();
    obs_request_done(0, NULL); /* after shutdown: no-op */

    snprintf(path, sizeof(path), "%s/access.log", dir);
    log = tu_read_file(path);
    T_OK(log && strstr(log, "\"request_id\":\"obs-test-1\"") &&
             strchr(strchr(log, '\n') + 1, '\n') && !strstr(log, "sk-obs-secret"),
         "the access log file has both lines, no secret");
    free(log);
    shm_store_close(shm);
    cfgref_put(ref); /* frees cfg: obs dropped its own reference */
    tu_rmtree(dir);
    return t_done();
}
