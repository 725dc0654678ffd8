/* metrics_test.c - unit tests of server/obs/metrics.c: label resolution (aliases, unknown
 * names), every family's values against what was recorded, the format, and shards written
 * by several threads at once while another thread scrapes (run it under TSan too). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "obs_tutil.h"
#include "server/obs/metrics.h"
#include "t.h"

static const char *yaml = "listen: [\"127.0.0.1:0\"]\n"
                          "allow_inline_secrets: true\n"
                          "allow_unauthenticated: true\n"
                          "providers:\n"
                          "  - name: p1\n"
                          "    base_url: http://127.0.0.1:9/v1\n"
                          "    keys:\n"
                          "      - {name: k1, secret: sk-never-shown-1}\n"
                          "      - {name: k2, secret: sk-never-shown-2}\n"
                          "  - name: p2\n"
                          "    base_url: http://127.0.0.1:9/v1\n"
                          "    keys:\n"
                          "      - {name: k3, secret: sk-never-shown-3}\n"
                          "models:\n"
                          "  - name: m1\n"
                          "    aliases: [one]\n"
                          "    deployments: [{provider: p1, model: up1}]\n"
                          "    fallbacks: [\"m\\\"2\"]\n"
                          "    input_price_per_m: 1\n"
                          "  - name: \"m\\\"2\"\n"
                          "    deployments: [{provider: p2, model: up2}]\n";

static obs_record_t rec(const char *model, const char *prov, const char *key, int status)
{
    obs_record_t r;

    memset(&r, 0, sizeof(r));
    r.model = model;
    r.provider = prov;
    r.key = key;
    r.status = status;
    r.attempts = 1;
    r.ttfb_s = 0.02;
    r.duration_s = 0.3;
    r.upstream_s = 0.2996;
    r.prompt_tokens = 10;
    r.completion_tokens = 5;
    r.cost_usd = 0.00001;
    r.bytes_in = 100;
    r.bytes_out = 200;
    return r;
}

static void test_values(cfg_t *cfg)
{
    metrics_t *m = NULL;
    buf_t b = {0};
    obs_record_t r;
    int bad, samples;

    T_EQ_INT(metrics_create(cfg, 2, &m), 0, "metrics_create");
    if (!m)
        return;
    T_EQ_STR(metrics_model_name(m, "one"), "m1", "an alias resolves to its model");
    T_OK(metrics_model_name(m, "nope") == NULL, "an unknown model resolves to none");

    r = rec("one", "p1", "k1", 200);
    metrics_request(m, 0, &r);
    metrics_request(m, 1, &r);
    r = rec("m1", "p1", "k2", 503);
    r.ttfb_s = -1;
    r.duration_s = 150; /* past the last bucket */
    r.upstream_s = 0;
    r.tokens_estimated = 1;
    metrics_request(m, 1, &r);
    r = rec("client-made-up-model", NULL, NULL, 404);
    r.attempts = 0;
    r.prompt_tokens = r.completion_tokens = 0;
    r.cost_usd = 0;
    r.duration_s = 0.001;
    r.upstream_s = 0;
    metrics_request(m, 7, &r);      /* out of range: the last shard */
    r = rec("m1", NULL, "k3", 499); /* provider from the key */
    r.served_model = "m\"2";
    metrics_request(m, 0, &r);
    metrics_retry(m, 0, 0, "timeout");
    metrics_retry(m, 1, 0, "timeout");
    metrics_retry(m, 1, 1, "rate_limited");
    metrics_retry(m, 1, 1, "bogus");
    metrics_retry(m, 1, 1, NULL);
    metrics_inflight(m, 0, 3);
    metrics_inflight(m, 1, -1);

    T_EQ_INT(metrics_render(m, &b), 0, "metrics_render");
    bad = tu_prom_check(b.data, &samples);
    T_EQ_INT(bad, 0, "the output passes the format check (%d samples)", samples);
    T_EQ_INT(tu_prom_value(b.data, "llmgate_requests_total{model=\"m1\",provider=\"p1\",key=\"k1\","
                                   "status_class=\"2xx\"}"),
             2, "requests by an alias count under the model, over two shards");
    T_EQ_INT(tu_prom_value(b.data, "llmgate_requests_total{model=\"m1\",provider=\"p1\",key=\"k2\","
                                   "status_class=\"5xx\"}"),
             1, "a 503 is 5xx");
    T_EQ_INT(tu_prom_value(b.data, "llmgate_requests_total{model=\"\",provider=\"\",key=\"\","
                                   "status_class=\"4xx\"}"),
             1, "an unknown model is the empty label (bounded series)");
    T_OK(!strstr(b.data, "client-made-up-model"), "... and never appears");
    T_EQ_INT(tu_prom_value(b.data, "llmgate_requests_total{model=\"m1\",provider=\"p2\",key=\"k3\","
                                   "status_class=\"4xx\"}"),
             1, "the provider comes from the key when not given");
    T_EQ_INT(tu_prom_value(b.data, "llmgate_request_duration_seconds_bucket{model=\"m1\","
                                   "provider=\"p1\",le=\"0.25\"}"),
             0, "duration 0.3 is not <= 0.25");
    T_EQ_INT(tu_prom_value(b.data, "llmgate_request_duration_seconds_bucket{model=\"m1\","
                                   "provider=\"p1\",le=\"0.5\"}"),
             2, "two durations <= 0.5");
    T_EQ_INT(tu_prom_value(b.data, "llmgate_request_duration_seconds_bucket{model=\"m1\","
                                   "provider=\"p1\",le=\"120\"}"),
             2, "150 s is past the last bound");
    T_EQ_INT(tu_prom_value(b.data, "llmgate_request_duration_seconds_bucket{model=\"m1\","
                                   "provider=\"p1\",le=\"+Inf\"}"),
             3, "+Inf counts everything");
    T_OK(fabs(tu_prom_value(b.data, "llmgate_request_duration_seconds_sum{model=\"m1\","
                                    "provider=\"p1\"}") -
              150.6) < 1e-9,
         "duration sum");
    T_EQ_INT(tu_prom_value(b.data, "llmgate_time_to_first_byte_seconds_count{model=\"m1\","
                                   "provider=\"p1\"}"),
             2, "no ttfb sample without a first byte");
    T_EQ_INT(tu_prom_value(b.data, "llmgate_time_to_first_byte_seconds_bucket{model=\"m1\","
                                   "provider=\"p1\",le=\"0.025\"}"),
             2, "ttfb 0.02 <= 0.025");
    T_EQ_INT(tu_prom_value(b.data, "llmgate_gateway_overhead_seconds_count"), 5,
             "overhead: one sample per request");
    T_EQ_INT(tu_prom_value(b.data, "llmgate_gateway_overhead_seconds_bucket{le=\"0.0005\"}"), 3,
             "overhead = duration - upstream (0.0004 for three of them)");
    T_EQ_INT(tu_prom_value(b.data, "llmgate_gateway_overhead_seconds_bucket{le=\"0.1\"}"), 4,
             "overhead 0.001 within 0.1; 150 s past it");
    T_EQ_INT(tu_prom_value(b.data, "llmgate_tokens_total{model=\"m1\",type=\"prompt\"}"), 30,
             "prompt tokens by model");
    T_EQ_INT(tu_prom_value(b.data, "llmgate_tokens_total{model=\"m\\\"2\",type=\"completion\"}"), 5,
             "tokens count under the serving model; its quote escaped");
    T_OK(fabs(tu_prom_value(b.data, "llmgate_cost_usd_total{model=\"m1\"}") - 0.00003) < 1e-12,
         "cost by model");
    T_EQ_INT(tu_prom_value(b.data, "llmgate_estimated_usage_requests_total{model=\"m1\"}"), 1,
             "estimated usage counted");
    T_EQ_INT(tu_prom_value(b.data, "llmgate_retries_total{reason=\"timeout\"}"), 2,
             "retries by reason, over shards");
    T_EQ_INT(tu_prom_value(b.data, "llmgate_retries_total{reason=\"quota\"}"), 0,
             "every reason is present, 0 too");
    T_EQ_INT(tu_prom_value(b.data, "llmgate_rotations_total{reason=\"rate_limited\"}"), 1,
             "rotations by reason");
    T_EQ_INT(tu_prom_value(b.data, "llmgate_rotations_total{reason=\"other\"}"), 2,
             "unknown and NULL reasons are other");
    T_EQ_INT(tu_prom_value(b.data, "llmgate_received_bytes_total"), 500, "bytes in");
    T_EQ_INT(tu_prom_value(b.data, "llmgate_sent_bytes_total"), 1000, "bytes out");
    T_EQ_INT(tu_prom_value(b.data, "llmgate_inflight_requests"), 2, "in-flight summed");
    T_OK(!strstr(b.data, "sk-never-shown"), "no secret in the metrics");
    T_OK(strstr(b.data, "# HELP llmgate_requests_total ") &&
             strstr(b.data, "# TYPE llmgate_requests_total counter\n") &&
             strstr(b.data, "# TYPE llmgate_request_duration_seconds histogram\n") &&
             strstr(b.data, "# TYPE llmgate_inflight_requests gauge\n"),
         "HELP and TYPE lines");
    buf_free(&b);
    metrics_destroy(m);
}

