"""Client keys through the real server: 401 for a missing or unknown key, 403 for a model
the client may not use, 429 with Retry-After for a spent budget - exact under concurrency
(50 requests against a budget of 10 admit exactly 10) - and never an echo of the key."""

import hashlib
import json
import threading
import unittest

from harness import Mock, Gateway, post_json, get

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
APP_KEY = "sk-client-app-0123456789"
LIMITED_KEY = "sk-client-limited-9876543210"


def clients_yaml():
    return ("client_keys:\n"
            f"  - {{name: app, sha256: {hashlib.sha256(APP_KEY.encode()).hexdigest()}, "
            "models: [m]}\n"
            "  - {name: limited, secret_env: LLMGATE_TEST_CLIENT_LIMITED, rpm: 10}\n")


class ClientKeysTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.mock = Mock()
        cls.gw = Gateway([{"name": "p", "url": cls.mock.url(), "keys": [("k", "sk-up", None)]}],
                         [{"name": "m", "deployments": [("p", "m")]},
                          {"name": "other", "deployments": [("p", "other")]}],
                         clients=True, extra_yaml=clients_yaml(),
                         env={"LLMGATE_TEST_CLIENT_LIMITED": LIMITED_KEY})

    @classmethod
    def tearDownClass(cls):
        cls.gw.stop()
        cls.gw.cleanup()
        cls.mock.stop()

    def post(self, key=None, model="m", header="authorization"):
        h = {}
        if key is not None:
            h = {header: f"Bearer {key}" if header == "authorization" else key}
        return post_json(self.gw.port, "/v1/chat/completions", dict(CHAT, model=model), h)

    def test_missing_and_unknown_401(self):
        for key in (None, "sk-not-a-client-key"):
            st, h, body = self.post(key)
            self.assertEqual(st, 401, body)
            j = json.loads(body)
            self.assertIn(j["error"]["code"], ("missing_api_key", "invalid_api_key"))
            self.assertNotIn("sk-not-a-client-key", body.decode())
            self.assertIn("bearer", h.get("www-authenticate", "").lower())

    def test_valid_key_and_x_api_key(self):
        st, _, body = self.post(APP_KEY)
        self.assertEqual(st, 200, body)
        st, _, body = self.post(APP_KEY, header="x-api-key")
        self.assertEqual(st, 200, body)
        # the client's credential never goes upstream: the provider key does
        auth = [v for n, v in self.mock.last()["headers"] if n.lower() == "authorization"]
        self.assertEqual(auth, ["Bearer sk-up"])

    def test_model_not_allowed_403(self):
        st, _, body = self.post(APP_KEY, model="other")
        self.assertEqual(st, 403, body)
        self.assertEqual(json.loads(body)["error"]["code"], "model_not_allowed")
        self.assertNotIn(APP_KEY, body.decode())

    def test_models_list_is_per_client(self):
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", self.gw.port, timeout=10)
        c.request("GET", "/v1/models", headers={"Authorization": f"Bearer {APP_KEY}"})
        r = c.getresponse()
        ids = sorted(m["id"] for m in json.loads(r.read())["data"])
        c.close()
        self.assertEqual(ids, ["m"])
        st, _, _ = get(self.gw.port, "/v1/models")
        self.assertEqual(st, 401)
        st, _, _ = get(self.gw.port, "/health")
        self.assertEqual(st, 200)

    def test_budget_exact_under_concurrency(self):
        out = []
        lock = threading.Lock()

        def one():
            st, h, body = self.post(LIMITED_KEY)
            with lock:
                out.append((st, h, body))

        ts = [threading.Thread(target=one) for _ in range(50)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(30)
        ok = [x for x in out if x[0] == 200]
        refused = [x for x in out if x[0] == 429]
        self.assertEqual((len(ok), len(refused)), (10, 40), [x[0] for x in out])
        for st, h, body in refused:
            self.assertEqual(json.loads(body)["error"]["code"], "client_budget_exceeded")
            self.assertGreaterEqual(int(h["retry-after"]), 1)
            self.assertNotIn(LIMITED_KEY, body.decode())

    def test_no_secret_in_gateway_output(self):
        self.post(APP_KEY)
        self.post("sk-wrong-key-should-not-appear")
        out = self.gw.proc.output()
        for s in (APP_KEY, LIMITED_KEY, "sk-up", "sk-wrong-key-should-not-appear"):
            self.assertNotIn(s, out)



HDR_KEY = "sk-client-headers-5550123"


class ClientRateLimitHeadersTest(unittest.TestCase):
    """x-ratelimit-* describe the client key's own budgets (the provider's are dropped), on
    chat and on Anthropic Messages; the gateway's own 429 and 503 carry Retry-After."""

    @classmethod
    def setUpClass(cls):
        import os
        import subprocess
        cls.subprocess, cls.os = subprocess, os
        cls.mock = Mock()
        cls.gw = Gateway(
            [{"name": "p", "url": cls.mock.url(), "keys": [("k", "sk-up", None)]},
             {"name": "an", "api": "anthropic", "url": cls.mock.url(),
              "keys": [("an-1", "sk-an-1", None)]},
             {"name": "dead", "url": cls.mock.url(), "keys": [("dead-1", "sk-dead-1", None)]}],
            [{"name": "m", "deployments": [("p", "m")]},
             {"name": "claude", "deployments": [("an", "claude-sonnet-4-5")]},
             {"name": "gone", "deployments": [("dead", "gone")]}],
            clients=True, policy={"probe_interval_ms": 7000, "wait_for_capacity_ms": 0},
            extra_yaml=("client_keys:\n"
                        "  - {name: hdr, secret_env: LLMGATE_TEST_CLIENT_HDR, rpm: 4,"
                        " tokens_per_day: 100000}\n"),
            env={"LLMGATE_TEST_CLIENT_HDR": HDR_KEY})

    @classmethod
    def tearDownClass(cls):
        cls.gw.stop()
        cls.gw.cleanup()
        cls.mock.stop()

    def test_headers_budget_and_retry_after(self):
        ask = {"authorization": f"Bearer {HDR_KEY}",
               # the provider answers with its own rate-limit headers: they must not pass
               "x-mock-ratelimit-remaining-requests": "57",
               "x-mock-ratelimit-reset-requests": "7s"}
        st, h, body = post_json(self.gw.port, "/v1/chat/completions", CHAT, ask)
        self.assertEqual(st, 200, body)
        self.assertEqual(h.get("x-ratelimit-limit-requests"), "4")
        self.assertEqual(h.get("x-ratelimit-remaining-requests"), "3", h)
        self.assertRegex(h.get("x-ratelimit-reset-requests", ""), r"^(1m[01]s|[1-5][0-9]s)$")
        self.assertEqual(h.get("x-ratelimit-limit-tokens"), "100000")
        remaining_tokens = int(h["x-ratelimit-remaining-tokens"])
        self.assertTrue(0 < remaining_tokens < 100000, remaining_tokens)
        self.assertRegex(h.get("x-ratelimit-reset-tokens", ""), r"^([0-9]+h)?([0-9]+m)?[0-9]+s$")

        # Anthropic Messages: the same budgets, one request later
        st, h, body = post_json(self.gw.port, "/v1/messages",
                                {"model": "claude", "max_tokens": 16,
                                 "messages": [{"role": "user", "content": "hi"}]},
                                {"x-api-key": HDR_KEY, "anthropic-version": "2023-06-01",
                                 "x-mock-anthropic-ratelimit-requests-remaining": "41"})
        self.assertEqual(st, 200, body)
        self.assertEqual(h.get("x-ratelimit-remaining-requests"), "2", h)
        self.assertNotIn("anthropic-ratelimit-requests-remaining", h,
                         "the provider's limits are not the client's")

        # the gateway's own 503 (every key of the model disabled) carries Retry-After
        env = dict(self.os.environ)
        p = self.subprocess.run([self.os.environ.get("LLMGATECTL_BIN", "build/cli/llmgatectl"),
                                 "--config", self.gw.config, "disable", "dead-1"],
                                capture_output=True, text=True, env=self.gw.env, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        st, h, body = post_json(self.gw.port, "/v1/chat/completions", dict(CHAT, model="gone"),
                                {"authorization": f"Bearer {HDR_KEY}"})
        self.assertEqual(st, 503, body)
        self.assertEqual(json.loads(body)["error"]["code"], "no_upstream_available")
        self.assertEqual(h.get("retry-after"), "7", "the probe interval")
        self.assertEqual(h.get("x-ratelimit-remaining-requests"), "2",
                         "a request no key could serve took nothing of the budget")
        del env

        # spend the rest: the 429 says 0 left and when to come back
        for left in ("1", "0"):
            st, h, body = post_json(self.gw.port, "/v1/chat/completions", CHAT,
                                    {"authorization": f"Bearer {HDR_KEY}"})
            self.assertEqual(st, 200, body)
            self.assertEqual(h.get("x-ratelimit-remaining-requests"), left, h)
        st, h, body = post_json(self.gw.port, "/v1/chat/completions", CHAT,
                                {"authorization": f"Bearer {HDR_KEY}"})
        self.assertEqual(st, 429, body)
        self.assertEqual(json.loads(body)["error"]["code"], "client_budget_exceeded")
        self.assertGreaterEqual(int(h["retry-after"]), 1)
        self.assertEqual(h.get("x-ratelimit-remaining-requests"), "0", h)
        self.assertEqual(h.get("x-ratelimit-limit-requests"), "4", h)


if __name__ == "__main__":
    unittest.main(verbosity=2)
