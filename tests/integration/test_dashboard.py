"""The dashboard's JSON API and its history (issue 16), against the store and the access log.

A gateway with two keys of one provider and one priced model takes traffic; one key gets a
429 and cools down. Then, on the admin listener:

- /api/keys and /api/providers are the documents `llmgatectl keys --json` and `providers
  --json` print (the same fields and figures);
- /api/stats (range 1h, by model and by key) holds every recorded attempt: its requests,
  429s, tokens and cost add up to the keys' totals and the access log, the points add up to
  the total, latency quantiles are within the mock's delay; it survives a restart, and a
  second process on the state dir serves the same history;
- `llmgatectl stats --json` is the same document, and its table shows the same requests;
- /api/events shows the cooldown; the page, its style and script are served with CSP,
  no-store and nosniff, and none of them holds a secret;
- actions: without the token, or with another, 401 and nothing changes; with it, disable,
  enable and cooldown change the key at once (llmgatectl sees them, the history names the
  dashboard); a gateway without a configured token is read-only (403); bad input is a clear
  400/404/405 in OpenAI's error shape;
- the token never appears in the gateway's output or its store;
- in headless Chromium (puppeteer-core), the page shows the keys' requests and costs, the
  cooling key, the totals of the history, draws every chart, has no CSP violation or
  console error; an action with a wrong token is refused and changes nothing, with the
  token it disables the key in the store; a screenshot PNG is written.

Binaries: LLMGATE_BIN, MOCK_BIN, LLMGATECTL_BIN."""

import hashlib
import http.client
import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import unittest

from harness import Gateway, Mock, post_json, wait_until

LLMGATECTL_BIN = os.environ.get("LLMGATECTL_BIN", "build/cli/llmgatectl")
SDK_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sdk")
CHROMIUM = os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium")
OUTPUT = os.environ.get("LLMGATE_TEST_OUTPUT") or tempfile.gettempdir()
PRICE_IN, PRICE_OUT = 2.0, 8.0  # USD per million tokens
TOKEN = "dash-" + secrets.token_hex(16)
VOLATILE = {"generated_ms", "cooldown_left_ms", "status_text", "open_left_ms"}