/* ---- threads ------------------------------------------------------------------------------ */

#define THREADS 4
#define PER     20000

typedef struct targ_s {
    metrics_t *m;
    unsigned id;
} targ_t;

static void writer(void *arg)
{
    targ_t *t = arg;
    static const char *keys[] = {"k1", "k2", "k3"};

    for (int i = 0; i < PER; i++) {
        obs_record_t r = rec("m1", NULL, keys[i % 3], i % 10 ? 200 : 429);
        metrics_inflight(t->m, t->id, 1);
        metrics_request(t->m, t->id, &r);
        if (i % 100 == 0)
            metrics_retry(t->m, t->id, i % 200 == 0, "server_error");
        metrics_inflight(t->m, t->id, -1);
    }
}

static void test_threads(cfg_t *cfg)
{
    metrics_t *m = NULL;
    uv_thread_t th[THREADS];
    targ_t args[THREADS];
    int scrapes = 0, ok = 1;
    double total = 0;
    buf_t b = {0};

    if (metrics_create(cfg, THREADS, &m) != 0)
        return;
    for (unsigned i = 0; i < THREADS; i++) {
        args[i].m = m;
        args[i].id = i;
        uv_thread_create(&th[i], writer, &args[i]);
    }
    /* scrape while they write: every scrape must parse and counters never go down */
    for (int i = 0; i < 50; i++) {
        double t;
        int samples;
        buf_reset(&b);
        ok &= metrics_render(m, &b) == 0 && tu_prom_check(b.data, &samples) == 0;
        t = tu_prom_value(b.data, "llmgate_requests_total{model=\"m1\",provider=\"p1\","
                                  "key=\"k1\",status_class=\"2xx\"}");
        if (!isnan(t)) {
            ok &= t >= total;
            total = t;
        }
        scrapes++;
    }
    for (unsigned i = 0; i < THREADS; i++)
        uv_thread_join(&th[i]);
    T_OK(ok, "%d scrapes during the writes parse, counters monotonic", scrapes);
    buf_reset(&b);
    metrics_render(m, &b);
    {
        double sum = 0;
        const char *keys[] = {"k1", "k2", "k3"}, *provs[] = {"p1", "p1", "p2"};
        for (int k = 0; k < 3; k++)
            for (int c = 0; c < 2; c++) {
                char series[200];
                snprintf(series, sizeof(series),
                         "llmgate_requests_total{model=\"m1\",provider=\"%s\",key=\"%s\","
                         "status_class=\"%s\"}",
                         provs[k], keys[k], c ? "4xx" : "2xx");
                sum += tu_prom_value(b.data, series);
            }
        T_EQ_INT(sum, THREADS * PER, "every request of every thread counted once");
    }
    T_EQ_INT(tu_prom_value(b.data, "llmgate_requests_total{model=\"m1\",provider=\"p1\","
                                   "key=\"k1\",status_class=\"4xx\"}"),
             THREADS * (PER / 30 + (PER % 30 ? 1 : 0)),
             "429s of k1 (every tenth, every third key)");
    T_EQ_INT(tu_prom_value(b.data, "llmgate_request_duration_seconds_count{model=\"m1\","
                                   "provider=\"p1\"}") +
                 tu_prom_value(b.data, "llmgate_request_duration_seconds_count{model=\"m1\","
                                       "provider=\"p2\"}"),
             THREADS * PER, "histogram counts add up");
    T_EQ_INT(tu_prom_value(b.data, "llmgate_retries_total{reason=\"server_error\"}") +
                 tu_prom_value(b.data, "llmgate_rotations_total{reason=\"server_error\"}"),
             THREADS * PER / 100, "retries and rotations add up");
    T_EQ_INT(tu_prom_value(b.data, "llmgate_inflight_requests"), 0, "in-flight back to 0");
    T_EQ_INT(tu_prom_value(b.data, "llmgate_tokens_total{model=\"m1\",type=\"prompt\"}"),
             THREADS * PER * 10.0, "tokens add up");
    buf_free(&b);
    metrics_destroy(m);
}

