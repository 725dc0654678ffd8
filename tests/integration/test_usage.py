"""`llmgatectl usage` (issue 19): the billing export of what clients used, per UTC day or month
and model, read from the store's usage rows, against what the server's access log says it did.

Traffic of a configuration client and two store clients over two workers - plain and
streaming chat on two priced models, answers that are the provider's 400, a stream the client
leaves early, requests refused by a client's own rpm - and then:

- the export (--json, --csv, --by month, --client) adds up to the access log: per client and
  model, requests = its lines that were served (not refused), errors = its 400 lines, refused
  = its 429 lines, prompt and completion tokens their sums, cost their sum (to a micro-USD per
  request);
- `clients --json` and `client NAME --json` show the same figures for today, per model, and
  /metrics today's errors and refusals per client;
- bad dates, --from after --to and --csv with --json are refused with a message and exit 1;
- no client key appears in any of these outputs.

Binaries: LLMGATE_BIN, MOCK_BIN, LLMGATECTL_BIN."""

import concurrent.futures
import csv
import datetime
import io
import json
import os
import re
import socket
import subprocess
import unittest

from harness import Gateway, Mock, get, post_json, wait_until

LLMGATECTL_BIN = os.environ.get("LLMGATECTL_BIN", "build/cli/llmgatectl")
KEY_RE = re.compile(r"lgk-[A-Za-z0-9_-]{43}")
CONFIG_KEY = "sk-usage-config-client-0123456789"
PRICES = {"m1": (2.5, 10.0), "m2": (0.15, 0.6)}  # USD per million tokens in, out


def utc_day(offset_days=0):
    d = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=offset_days)
    return d.strftime("%Y-%m-%d")


class UsageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.mock = Mock()
        cls.tmp_log = None
        models = [{"name": m, "deployments": [("p", "up-" + m)]} for m in PRICES]
        gw = Gateway([{"name": "p", "url": cls.mock.url(), "keys": [("k", "sk-usage-up", None)]}],
                     models, workers=2, clients=True, start=False,
                     env={"LLMGATE_TEST_CLIENT_CFGCO": CONFIG_KEY})
        cls.log = os.path.join(gw.tmp, "access.log")
        text = gw.config_text
        for m, (pin, pout) in PRICES.items():
            dep = f'      - {{provider: p, model: "up-{m}", weight: 1, priority: 1}}\n'
            text = text.replace(dep, dep + f"    input_price_per_m: {pin}\n"
                                             f"    output_price_per_m: {pout}\n")
        text += ("client_keys:\n"
                 "  - {name: cfgco, secret_env: LLMGATE_TEST_CLIENT_CFGCO}\n"
                 f'access_log: {{path: "{cls.log}"}}\n'
                 "metrics: {listen: main}\n")
        gw.config_text = text
        with open(gw.config, "w") as f:
            f.write(text)
        gw.start()
        cls.gw = gw
        cls.keys = {"cfgco": CONFIG_KEY,
                    "acme": cls.new_key("add", "acme", "--rpm", "5"),
                    "beta": cls.new_key("add", "beta")}
        cls.traffic()

    @classmethod
    def tearDownClass(cls):
        cls.gw.stop()
        cls.gw.cleanup()
        cls.mock.stop()

    @classmethod
    def ctl(cls, *args):
        return subprocess.run([LLMGATECTL_BIN, "--state", cls.gw.state_dir, *args],
                              capture_output=True, text=True, timeout=30)

    @classmethod
    def new_key(cls, *args):
        p = cls.ctl("client", *args)
        assert p.returncode == 0, p.stderr
        key = KEY_RE.search(p.stdout).group(0)
        cls.gw.secrets.append(key)
        return key

    @classmethod
    def chat(cls, client, model, stream=False, headers=None):
        h = {"Authorization": "Bearer " + cls.keys[client]}
        h.update(headers or {})
        body = {"model": model, "messages": [{"role": "user", "content": "hello there"}]}
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        st, _, data = post_json(cls.gw.port, "/v1/chat/completions", body, headers=h)
        return st, data

    @classmethod
    def cut_stream(cls, client, model):
        """A streaming request its client leaves after a few chunks."""
        body = json.dumps({"model": model, "stream": True,
                           "messages": [{"role": "user", "content": "hello"}]}).encode()
        s = socket.create_connection(("127.0.0.1", cls.gw.port), timeout=10)
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                  cls.keys[client].encode() + b"\r\nx-mock-chunks: 40\r\n"
                  b"x-mock-chunk-delay-ms: 50\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        got = b""
        while got.count(b"data: {") < 4:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        s.close()

    @classmethod
    def traffic(cls):
        jobs = ([("cfgco", "m2", False, None)] * 4 + [("beta", "m1", False, None)] * 6 +
                [("beta", "m2", True, None)] * 4 +
                [("beta", "m1", False, {"x-mock-status": "400"})] * 2 +
                [("acme", "m1", False, None)] * 8 + [("acme", "m2", True, None)] * 2)
        with concurrent.futures.ThreadPoolExecutor(6) as ex:
            cls.statuses = list(ex.map(lambda j: cls.chat(*j)[0], jobs))
        cls.cut_stream("beta", "m2")
        cls.sent = len(jobs) + 1
        wait_until(lambda: len(cls.log_lines()) >= cls.sent, 15,
                   what=f"{cls.sent} access log lines")

    @classmethod
    def log_lines(cls):
        try:
            with open(cls.log) as f:
                return [json.loads(l) for l in f if l.strip()]
        except FileNotFoundError:
            return []

    def expected(self):
        """Per (client, model) from the access log: requests, errors, refused, tokens, cost."""
        out = {}
        for l in self.log_lines():
            e = out.setdefault((l["client"], l["model"]),
                               {"requests": 0, "errors": 0, "refused": 0, "prompt_tokens": 0,
                                "completion_tokens": 0, "cost_usd": 0.0, "lines": 0})
            e["lines"] += 1
            if l["status"] == 429:
                e["refused"] += 1
                continue
            self.assertIn(l["status"], (200, 400), l)
            e["requests"] += 1
            e["errors"] += l["status"] == 400
            e["prompt_tokens"] += l["prompt_tokens"]
            e["completion_tokens"] += l["completion_tokens"]
            e["cost_usd"] += l["cost_usd"]
        return out

    def export(self, *args):
        p = self.ctl("usage", "--from", utc_day(-1), "--to", utc_day(1), *args)
        self.assertEqual(p.returncode, 0, p.stderr)
        for k in self.keys.values():
            self.assertNotIn(k, p.stdout + p.stderr)
        return p.stdout

    def assert_matches(self, rows, exp):
        got = {}
        for r in rows:
            g = got.setdefault((r["client"], r["model"]), dict.fromkeys(
                ("requests", "errors", "refused", "prompt_tokens", "completion_tokens"), 0))
            for f in g:
                g[f] += int(r[f])
            g["cost_usd"] = g.get("cost_usd", 0.0) + float(r["cost_usd"])
        self.assertEqual(set(got), set(exp), "the same (client, model) pairs")
        for pair, e in exp.items():
            g = got[pair]
            for f in ("requests", "errors", "refused", "prompt_tokens", "completion_tokens"):
                self.assertEqual(g[f], e[f], f"{pair} {f}")
            self.assertAlmostEqual(g["cost_usd"], e["cost_usd"], delta=1e-6 * e["lines"] + 1e-9,
                                   msg=f"{pair} cost")

    def test_traffic_was_what_the_test_meant(self):
        exp = self.expected()
        self.assertEqual(sum(e["lines"] for e in exp.values()), self.sent)
        self.assertEqual(exp[("acme", "m1")]["requests"] + exp[("acme", "m2")]["requests"], 5,
                         "acme's rpm 5 admitted five")
        self.assertEqual(exp[("acme", "m1")]["refused"] + exp[("acme", "m2")]["refused"], 5)
        self.assertEqual(exp[("beta", "m1")]["errors"], 2)
        self.assertGreater(exp[("beta", "m1")]["cost_usd"], 0)
        self.assertEqual(exp[("beta", "m2")]["requests"], 5, "four streams and the cut one")

    def test_json_export_adds_up_to_the_access_log(self):
        doc = json.loads(self.export("--json"))
        self.assertEqual((doc["command"], doc["by"]), ("usage", "day"))
        for r in doc["rows"]:
            self.assertEqual(r["day"], utc_day(), "today's rows only")
            self.assertEqual(r["cost_micro_usd"],
                             round(float(r["cost_usd"]) * 1e6), "exact cost, two ways")
        self.assert_matches(doc["rows"], self.expected())
        t = doc["total"]
        self.assertEqual(t["requests"], sum(r["requests"] for r in doc["rows"]))
        self.assertEqual(t["refused"], 5)
        self.assertEqual(t["tokens"], t["prompt_tokens"] + t["completion_tokens"])

    def test_csv_and_month_and_client_exports(self):
        exp = self.expected()
        rows = list(csv.DictReader(io.StringIO(self.export("--csv"))))
        self.assertEqual(list(rows[0].keys()),
                         ["client", "day", "model", "requests", "prompt_tokens",
                          "completion_tokens", "tokens", "cost_usd", "errors", "refused"])
        self.assert_matches(rows, exp)
        for r in rows:
            self.assertRegex(r["cost_usd"], r"^\d+\.\d{6}$")
        month = list(csv.DictReader(io.StringIO(self.export("--csv", "--by", "month"))))
        self.assertEqual({r["month"] for r in month}, {utc_day()[:7]})
        self.assertEqual(len(month), len(exp), "one row per client and model in a month")
        self.assert_matches(month, exp)
        beta = json.loads(self.export("--json", "--client", "beta"))
        self.assertEqual({r["client"] for r in beta["rows"]}, {"beta"})
        self.assert_matches(beta["rows"], {p: e for p, e in exp.items() if p[0] == "beta"})
        table = self.export()
        self.assertRegex(table, r"(?m)^CLIENT\s+DAY\s+MODEL\s+REQS\s+ERRORS\s+REFUSED")
        self.assertRegex(table, r"(?m)^TOTAL\s+")

    def test_client_views_show_todays_usage(self):
        exp = self.expected()
        p = self.ctl("clients", "--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        by = {c["name"]: c for c in json.loads(p.stdout)["clients"]}
        for name in ("cfgco", "acme", "beta"):
            mine = [e for (c, _), e in exp.items() if c == name]
            for f in ("requests", "errors", "refused", "prompt_tokens", "completion_tokens"):
                self.assertEqual(by[name]["today"][f], sum(e[f] for e in mine), f"{name} {f}")
                self.assertEqual(by[name]["this_month"][f], by[name]["today"][f])
        p = self.ctl("client", "beta", "--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        models = {m["model"]: m for m in json.loads(p.stdout)["client"]["models_today"]}
        self.assertEqual(set(models), {"m1", "m2"})
        for m in ("m1", "m2"):
            self.assertEqual(models[m]["requests"], exp[("beta", m)]["requests"])
            self.assertEqual(models[m]["completion_tokens"],
                             exp[("beta", m)]["completion_tokens"])
        p = self.ctl("client", "acme")
        self.assertRegex(p.stdout, r"today \(\d{4}-\d\d-\d\d\): 5 requests, 0 errors, 5 refused")
        table = self.ctl("clients").stdout
        self.assertRegex(table, r"ERR/D")
        for k in self.keys.values():
            self.assertNotIn(k, table + p.stdout)

    def test_metrics_carry_todays_errors_and_refusals(self):
        exp = self.expected()
        st, _, body = get(self.gw.port, "/metrics")
        self.assertEqual(st, 200)
        text = body.decode()
        for name in ("cfgco", "acme", "beta"):
            mine = [e for (c, _), e in exp.items() if c == name]
            for fam, f in (("errors", "errors"), ("refused", "refused")):
                self.assertIn(f'llmgate_client_{fam}_today{{client="{name}"}} '
                              f'{sum(e[f] for e in mine)}\n', text)
        for k in self.keys.values():
            self.assertNotIn(k, text)

    def test_bad_input(self):
        for args, what in ((("--from", "2026-02-30"), "--from"),
                           (("--to", "yesterday"), "--to"),
                           (("--from", utc_day(1), "--to", utc_day(-1)), "after"),
                           (("--csv", "--json"), "one output"),
                           (("--by", "week"), "--by"),
                           (("--client", "no such/name"), "client name")):
            p = self.ctl("usage", *args)
            self.assertEqual(p.returncode, 1, (args, p.stdout, p.stderr))
            self.assertIn(what, p.stderr)
            self.assertEqual(p.stdout, "")
        p = self.ctl("usage", "--client", "nobody", "--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["rows"], [])


if __name__ == "__main__":
    unittest.main()