def admin(port, method, path, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    c.request(method, path, headers=headers or {})
    r = c.getresponse()
    body = r.read()
    hdrs = {k.lower(): v for k, v in r.getheaders()}
    c.close()
    return r.status, hdrs, body


def admin_json(port, path, method="GET", headers=None):
    st, _, body = admin(port, method, path, headers)
    return st, json.loads(body)


def strip(doc):
    if isinstance(doc, dict):
        return {k: strip(v) for k, v in doc.items() if k not in VOLATILE}
    if isinstance(doc, list):
        return [strip(v) for v in doc]
    return doc


def priced(gw):
    old = '      - {provider: p1, model: "up-m1", weight: 1, priority: 1}\n'
    assert old in gw.config_text, "the harness writes deployments differently now"
    gw.config_text = gw.config_text.replace(
        old, old + f"    input_price_per_m: {PRICE_IN}\n    output_price_per_m: {PRICE_OUT}\n")
    with open(gw.config, "w") as f:
        f.write(gw.config_text)


def make_gateway(mock, log, token=True, state_dir=None):
    extra = 'metrics:\n  listen: "127.0.0.1:0"\n'
    if token:
        extra += f'  admin_token_sha256: "{hashlib.sha256(TOKEN.encode()).hexdigest()}"\n'
    extra += f'access_log: {{path: "{log}"}}\n'
    gw = Gateway([{"name": "p1", "url": mock.url(),
                   "keys": [("k1", "sk-dash-1", None), ("k2", "sk-dash-2", None)]}],
                 [{"name": "m1", "deployments": [("p1", "up-m1")]}],
                 extra_yaml=extra, start=False, state_dir=state_dir)
    gw.secrets.append(TOKEN)
    priced(gw)
    return gw


def start(gw):
    gw.start()
    m = gw.proc.wait_line(r"admin http on \S+ \(port (\d+)\)")
    return int(m.group(1))


class Traffic:
    """A gateway that took twelve requests, one of them a 429 on k2 (now cooling)."""

    @classmethod
    def setUpClass(cls):
        cls.mock = Mock()
        cls.tmp = tempfile.mkdtemp(prefix="llmgate-dash-")
        cls.log = os.path.join(cls.tmp, "access.log")
        cls.gw = make_gateway(cls.mock, cls.log)
        cls.port = start(cls.gw)
        # a 429 for k2 (retried on k1), then plain traffic with a known delay
        cls.mock.script(key="sk-dash-2", status=429, retry_after=120, count=1)
        cls.mock.script(key="sk-dash-1", delay_ms=30)
        cls.n = 12
        for i in range(cls.n):
            st, _, body = post_json(cls.gw.port, "/v1/chat/completions",
                                    {"model": "m1", "max_tokens": 20,
                                     "messages": [{"role": "user", "content": f"hello {i}"}]})
            assert st == 200, (st, body)
        wait_until(lambda: cls.key("k2")["state"] == "cooling", what="k2 cooling")
        wait_until(lambda: len(cls.log_lines()) >= cls.n, what="the access log")

    @classmethod
    def tearDownClass(cls):
        cls.gw.stop()
        cls.gw.cleanup()
        cls.mock.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def key(cls, name):
        st, doc = admin_json(cls.port, "/api/keys")
        assert st == 200
        return next(k for k in doc["keys"] if k["name"] == name)

    @classmethod
    def log_lines(cls):
        if not os.path.exists(cls.log):
            return []
        with open(cls.log) as f:
            return [json.loads(line) for line in f if line.strip()]

class DashboardAPITest(Traffic, unittest.TestCase):
    @classmethod
    def ctl(cls, *args, state=None):
        return subprocess.run([LLMGATECTL_BIN, "--state", state or cls.gw.state_dir, *args],
                              capture_output=True, text=True, timeout=30)

    def test_keys_and_providers_are_the_cli_documents(self):
        for path, cmd in (("/api/keys", "keys"), ("/api/providers", "providers")):
            st, api = admin_json(self.port, path)
            self.assertEqual(st, 200)
            r = self.ctl(cmd, "--json")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(strip(api), strip(json.loads(r.stdout)), path)
        k2 = self.key("k2")
        self.assertEqual(k2["state"], "cooling")
        self.assertEqual(k2["reason"], "rate_limited")
        self.assertGreater(k2["cooldown_left_ms"], 60000)

    def test_stats_add_up_to_the_keys_and_the_access_log(self):
        st, doc = admin_json(self.port, "/api/stats?range=1h&scope=model")
        self.assertEqual(st, 200)
        self.assertEqual((doc["command"], doc["range"], doc["scope"], doc["step_ms"]),
                         ("stats", "1h", "model", 60000))
        self.assertEqual(len(doc["series"]), 1)
        m1 = doc["series"][0]
        self.assertEqual(m1["name"], "m1")
        self.assertEqual(len(m1["points"]), 60)
        self.assertEqual(m1["points"][-1]["t_ms"] + 60000, doc["to_ms"])
        tot = m1["total"]
        _, kd = admin_json(self.port, "/api/keys")
        keys = kd["keys"]
        self.assertEqual(tot["requests"], sum(k["outcomes_total"] for k in keys))
        self.assertEqual(tot["requests"], self.n + 1, "twelve served and one 429")
        self.assertEqual(tot["outcomes"]["rate_limited"], 1)
        self.assertEqual(tot["outcomes"]["success"], self.n)
        self.assertEqual(tot["errors"], 1)
        self.assertEqual(tot["cost_micro_usd"], sum(k["cost_micro_usd"] for k in keys))
        lines = self.log_lines()
        self.assertEqual(tot["prompt_tokens"], sum(l["prompt_tokens"] for l in lines))
        self.assertEqual(tot["completion_tokens"], sum(l["completion_tokens"] for l in lines))
        log_cost = sum(l["cost_usd"] for l in lines)
        self.assertAlmostEqual(tot["cost_usd"], log_cost, delta=1e-6 * len(lines))
        self.assertGreater(tot["cost_micro_usd"], 0)
        self.assertEqual(tot["samples"], self.n)
        self.assertGreaterEqual(tot["latency_ms"]["p50"], 25, "the mock's 30 ms delay")
        self.assertLess(tot["latency_ms"]["p99"], 5000)
        self.assertLessEqual(tot["ttfb_ms"]["p50"], tot["latency_ms"]["p99"])
        for f in ("requests", "errors", "prompt_tokens", "completion_tokens", "cost_micro_usd"):
            self.assertEqual(sum(p[f] for p in m1["points"]), tot[f], f"the points' {f}")
        self.assertEqual(m1["days"][-1]["requests"], self.n + 1, "today's spend")
        self.assertEqual(m1["days"][-1]["cost_micro_usd"], tot["cost_micro_usd"])
        self.assertEqual(len(m1["days"]), 31)
        self.assertEqual(len(m1["weeks"]), 12)
        self.assertEqual(len(m1["months"]), 12)
        self.assertTrue(m1["months"][-1]["start"].endswith("-01"))

        st, kdoc = admin_json(self.port, "/api/stats?range=24h&scope=key&name=k2")
        self.assertEqual(st, 200)
        self.assertEqual([s["name"] for s in kdoc["series"]], ["k2"])
        self.assertEqual(kdoc["series"][0]["total"]["outcomes"]["rate_limited"], 1)
        self.assertEqual(len(kdoc["series"][0]["points"]), 96)

    def test_cli_stats_is_the_same_document(self):
        st, api = admin_json(self.port, "/api/stats?range=1h&scope=model")
        r = self.ctl("stats", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        cli = json.loads(r.stdout)
        # a minute may turn between the two reads: compare the totals
        self.assertEqual(cli["command"], "stats")
        self.assertEqual(cli["series"][0]["total"], api["series"][0]["total"])
        r = self.ctl("stats", "--key", "k2", "--range", "7d", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["series"][0]["total"]["outcomes"]["rate_limited"], 1)
        r = self.ctl("stats")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"m1\s+" + str(self.n + 1) + r"\b", r.stdout)
        r = self.ctl("stats", "--range", "2h")
        self.assertEqual(r.returncode, 1)
        self.assertIn("1h, 6h, 24h, 7d, 30d, 90d", r.stderr)
        r = self.ctl("stats", "--model", "m1", "--key", "k1")
        self.assertEqual(r.returncode, 1)

    def test_events_show_the_cooldown(self):
        st, doc = admin_json(self.port, "/api/events?limit=10")
        self.assertEqual(st, 200)
        self.assertLessEqual(len(doc["events"]), 10)
        ev = [e for e in doc["events"] if e["key"] == "k2" and e["event"] == "status"]
        self.assertTrue(ev and ev[0]["status"] == "cooling", doc["events"])
        ts = [e["ts_ms"] for e in doc["events"]]
        self.assertEqual(ts, sorted(ts, reverse=True), "newest first")

    def test_page_headers_and_no_secret(self):
        for path, ctype in (("/dashboard", "text/html"), ("/", "text/html"),
                            ("/dashboard.css", "text/css"), ("/dashboard.js", "text/javascript"),
                            ("/api/keys", "application/json")):
            st, h, body = admin(self.port, "GET", path)
            self.assertEqual(st, 200, path)
            self.assertTrue(h["content-type"].startswith(ctype), (path, h["content-type"]))
            self.assertIn("script-src 'self'", h["content-security-policy"])
            self.assertIn("frame-ancestors 'none'", h["content-security-policy"])
            self.assertEqual(h["cache-control"], "no-store")
            self.assertEqual(h["x-content-type-options"], "nosniff")
            for s in self.gw.secrets:
                self.assertNotIn(s.encode(), body, path)
        _, _, html = admin(self.port, "GET", "/dashboard")
        self.assertIn(b'src="/dashboard.js"', html)
        self.assertNotRegex(html.decode(), r"<script>[^<]", "no inline script")

    def test_bad_requests(self):
        for method, path, status in (("GET", "/api/stats?range=2h", 400),
                                     ("GET", "/api/stats?scope=provider", 400),
                                     ("GET", "/api/events?limit=0", 400),
                                     ("GET", "/api/nope", 404),
                                     ("POST", "/api/keys", 405),
                                     ("POST", "/metrics", 405),
                                     ("GET", "/api/keys/k1/disable", 405),
                                     ("DELETE", "/api/keys", 405)):
            st, h, body = admin(self.port, method, path)
            self.assertEqual(st, status, (method, path, body))
            err = json.loads(body)["error"]
            self.assertTrue(err["message"] and err["type"], body)

    def test_actions_need_the_token(self):
        auth = {"Authorization": "Bearer " + TOKEN}
        for hdrs in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN},
                     {"Authorization": "Bearer " + TOKEN + "x"}):
            st, doc = admin_json(self.port, "/api/keys/k1/disable", "POST", hdrs)
            self.assertEqual(st, 401, hdrs)
            self.assertEqual(doc["error"]["code"], "invalid_admin_token")
            self.assertNotIn(TOKEN, json.dumps(doc))
        self.assertEqual(self.key("k1")["state"], "active", "nothing changed")

        st, doc = admin_json(self.port, "/api/keys/k1/disable", "POST", auth)
        self.assertEqual(st, 200, doc)
        self.assertEqual((doc["action"], doc["key"]["name"], doc["key"]["state"]),
                         ("disable", "k1", "disabled"))
        r = self.ctl("key", "k1", "--json")
        kd = json.loads(r.stdout)["key"]
        self.assertEqual(kd["state"], "disabled", "llmgatectl sees it at once")
        self.assertEqual(kd["history"][-1]["text"], "dashboard")
        st, doc = admin_json(self.port, "/api/keys/k1/enable", "POST", auth)
        self.assertEqual((st, doc["key"]["state"]), (200, "active"))
        st, doc = admin_json(self.port, "/api/keys/k1/cooldown?duration_ms=90000", "POST", auth)
        self.assertEqual((st, doc["key"]["state"]), (200, "cooling"))
        self.assertGreater(doc["key"]["cooldown_left_ms"], 80000)
        st, doc = admin_json(self.port, "/api/keys/k1/enable", "POST", auth)
        self.assertEqual(st, 200)
        for path, status in (("/api/keys/k1/cooldown", 400),
                             ("/api/keys/k1/cooldown?duration_ms=-5", 400),
                             ("/api/keys/nope/disable", 404),
                             ("/api/keys/k1/explode", 404),
                             ("/api/keys/%zz/disable", 404)):
            st, doc = admin_json(self.port, path, "POST", auth)
            self.assertEqual(st, status, (path, doc))
        self.assertEqual(self.key("k1")["state"], "active")
        st, doc = admin_json(self.port, "/api/session")
        self.assertEqual((st, doc["actions"]), (200, True))