/* ---- reload ------------------------------------------------------------------------------ */

static const char *yaml2 = "listen: [\"127.0.0.1:0\"]\n"
                           "allow_inline_secrets: true\n"
                           "allow_unauthenticated: true\n"
                           "providers:\n"
                           "  - name: p1\n"
                           "    base_url: http://127.0.0.1:9/v1\n"
                           "    keys:\n"
                           "      - {name: k9, secret: sk-never-shown-9}\n"
                           "  - name: p3\n"
                           "    base_url: http://127.0.0.1:9/v1\n"
                           "    keys:\n"
                           "      - {name: k2, secret: sk-never-shown-2}\n"
                           "models:\n"
                           "  - name: m5\n"
                           "    aliases: [five, one]\n"
                           "    deployments: [{provider: p1, model: up5}]\n";

typedef struct rarg_s {
    metrics_t *m;
    int stop;
    uv_mutex_t lock;
} rarg_t;

static void reload_writer(void *arg)
{
    rarg_t *a = arg;

    for (int i = 0;; i++) {
        obs_record_t r = rec(i % 2 ? "one" : "m5", NULL, i % 2 ? "k2" : "k9", 200);
        int stop;
        metrics_request(a->m, 0, &r);
        uv_mutex_lock(&a->lock);
        stop = a->stop;
        uv_mutex_unlock(&a->lock);
        if (stop)
            break;
    }
}

