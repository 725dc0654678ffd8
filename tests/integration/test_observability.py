"""Observability through the real server: /metrics values against the requests this test
sent (and against the store, as llmgatectl shows it), `promtool check metrics` on a scrape,
`promtool check/test rules` on config/alerts.yml, a real Prometheus server scraping llmgate
on loopback and answering a query; /health and /health/full flipping to 503 when every key
of a model is disabled (llmgatectl) and back; the access log (JSON lines, no secret,
x-request-id, SIGUSR1 reopen after a rename); the alert webhook against a local receiver;
/metrics on the main listener.

Binaries: LLMGATE_BIN, MOCK_BIN, LLMGATECTL_BIN (meson sets them); promtool and
prometheus from the Debian package `prometheus` (tests that need them are skipped, saying
so, when they are missing)."""

import glob
import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse
import urllib.request

from harness import Gateway, Mock, Proc, get, post_json, wait_until

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROMTOOL = shutil.which("promtool")
PROMETHEUS = shutil.which("prometheus")


def find_ctl():
    p = os.environ.get("LLMGATECTL_BIN")
    if p and os.access(p, os.X_OK):
        return p
    found = sorted(glob.glob(os.path.join(ROOT, "build*", "cli", "llmgatectl")))
    return found[0] if found else None


LLMGATECTL = find_ctl()

SECRETS = {"k1": "sk-obs-secret-one", "k2": "sk-obs-secret-two", "k3": "sk-obs-secret-three"}
PRICE_IN, PRICE_OUT = 1.5, 6.0  # USD per million tokens of model m1


def wired():
    """The request path calls the hooks (the gateway must be wired for these tests)."""
    for f in glob.glob(os.path.join(ROOT, "server", "*.c")):
        if os.path.basename(f) in ("obs.c", "metrics.c", "accesslog.c", "alerts.c",
                                   "admin_http.c", "prom.c"):
            continue
        with open(f) as fh:
            if "obs_request_done" in fh.read():
                return True
    return False


# ---- the exposition format ----------------------------------------------------------------

SAMPLE_RX = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$')
LABEL_RX = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def unescape(v):
    return re.sub(r'\\(.)', lambda m: "\n" if m.group(1) == "n" else m.group(1), v)