class DashboardStoreTest(unittest.TestCase):
    """Without a token the API is read-only; the history survives a restart and is the same
    from a second process on the state dir."""

    def test_read_only_restart_and_second_process(self):
        mock = Mock()
        gw = make_gateway(mock, "off", token=False)
        gw2 = None
        try:
            port = start(gw)
            for i in range(5):
                st, _, _ = post_json(gw.port, "/v1/chat/completions",
                                  {"model": "m1", "messages": [{"role": "user", "content": "x"}]})
                self.assertEqual(st, 200)
            st, doc = admin_json(port, "/api/keys/k1/disable", "POST",
                                 {"Authorization": "Bearer " + TOKEN})
            self.assertEqual((st, doc["error"]["code"]), (403, "actions_disabled"))
            self.assertEqual(admin_json(port, "/api/session")[1]["actions"], False)

            def total(p):
                st, d = admin_json(p, "/api/stats?range=1h")
                return d["series"][0]["total"]["requests"] if st == 200 and d["series"] else 0
            wait_until(lambda: total(port) == 5, what="five requests in the history")
            gw2 = make_gateway(mock, "off", token=False, state_dir=gw.state_dir)
            port2 = start(gw2)
            self.assertEqual(total(port2), 5, "a second process serves the same history")
            gw2.stop()
            gw2 = None
            gw.stop()
            port = start(gw)
            self.assertEqual(total(port), 5, "after a restart")
        finally:
            for g in (gw2, gw):
                if g:
                    if g.proc and g.proc.p.poll() is None:
                        g.stop()
                    g.cleanup()
            mock.stop()