static void test_reload(cfg_t *cfg)
{
    cfg_t *cfg2 = tu_cfg(yaml2);
    metrics_t *m = NULL;
    obs_record_t r;
    buf_t b = {0};
    uv_thread_t th;
    rarg_t a;
    int bad, samples;

    if (!cfg2 || metrics_create(cfg, 1, &m) != 0) {
        T_OK(0, "reload set-up");
        return;
    }
    r = rec("m1", "p1", "k1", 200);
    metrics_request(m, 0, &r);
    T_EQ_INT(metrics_reload(m, cfg2), 0, "metrics_reload");
    T_EQ_STR(metrics_model_name(m, "five"), "m5", "a new alias resolves");
    T_EQ_STR(metrics_model_name(m, "one"), "m5", "an alias follows the new configuration");
    T_EQ_STR(metrics_model_name(m, "m1"), "m1", "an old model still resolves");
    r = rec("five", NULL, "k2", 200);
    metrics_request(m, 0, &r);
    metrics_render(m, &b);
    bad = tu_prom_check(b.data, &samples);
    T_EQ_INT(bad, 0, "the scrape after a reload passes the format check");
    T_EQ_INT(tu_prom_value(b.data, "llmgate_requests_total{model=\"m1\",provider=\"p1\",key=\"k1\","
                                   "status_class=\"2xx\"}"),
             1, "series of the old configuration keep their labels");
    T_EQ_INT(tu_prom_value(b.data, "llmgate_requests_total{model=\"m5\",provider=\"p3\",key=\"k2\","
                                   "status_class=\"2xx\"}"),
             1, "a key that moved to another provider is counted under its new one");
    buf_free(&b);

    /* reloads while a worker records: no race (TSan), nothing lost */
    memset(&a, 0, sizeof(a));
    a.m = m;
    uv_mutex_init(&a.lock);
    uv_thread_create(&th, reload_writer, &a);
    for (int i = 0; i < 200; i++) {
        buf_t t = {0};
        metrics_reload(m, i % 2 ? cfg : cfg2);
        metrics_render(m, &t);
        buf_free(&t);
    }
    uv_mutex_lock(&a.lock);
    a.stop = 1;
    uv_mutex_unlock(&a.lock);
    uv_thread_join(&th);
    uv_mutex_destroy(&a.lock);
    metrics_render(m, &b);
    T_EQ_INT(tu_prom_check(b.data, &samples), 0, "200 reloads during writes and scrapes");
    T_OK(!strstr(b.data, "sk-never-shown"), "no secret");
    buf_free(&b);
    metrics_destroy(m);
    cfg_free(cfg2);
}

int main(void)
{
    cfg_t *cfg = tu_cfg(yaml);

    T_OK(cfg != NULL, "test configuration loads");
    if (!cfg)
        return t_done();
    test_values(cfg);
    test_threads(cfg);
    test_reload(cfg);
    cfg_free(cfg);
    return t_done();
}