def parse_metrics(text):
    """[(name, {label: value}, float)] of every sample; asserts each line is well formed."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE_RX.match(line)
        assert m, f"bad sample line: {line!r}"
        labels = {k: unescape(v) for k, v in LABEL_RX.findall(m.group(2) or "")}
        out.append((m.group(1), labels, float(m.group(3))))
    return out


def total(samples, name, **want):
    """Sum of the samples of name whose labels include want."""
    return sum(v for n, l, v in samples
               if n == name and all(l.get(k) == w for k, w in want.items()))


# ---- a webhook receiver ---------------------------------------------------------------------

class Receiver:
    """Records the JSON bodies POSTed to it; answers 204."""

    def __init__(self):
        self.bodies = []
        self.lock = threading.Lock()
        rx = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                with rx.lock:
                    rx.bodies.append((self.path, json.loads(body)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.srv.server_address[1]
        self.t = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.t.start()

    def events(self):
        with self.lock:
            return [e for _, b in self.bodies for e in b["events"]]

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def ctl(*args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMGATE_TEST_SECRET_")}
    p = subprocess.run([LLMGATECTL, *args], capture_output=True, text=True, env=env, timeout=30)
    return p.returncode, p.stdout, p.stderr


CHAT = {"model": "m1", "messages": [{"role": "user", "content": "Hello from test_observability"}]}


class ObservabilityTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not wired():
            raise unittest.SkipTest("the request path does not call obs_request_done yet")
        cls.mock = Mock()
        cls.rx = Receiver()
        cls.tmp = tempfile.mkdtemp(prefix="llmgate-obs-")
        cls.log = os.path.join(cls.tmp, "access.log")
        extra = (
            'metrics: {listen: "127.0.0.1:0"}\n'
            f'access_log: {{path: "{cls.log}"}}\n'
            f'alerts: {{webhook_url: "http://127.0.0.1:{cls.rx.port}/hook?token=tok", '
            'min_interval_ms: 200, timeout_ms: 2000}\n')
        cls.gw = Gateway(
            [{"name": "p1", "url": cls.mock.url(),
              "keys": [("k1", SECRETS["k1"], None), ("k2", SECRETS["k2"], None)]},
             {"name": "p2", "url": cls.mock.url(), "keys": [("k3", SECRETS["k3"], None)]}],
            [{"name": "m1", "aliases": ["one"], "deployments": [("p1", "up-m1")]},
             {"name": "m2", "deployments": [("p2", "up-m2")]}],
            extra_yaml=extra, start=False)
        # prices: the harness has no field for them; the model lines are ours to extend
        assert '      - {provider: p1, model: "up-m1", weight: 1, priority: 1}\n' in \
            cls.gw.config_text, "the harness writes deployments differently now"
        cls.gw.config_text = cls.gw.config_text.replace(
            '      - {provider: p1, model: "up-m1", weight: 1, priority: 1}\n',
            '      - {provider: p1, model: "up-m1", weight: 1, priority: 1}\n'
            f'    input_price_per_m: {PRICE_IN}\n    output_price_per_m: {PRICE_OUT}\n')
        with open(cls.gw.config, "w") as f:
            f.write(cls.gw.config_text)
        cls.gw.start()
        m = cls.gw.proc.wait_line(r"admin http on \S+ \(port (\d+)\)")
        cls.admin = int(m.group(1))

    @classmethod
    def tearDownClass(cls):
        rc = cls.gw.stop()
        out = cls.gw.proc.output()
        cls.gw.cleanup()
        cls.mock.stop()
        cls.rx.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        assert rc == 0, f"llmgate exited with {rc} (sanitizer report?):\n{out[-4000:]}"
        for s in SECRETS.values():
            assert s not in out, "a secret in the server's log"

    def scrape(self):
        st, h, body = get(self.admin, "/metrics")
        self.assertEqual(st, 200, body)
        self.assertTrue(h["content-type"].startswith("text/plain; version=0.0.4"), h)
        text = body.decode()
        for s in SECRETS.values():
            self.assertNotIn(s, text)
        return text

    def chat(self, body=None, headers=None):
        st, h, data = post_json(self.gw.port, "/v1/chat/completions", body or CHAT, headers)
        return st, h, data

    # ---- metrics ----------------------------------------------------------------------

    def test_metric_values_match_the_requests_sent(self):
        before = parse_metrics(self.scrape())
        prompt = completion = 0
        for i in range(6):
            st, _, data = self.chat(dict(CHAT, model="one" if i % 2 else "m1"))
            self.assertEqual(st, 200, data)
            u = json.loads(data)["usage"]
            prompt += u["prompt_tokens"]
            completion += u["completion_tokens"]
        for _ in range(3):  # streams: usage from the last chunk
            st, _, data = self.chat(dict(CHAT, stream=True,
                                         stream_options={"include_usage": True}))
            self.assertEqual(st, 200)
            chunks = [json.loads(l[6:]) for l in data.decode().splitlines()
                      if l.startswith("data: {")]
            u = [c["usage"] for c in chunks if c.get("usage")][-1]
            prompt += u["prompt_tokens"]
            completion += u["completion_tokens"]
        for _ in range(2):
            st, _, _ = self.chat(dict(CHAT, model="no-such-model"))
            self.assertEqual(st, 404)

        def settled():
            after = parse_metrics(self.scrape())
            d = total(after, "llmgate_requests_total", model="m1", status_class="2xx") - \
                total(before, "llmgate_requests_total", model="m1", status_class="2xx")
            return after if d == 9 else None

        after = wait_until(settled, 10, what="9 requests of m1 counted")

        def delta(name, **labels):
            return total(after, name, **labels) - total(before, name, **labels)

        self.assertEqual(delta("llmgate_requests_total", model="", status_class="4xx"), 2,
                         "unknown models count under the empty label")
        self.assertNotIn("no-such-model", self.scrape())
        self.assertEqual(delta("llmgate_request_duration_seconds_count", model="m1"), 9)
        self.assertEqual(delta("llmgate_time_to_first_byte_seconds_count", model="m1"), 9)
        self.assertGreaterEqual(delta("llmgate_gateway_overhead_seconds_count"), 11)
        self.assertEqual(delta("llmgate_tokens_total", model="m1", type="prompt"), prompt)
        self.assertEqual(delta("llmgate_tokens_total", model="m1", type="completion"), completion)
        cost = (prompt * PRICE_IN + completion * PRICE_OUT) / 1e6
        self.assertAlmostEqual(delta("llmgate_cost_usd_total", model="m1"), cost, places=9)
        # the store's side: admitted requests and tokens of the keys of p1
        self.assertEqual(delta("llmgate_key_requests_total", provider="p1"), 9)
        self.assertEqual(delta("llmgate_key_tokens_total", provider="p1", type="prompt"), prompt)
        self.assertAlmostEqual(delta("llmgate_key_cost_usd_total", provider="p1"), cost, places=5)
        self.assertEqual(total(after, "llmgate_inflight_requests"), 0)
        self.assertEqual(total(after, "llmgate_store_up"), 1)

    @unittest.skipUnless(LLMGATECTL, "llmgatectl not built")
    def test_store_metrics_agree_with_llmgatectl(self):
        for _ in range(3):
            self.assertEqual(self.chat()[0], 200)
        rc, out, err = ctl("--state", self.gw.state_dir, "keys", "--json")
        self.assertEqual(rc, 0, err)
        doc = json.loads(out)
        keys = doc["keys"] if isinstance(doc, dict) else doc
        samples = parse_metrics(self.scrape())
        for k in keys:
            name = k["name"]
            self.assertEqual(total(samples, "llmgate_key_requests_total", key=name),
                             k["requests"], f"requests of {name}")
            self.assertEqual(total(samples, "llmgate_key_status", key=name, status=k["state"]),
                             1, f"status of {name}")

    @unittest.skipUnless(PROMTOOL, "promtool not installed (Debian package prometheus)")
    def test_promtool_check_metrics(self):
        self.chat()
        text = self.scrape()
        p = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(p.stdout.strip() + p.stderr.strip(), "", "no lint findings")

    # ---- a real Prometheus --------------------------------------------------------------

    @unittest.skipUnless(PROMETHEUS, "prometheus not installed (Debian package prometheus)")
    def test_real_prometheus_scrapes_and_answers(self):
        tmp = tempfile.mkdtemp(prefix="llmgate-prom-")
        self.addCleanup(shutil.rmtree, tmp, True)
        cfg = os.path.join(tmp, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
                    "scrape_configs:\n"
                    "  - job_name: llmgate\n"
                    f"    static_configs: [{{targets: ['127.0.0.1:{self.admin}']}}]\n")
        for _ in range(4):
            self.assertEqual(self.chat(dict(CHAT, model="m2"))[0], 200)
        want = total(parse_metrics(self.scrape()), "llmgate_requests_total", model="m2",
                     status_class="2xx")
        self.assertGreaterEqual(want, 4)
        port = free_port()
        prom = Proc([PROMETHEUS, f"--config.file={cfg}", f"--storage.tsdb.path={tmp}/data",
                     f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                    name="prometheus")
        self.addCleanup(prom.stop)
        query = 'sum(llmgate_requests_total{job="llmgate",model="m2",status_class="2xx"})'
        url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": query})

        def answer():
            if prom.p.poll() is not None:
                raise AssertionError(f"prometheus exited:\n{prom.output()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    doc = json.load(r)
            except OSError:
                return None
            res = doc.get("data", {}).get("result", [])
            return float(res[0]["value"][1]) if res else None

        got = wait_until(lambda: answer() == want and want, 60, interval=0.5,
                         what=f"prometheus to answer {query} = {want}")
        self.assertEqual(got, want)

    # ---- rules and example configs ----------------------------------------------------

    @unittest.skipUnless(PROMTOOL, "promtool not installed (Debian package prometheus)")
    def test_promtool_rules_and_config(self):
        rules = os.path.join(ROOT, "config", "alerts.yml")
        p = subprocess.run([PROMTOOL, "check", "rules", rules], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        p = subprocess.run([PROMTOOL, "check", "config",
                            os.path.join(ROOT, "config", "prometheus.yml")],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        tmp = tempfile.mkdtemp(prefix="llmgate-rules-")
        self.addCleanup(shutil.rmtree, tmp, True)
        test = os.path.join(tmp, "alerts_test.yml")
        with open(test, "w") as f:
            f.write(RULES_TEST.replace("RULES", json.dumps(rules)))
        p = subprocess.run([PROMTOOL, "test", "rules", test], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_dashboard_and_rules_name_real_metrics(self):
        with open(os.path.join(ROOT, "config", "grafana-dashboard.json")) as f:
            dash = json.load(f)
        exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
        with open(os.path.join(ROOT, "config", "alerts.yml")) as f:
            exprs.append(f.read())
        names = set()
        for e in exprs:
            names |= set(re.findall(r"\bllmgate_[a-z_]*[a-z]\b", e))
        self.assertTrue(names)
        self.chat()
        scraped = {re.sub(r"_(bucket|sum|count)$", "", n) for n, _, _ in
                   parse_metrics(self.scrape())} | {n for n, _, _ in parse_metrics(self.scrape())}
        missing = sorted(n for n in names if n not in scraped and n + "_total" not in scraped)
        self.assertEqual(missing, [], "dashboard/alert metric names not in a scrape")

    # ---- health -----------------------------------------------------------------------

    @unittest.skipUnless(LLMGATECTL, "llmgatectl not built")
    def test_readiness_flips_when_every_key_of_a_model_is_disabled(self):
        st, _, body = get(self.admin, "/health")
        self.assertEqual((st, json.loads(body)), (200, {"status": "ok"}))
        st, _, body = get(self.admin, "/health/full")
        self.assertEqual(st, 200, body)
        self.assertEqual(json.loads(body)["status"], "ready")
        rc, _, err = ctl("--state", self.gw.state_dir, "disable", "k3")
        self.assertEqual(rc, 0, err)
        self.addCleanup(ctl, "--state", self.gw.state_dir, "enable", "k3")
        st, _, body = get(self.admin, "/health/full")
        self.assertEqual(st, 503, body)
        doc = json.loads(body)
        self.assertEqual(doc["status"], "not_ready")
        self.assertEqual([m["model"] for m in doc["missing"]], ["m2"])
        self.assertEqual(doc["missing"][0]["keys"],
                         [{"key": "k3", "provider": "p2", "state": "disabled"}])
        for s in SECRETS.values():
            self.assertNotIn(s, body.decode())
        ready = {m["model"]: m["ready"] for m in doc["models"]}
        self.assertEqual(ready, {"m1": True, "m2": False})
        samples = parse_metrics(self.scrape())
        self.assertEqual(total(samples, "llmgate_model_ready", model="m2"), 0)
        self.assertEqual(total(samples, "llmgate_key_status", key="k3", status="disabled"), 1)
        rc, _, err = ctl("--state", self.gw.state_dir, "enable", "k3")
        self.assertEqual(rc, 0, err)
        st, _, body = get(self.admin, "/health/full")
        self.assertEqual(st, 200, body)

    # ---- the access log ---------------------------------------------------------------

    def log_lines(self, path=None):
        try:
            with open(path or self.log, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            return []
        for s in SECRETS.values():
            self.assertNotIn(s.encode(), raw, "a secret in the access log")
        self.assertTrue(raw == b"" or raw.endswith(b"\n"), "lines end with a line feed")
        return [json.loads(l) for l in raw.decode("utf-8").splitlines()]

    def test_access_log_lines(self):
        rid = "obs-it-%d" % time.monotonic_ns()
        st, h, _ = self.chat(headers={"x-request-id": rid})
        self.assertEqual(st, 200)
        # a client's bytes in a line: UTF-8 kept, invalid bytes replaced, the line still JSON
        for model in (b"no-such-\xc3\xa9-model", b"bad-\xff-model"):
            st, _, _ = post_json(self.gw.port, "/v1/chat/completions",
                                 b'{"model":"' + model + b'","messages":[]}')
            self.assertEqual(st, 404)
        line = wait_until(lambda: [l for l in self.log_lines() if l["request_id"] == rid], 10,
                          what="the access log line")[0]
        want = {"time", "request_id", "client", "model", "served_model", "provider", "key",
                "attempts", "status", "upstream_status", "ttfb_ms", "duration_ms", "upstream_ms",
                "prompt_tokens", "completion_tokens", "cached_tokens", "reasoning_tokens",
                "tokens_estimated", "cost_usd", "bytes_in", "bytes_out", "stream", "api"}
        self.assertEqual(set(line), want)
        self.assertEqual(line["api"], "chat")
        self.assertEqual((line["model"], line["served_model"], line["provider"], line["status"],
                          line["upstream_status"], line["attempts"]),
                         ("m1", "m1", "p1", 200, 200, 1))
        self.assertIn(line["key"], ("k1", "k2"))
        self.assertGreater(line["prompt_tokens"], 0)
        self.assertGreater(line["cost_usd"], 0)
        self.assertGreater(line["bytes_out"], 0)
        self.assertRegex(line["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        for model in ("no-such-\u00e9-model", "bad-\ufffd-model"):
            wait_until(lambda: [l for l in self.log_lines() if l["model"] == model], 10,
                       what=f"the line of model {model!r}")

    def test_request_id_generated_forwarded_and_logged(self):
        st, h, _ = self.chat()
        self.assertEqual(st, 200)
        rid = h["x-request-id"]
        self.assertRegex(rid, r"^req-[0-9a-f]{24}$")
        sent = [v for n, v in self.mock.last()["headers"] if n.lower() == "x-request-id"]
        self.assertEqual(sent, [rid], "a generated id goes upstream")
        wait_until(lambda: [l for l in self.log_lines() if l["request_id"] == rid], 10,
                   what="the line of the generated id")
        mine = "client-chosen-id-%d" % time.monotonic_ns()
        st, h, _ = self.chat(headers={"x-request-id": mine})
        self.assertEqual(h["x-request-id"], mine)
        sent = [v for n, v in self.mock.last()["headers"] if n.lower() == "x-request-id"]
        self.assertEqual(sent, [mine], "the client's id goes upstream once, as it came")
        st, h, _ = self.chat(headers={"x-request-id": "bad id with spaces"})
        self.assertRegex(h["x-request-id"], r"^req-")

    def test_usage_json_sse_and_early_disconnect(self):
        rid = "usage-json-%d" % time.monotonic_ns()
        st, _, data = self.chat(headers={"x-request-id": rid})
        u = json.loads(data)["usage"]
        line = wait_until(lambda: [l for l in self.log_lines() if l["request_id"] == rid], 10,
                          what="the JSON line")[0]
        self.assertEqual((line["prompt_tokens"], line["completion_tokens"],
                          line["tokens_estimated"]),
                         (u["prompt_tokens"], u["completion_tokens"], False))
        rid = "usage-sse-%d" % time.monotonic_ns()
        st, _, data = self.chat(dict(CHAT, stream=True), {"x-request-id": rid})
        events = [json.loads(l[6:]) for l in data.decode().splitlines()
                  if l.startswith("data: {")]
        u = [e for e in events if e.get("usage")][-1]["usage"]
        line = wait_until(lambda: [l for l in self.log_lines() if l["request_id"] == rid], 10,
                          what="the SSE line")[0]
        self.assertEqual((line["prompt_tokens"], line["completion_tokens"],
                          line["tokens_estimated"]),
                         (u["prompt_tokens"], u["completion_tokens"], False))
        # a streaming client that leaves early: still accounted, estimated, flagged
        rid = "usage-cut-%d" % time.monotonic_ns()
        body = json.dumps(dict(CHAT, stream=True)).encode()
        s = socket.create_connection(("127.0.0.1", self.gw.port), timeout=10)
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nx-request-id: " +
                  rid.encode() + b"\r\nx-mock-chunks: 40\r\nx-mock-chunk-delay-ms: 100\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(body) + body)
        got = b""
        while got.count(b"data: {") < 5:
            got += s.recv(65536)
        s.close()
        line = wait_until(lambda: [l for l in self.log_lines() if l["request_id"] == rid], 10,
                          what="the line of the cut stream")[0]
        self.assertTrue(line["tokens_estimated"])
        self.assertEqual(line["status"], 200)
        self.assertGreaterEqual(line["completion_tokens"], 5)
        self.assertLess(line["completion_tokens"], 40)

    def test_sigusr1_reopens_the_access_log(self):
        self.chat()
        wait_until(lambda: os.path.exists(self.log) and self.log_lines(), 10,
                   what="the access log")
        rotated = self.log + ".1"
        os.rename(self.log, rotated)
        self.addCleanup(lambda: os.path.exists(rotated) and os.remove(rotated))
        self.gw.proc.send(signal.SIGUSR1)
        self.gw.proc.wait_line(r"access_log: reopened")
        rid = "after-rotate-%d" % time.monotonic_ns()
        self.assertEqual(self.chat(headers={"x-request-id": rid})[0], 200)
        wait_until(lambda: [l for l in self.log_lines() if l["request_id"] == rid], 10,
                   what="the new line in a new file")
        self.assertFalse([l for l in self.log_lines(rotated) if l["request_id"] == rid])

    # ---- the webhook ------------------------------------------------------------------

    @unittest.skipUnless(LLMGATECTL, "llmgatectl not built")
    def test_webhook_on_key_status_change(self):
        rc, _, err = ctl("--state", self.gw.state_dir, "disable", "k2")
        self.assertEqual(rc, 0, err)
        self.addCleanup(ctl, "--state", self.gw.state_dir, "enable", "k2")

        def seen(frm, to):
            return [e for e in self.rx.events() if e.get("key") == "k2" and e["from"] == frm and
                    e["to"] == to]

        ev = wait_until(lambda: seen("active", "disabled"), 10, what="the webhook POST")[0]
        self.assertEqual((ev["type"], ev["provider"], ev["reason"]), ("key_status", "p1", "admin"))
        with self.rx.lock:
            path, body = self.rx.bodies[-1]
        self.assertEqual(path, "/hook?token=tok")
        self.assertEqual(body["source"], "llmgate")
        self.assertIn("key k2 (p1) active -> disabled", json.dumps(self.rx.bodies))
        ctl("--state", self.gw.state_dir, "enable", "k2")
        wait_until(lambda: seen("disabled", "active"), 10, what="the way back")
        for s in SECRETS.values():
            self.assertNotIn(s, json.dumps(self.rx.bodies))


class MainListenerTest(unittest.TestCase):
    """metrics: {listen: main}: /metrics and /health/full next to the API."""

    def setUp(self):
        if not wired():
            self.skipTest("the request path does not call obs_request_done yet")
        self.mock = Mock()
        self.addCleanup(self.mock.stop)
        self.gw = Gateway([{"name": "p1", "url": self.mock.url(),
                            "keys": [("k1", SECRETS["k1"], None)]}],
                          [{"name": "m1", "deployments": [("p1", "m1")]}],
                          extra_yaml="metrics: {listen: main}\naccess_log: {path: \"off\"}\n")
        self.addCleanup(self.gw.cleanup)

    def tearDown(self):
        rc = self.gw.stop()
        self.assertEqual(rc, 0, self.gw.proc.output()[-4000:])

    def test_metrics_on_the_main_listener(self):
        self.assertEqual(post_json(self.gw.port, "/v1/chat/completions", CHAT)[0], 200)
        st, h, body = get(self.gw.port, "/metrics")
        self.assertEqual(st, 200, body)
        samples = parse_metrics(body.decode())
        self.assertEqual(total(samples, "llmgate_requests_total", model="m1"), 1)
        if PROMTOOL:
            p = subprocess.run([PROMTOOL, "check", "metrics"], input=body.decode(),
                               capture_output=True, text=True)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        st, _, body = get(self.gw.port, "/health/full")
        self.assertEqual((st, json.loads(body)["status"]), (200, "ready"))
        self.assertNotIn("admin http on", self.gw.proc.output())


RULES_TEST = """
rule_files: [RULES]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'llmgate_key_status{key="k1",provider="p1",status="invalid",instance="a"}'
        values: '0 1 1 1 1 1'
      - series: 'llmgate_key_status{key="k2",provider="p1",status="invalid",instance="a"}'
        values: '0 0 0 0 0 0'
      - series: 'llmgate_model_ready{model="m1",instance="a"}'
        values: '1 0 0 0 0 0'
      - series: 'llmgate_model_ready{model="m1",instance="b"}'
        values: '1 1 1 1 1 1'
      - series: 'llmgate_model_ready{model="m2",instance="a"}'
        values: '1 1 1 1 1 1'
    alert_rule_test:
      - eval_time: 4m
        alertname: LlmgateKeyInvalid
        exp_alerts:
          - exp_labels: {severity: critical, key: k1, provider: p1}
            exp_annotations:
              summary: "upstream key k1 (p1) was refused by its provider"
              description: "The provider answered 401/403 for key k1: it is no longer used until an operator replaces the secret or runs `llmgatectl enable k1`."
      - eval_time: 4m
        alertname: LlmgateModelUnavailable
        exp_alerts:
          - exp_labels: {severity: critical, model: m1}
            exp_annotations:
              summary: "no key can serve model m1"
              description: "Every key of model m1 (its deployments and fallbacks) is disabled, invalid, depleted, cooling down or behind an open circuit; requests for it get 429 or 503. /health/full names each key and why."
  - interval: 1m
    input_series:
      - series: 'llmgate_requests_total{model="m1",provider="p1",key="k1",status_class="2xx",instance="a"}'
        values: '0+54x20'
      - series: 'llmgate_requests_total{model="m1",provider="p1",key="k1",status_class="5xx",instance="a"}'
        values: '0+6x20'
      - series: 'llmgate_requests_total{model="m2",provider="p1",key="k1",status_class="2xx",instance="a"}'
        values: '0+60x20'
    alert_rule_test:
      - eval_time: 18m
        alertname: LlmgateHighErrorRatio
        exp_alerts:
          - exp_labels: {severity: warning, model: m1}
            exp_annotations:
              summary: "more than 5% of the requests for m1 fail with 5xx"
              description: "5xx ratio over 5 minutes: 10%."
"""


if __name__ == "__main__":
    unittest.main()