class DashboardBrowserTest(Traffic, unittest.TestCase):
    """The page in headless Chromium shows what the store holds, draws its charts, and an
    action with the token changes the key while one without it is refused. The screenshot
    goes to $LLMGATE_TEST_OUTPUT (the build's meson-logs under meson test)."""

    def test_page_in_chromium(self):
        self.assertTrue(os.path.isdir(os.path.join(SDK_DIR, "node_modules", "puppeteer-core")),
                        "npm packages missing: ./dev.sh test installs them")
        self.assertTrue(os.access(CHROMIUM, os.X_OK), CHROMIUM + " missing: apt-get install chromium")
        shot = os.path.join(OUTPUT, "dashboard.png")
        r = subprocess.run(["node", os.path.join(SDK_DIR, "dashboard_check.mjs"),
                            f"http://127.0.0.1:{self.port}", TOKEN, shot],
                           capture_output=True, text=True, timeout=120, cwd=SDK_DIR)
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        page = json.loads(r.stdout.strip().splitlines()[-1])
        self.assertEqual(page["csp_violations"], [], "no CSP violation")
        self.assertEqual(page["console_errors"], [], "no error in the console")
        self.assertEqual(page["failed_responses"],
                         [{"url": "/api/keys/k1/disable", "status": 401}],
                         "only the action with the wrong token failed")
        _, kd = admin_json(self.port, "/api/keys")
        before = {k["name"]: k for k in kd["keys"]}
        for name in ("k1", "k2"):
            row = page["rows"][name]
            self.assertEqual(int(row["requests"]["value"]), before[name]["requests"], name)
            self.assertAlmostEqual(float(row["cost"]["value"]), before[name]["cost_usd"],
                                   delta=1e-6, msg=name)
        self.assertIn("cooling", page["rows"]["k2"]["state"]["text"], "the cooling key")
        self.assertIn("active", page["rows"]["k1"]["state"]["text"])
        _, sd = admin_json(self.port, "/api/stats?range=1h")
        tot = sd["series"][0]["total"]
        self.assertEqual(int(page["totals"]["requests"]), tot["requests"])
        self.assertAlmostEqual(float(page["totals"]["cost"]), tot["cost_usd"], delta=1e-6)
        self.assertGreater(tot["cost_usd"], 0)
        for chart in ("requests", "errors", "latency", "ttfb", "spend"):
            self.assertGreater(page["charts"].get(chart, 0), 0, f"the {chart} chart is drawn")
        self.assertGreater(page["events"], 0, "the key events")
        self.assertEqual(page["providers"], ["p1"])
        self.assertTrue(page["wrong_token"]["error"], page["wrong_token"])
        self.assertFalse(page["right_token"]["error"], page["right_token"])
        self.assertIn("disabled", page["after"]["k1"]["state"]["text"])
        r = self.ctl("key", "k1", "--json")
        kd1 = json.loads(r.stdout)["key"]
        self.assertEqual(kd1["state"], "disabled", "the store has it")
        self.assertEqual([e["text"] for e in kd1["history"]].count("dashboard"), 1,
                         "one action: the refused one changed nothing")
        with open(shot, "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n", "a PNG screenshot")

    @classmethod
    def ctl(cls, *args):
        return subprocess.run([LLMGATECTL_BIN, "--state", cls.gw.state_dir, *args],
                              capture_output=True, text=True, timeout=30)


if __name__ == "__main__":
    unittest.main()
