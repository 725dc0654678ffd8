"""The key policy against the mock upstream: every row of the outcome table, half-open
recovery, the provider circuit breaker, fallbacks across providers and models, backoff
bounds, waiting for capacity, a cooldown that survives a restart, and a 4-key scenario
in which every client request succeeds."""

import json
import os
import shutil
import signal
import tempfile
import threading
import time
import unittest

from harness import Mock, Gateway, post_json, wait_until

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def by_key(mock):
    return dict(mock.stats()["by_key"])


def delta(before, after, key):
    return after.get(key, 0) - before.get(key, 0)


class KeyPolicyTest(unittest.TestCase):
    def setUp(self):
        self.mock = Mock()
        self.gws = []
        self.tmp = tempfile.mkdtemp(prefix="llmgate-kp-")

    def tearDown(self):
        for g in self.gws:
            g.stop()
            g.cleanup()
        self.mock.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def gateway(self, keys, policy=None, models=None, providers=None, **kw):
        pol = {"backoff_base_ms": 10, "backoff_max_ms": 50, "wait_for_capacity_ms": 0}
        pol.update(policy or {})
        provs = providers or [{"name": "p", "url": self.mock.url(),
                               "keys": [(n, s, lim) for n, s, lim in keys]}]
        g = Gateway(provs, models or [{"name": "m", "deployments": [("p", "m")]}],
                    policy=pol, **kw)
        self.gws.append(g)
        return g

    def post(self, g, headers=None, model="m"):
        return post_json(g.port, "/v1/chat/completions", dict(CHAT, model=model), headers)

    # ---- the table, row by row --------------------------------------------------------

    def test_429_retry_after_cools_and_rotates(self):
        g = self.gateway([("a", "sk-a", None), ("b", "sk-b", None)])
        self.mock.script(key="sk-a", status=429, retry_after=30, count=1)
        self.mock.script(key="sk-b", status=429, retry_after=30, count=1)
        st, h, body = self.post(g)
        # both keys answer 429 once: the request rotated through both, then got the 429
        self.assertEqual(st, 429, body)
        self.assertEqual(h["x-llmgate-attempts"], "2")
        self.assertEqual(h["retry-after"], "30")
        # now both cool for 30 s: the gateway answers itself, without asking upstream
        before = self.mock.stats()["requests"]
        st, h, body = self.post(g)
        self.assertEqual(st, 429)
        self.assertIn("rate_limit_exceeded", body.decode())
        self.assertGreaterEqual(int(h["retry-after"]), 28)
        self.assertEqual(self.mock.stats()["requests"], before)

    def test_429_rotates_to_healthy_key(self):
        g = self.gateway([("a", "sk-a", None), ("b", "sk-b", None)])
        self.mock.script(key="sk-a", status=429, headers={"x-ratelimit-reset-requests": "20s"})
        for _ in range(6):
            st, h, body = self.post(g)
            self.assertEqual(st, 200, body)
            self.assertEqual(h["x-llmgate-key"], "b")
        # key a was asked once (then cooled for 20 s)
        self.assertEqual(by_key(self.mock).get("sk-a", 0), 1)

    def test_quota_depletes(self):
        g = self.gateway([("a", "sk-a", None), ("b", "sk-b", None), ("c", "sk-c", None)])
        self.mock.script(key="sk-a", status=429, error_code="insufficient_quota")
        self.mock.script(key="sk-b", status=402)
        for _ in range(8):
            st, h, body = self.post(g)
            self.assertEqual(st, 200, body)
            self.assertEqual(h["x-llmgate-key"], "c")
        seen = by_key(self.mock)
        self.assertEqual((seen.get("sk-a", 0), seen.get("sk-b", 0)), (1, 1))

    def test_401_invalid_until_enabled(self):
        g = self.gateway([("a", "sk-a", None), ("b", "sk-b", None)])
        self.mock.script(key="sk-a", status=401)
        for _ in range(6):
            st, h, _ = self.post(g)
            self.assertEqual((st, h["x-llmgate-key"]), (200, "b"))
        self.assertEqual(by_key(self.mock).get("sk-a", 0), 1)
        # with only invalid keys left, 503 naming the model, never a key
        g2 = self.gateway([("x", "sk-x", None)])
        self.mock.script(key="sk-x", status=403)
        st, _, body = self.post(g2)
        self.assertEqual(st, 502)  # the gateway's own answer: the provider refused its key
        self.assertEqual(json.loads(body)["error"]["code"], "upstream_auth_failed")
        st, _, body = self.post(g2)
        self.assertEqual(st, 503, body)
        self.assertIn("model m", body.decode())
        self.assertNotIn("sk-x", body.decode())

    def test_5xx_retried_then_threshold_cools(self):
        g = self.gateway([("a", "sk-a", None), ("b", "sk-b", None)],
                         policy={"failure_threshold": 2, "failure_cooldown_ms": 30000})
        self.mock.script(key="sk-a", status=500)
        for _ in range(8):
            st, h, body = self.post(g)
            self.assertEqual(st, 200, body)
        # a failed twice in a row at most, then cooled: never asked again
        self.assertLessEqual(by_key(self.mock).get("sk-a", 0), 2)

    def test_5xx_everywhere_gives_the_last_error_after_max_retries(self):
        g = self.gateway([("a", "sk-a", None), ("b", "sk-b", None), ("c", "sk-c", None)],
                         policy={"max_retries": 1, "failure_threshold": 0})
        for k in ("sk-a", "sk-b", "sk-c"):
            self.mock.script(key=k, status=503)
        st, h, body = self.post(g)
        self.assertEqual(st, 503)
        self.assertEqual(h["x-llmgate-attempts"], "2")  # one try + max_retries 1

    def test_model_not_found_next_deployment(self):
        provs = [{"name": "p1", "url": self.mock.url(), "keys": [("a", "sk-a", None)]},
                 {"name": "p2", "url": self.mock.url(), "keys": [("b", "sk-b", None)]}]
        g = self.gateway(None, providers=provs,
                         models=[{"name": "m", "deployments": [("p1", "m1", 1, 1),
                                                               ("p2", "m2", 1, 2)]}])
        self.mock.script(key="sk-a", status=404, error_code="model_not_found")
        for _ in range(4):
            st, h, body = self.post(g)
            self.assertEqual(st, 200, body)
            self.assertEqual(h["x-llmgate-provider"], "p2")
            self.assertEqual(json.loads(body)["model"], "m2")
        self.assertEqual(by_key(self.mock).get("sk-a", 0), 1)

    def test_other_4xx_passed_and_key_untouched(self):
        g = self.gateway([("a", "sk-a", None)])
        for _ in range(5):
            st, h, body = self.post(g, {"x-mock-status": "400",
                                        "x-mock-error-code": "context_length_exceeded"})
            self.assertEqual(st, 400)
            self.assertEqual(json.loads(body)["error"]["code"], "context_length_exceeded")
            self.assertEqual(h["x-llmgate-attempts"], "1")
        st, _, _ = self.post(g)
        self.assertEqual(st, 200)

    def test_remaining_zero_cools(self):
        g = self.gateway([("a", "sk-a", None), ("b", "sk-b", None)],
                         policy={"strategy": "round_robin"})
        self.mock.script(key="sk-a", count=1, headers={"x-ratelimit-remaining-requests": "0",
                                                       "x-ratelimit-reset-requests": "30s"})
        self.mock.script(key="sk-b", count=1, headers={"x-ratelimit-remaining-requests": "0",
                                                       "x-ratelimit-reset-requests": "30s"})
        self.assertEqual(self.post(g)[0], 200)
        self.assertEqual(self.post(g)[0], 200)
        # both said "nothing left until 30 s": the third request is refused by the gateway
        st, h, _ = self.post(g)
        self.assertEqual(st, 429)
        self.assertGreaterEqual(int(h["retry-after"]), 28)

    # ---- recovery, circuits, fallbacks, timing ----------------------------------------

    def test_half_open_recovery(self):
        g = self.gateway([("a", "sk-a", None), ("b", "sk-b", None)],
                         policy={"recovery_successes": 2, "strategy": "round_robin"})
        self.mock.script(key="sk-a", status=429, retry_after=1, count=1)
        self.assertEqual(self.post(g)[0], 200)  # a 429s, b serves
        base = by_key(self.mock).get("sk-a", 0)
        # after its second, a is probed again and, succeeding twice, takes its share
        wait_until(lambda: (self.post(g), by_key(self.mock).get("sk-a", 0) >= base + 3)[1],
                   10, interval=0.05, what="key a to recover")

    def test_half_open_failure_relapses_longer(self):
        g = self.gateway([("a", "sk-a", None), ("b", "sk-b", None)],
                         policy={"failure_threshold": 1, "failure_cooldown_ms": 1000,
                                 "cooldown_max_ms": 60000})
        self.mock.script(key="sk-a", status=500)
        self.assertEqual(self.post(g)[0], 200)  # a fails (cooling 1 s), b serves
        # after 1 s a is probed, fails again: now it cools 2 s (doubled)
        wait_until(lambda: (self.post(g), by_key(self.mock).get("sk-a", 0) >= 2)[1], 5,
                   interval=0.05, what="the first probe of key a")
        t_probe = time.monotonic()
        wait_until(lambda: (self.post(g), by_key(self.mock).get("sk-a", 0) >= 3)[1], 6,
                   interval=0.05, what="the second probe of key a")
        self.assertGreaterEqual(time.monotonic() - t_probe, 1.8)

    def test_circuit_opens_and_falls_back(self):
        provs = [{"name": "bad", "url": self.mock.url(), "keys": [("a", "sk-a", None),
                                                                  ("a2", "sk-a2", None)]},
                 {"name": "good", "url": self.mock.url(), "keys": [("b", "sk-b", None)]}]
        g = self.gateway(None, providers=provs,
                         policy={"circuit_min_requests": 4, "circuit_error_percent": 50,
                                 "circuit_open_ms": 60000, "failure_threshold": 0,
                                 "max_retries": 5},
                         models=[{"name": "m", "deployments": [("bad", "m", 1, 1),
                                                               ("good", "m", 1, 2)]}])
        self.mock.script(key="sk-a", status=500)
        self.mock.script(key="sk-a2", status=500)
        for _ in range(6):
            st, h, _ = self.post(g)
            self.assertEqual(st, 200)
            self.assertEqual(h["x-llmgate-provider"], "good")
        bad = by_key(self.mock).get("sk-a", 0) + by_key(self.mock).get("sk-a2", 0)
        for _ in range(10):
            st, h, _ = self.post(g)
            self.assertEqual((st, h["x-llmgate-attempts"]), (200, "1"))
        after = by_key(self.mock).get("sk-a", 0) + by_key(self.mock).get("sk-a2", 0)
        self.assertEqual(after, bad, "an open circuit sends nothing to its provider")

    def test_fallback_model(self):
        provs = [{"name": "p1", "url": self.mock.url(), "keys": [("a", "sk-a", None)]},
                 {"name": "p2", "url": self.mock.url(), "keys": [("b", "sk-b", None)]}]
        g = self.gateway(None, providers=provs, models=[
            {"name": "m", "deployments": [("p1", "m")], "fallbacks": ["f"]},
            {"name": "f", "deployments": [("p2", "f-upstream")]}])
        self.mock.script(key="sk-a", status=503)
        st, h, body = self.post(g)
        self.assertEqual(st, 200, body)
        self.assertEqual(json.loads(body)["model"], "f-upstream")
        self.assertEqual(h["x-llmgate-attempts"], "2")

    def test_backoff_bounds(self):
        g = self.gateway([("a", "sk-a", None), ("b", "sk-b", None), ("c", "sk-c", None)],
                         policy={"backoff_base_ms": 300, "backoff_max_ms": 400,
                                 "max_retries": 2, "failure_threshold": 0})
        for k in ("sk-a", "sk-b", "sk-c"):
            self.mock.script(key=k, status=500)
        t0 = time.monotonic()
        st, h, _ = self.post(g)
        took = time.monotonic() - t0
        self.assertEqual((st, h["x-llmgate-attempts"]), (500, "3"))
        # two backoffs, each at most min(400, 300 * 2^n) ms: 300 + 400, plus slack
        self.assertLess(took, 0.7 + 1.5, took)

    def test_wait_for_capacity(self):
        g = self.gateway([("a", "sk-a", {"rpm": 1})], policy={"wait_for_capacity_ms": 3000})
        self.mock.script(key="sk-a", status=429, retry_after=1, count=1)
        st, h, _ = self.post(g)
        self.assertEqual(st, 429)  # the only key said 429: passed on
        t0 = time.monotonic()
        g2 = self.gateway([("k", "sk-k", None)], policy={"wait_for_capacity_ms": 3000,
                                                         "max_retries": 0})
        self.mock.script(key="sk-k", status=429, retry_after=1, count=1)
        st, _, _ = self.post(g2)
        self.assertEqual(st, 429)
        t0 = time.monotonic()
        st, _, body = self.post(g2)  # cooling ~1 s: the request waits for it
        self.assertEqual(st, 200, body)
        self.assertGreater(time.monotonic() - t0, 0.3)

    def test_dynamic_first_byte_timeout(self):
        provs = [{"name": "p", "url": self.mock.url(), "keys": [("a", "sk-a", None)],
                  "first_byte_timeout_ms": 400, "first_byte_timeout_per_1k_tokens_ms": 1000}]
        g = self.gateway(None, providers=provs, policy={"max_retries": 0,
                                                        "failure_threshold": 0})
        slow = {"x-mock-delay-ms": "1200"}
        # a small request keeps the base timeout: 400 ms < 1200 ms
        st, _, body = post_json(g.port, "/v1/chat/completions", CHAT, slow)
        self.assertEqual(st, 504, body)
        # max_tokens 2000 adds 2 s: the same upstream delay is now within the timeout
        st, _, body = post_json(g.port, "/v1/chat/completions", dict(CHAT, max_tokens=2000),
                                slow)
        self.assertEqual(st, 200, body)

    def test_probes_end_depletion_and_skip_invalid(self):
        g = self.gateway([("a", "sk-a", None), ("b", "sk-b", None), ("c", "sk-c", None),
                          ("d", "sk-d", None)],
                         policy={"probe_interval_ms": 200, "strategy": "round_robin"})
        self.mock.script(key="sk-a", status=402, count=1)  # depleted until midnight...
        self.mock.script(key="sk-b", status=401, count=1)  # invalid until enabled
        self.mock.script(key="sk-c", status=429, retry_after=600, count=1)  # cooling 10 min
        for _ in range(5):
            self.assertEqual(self.post(g)[0], 200)
        # ... but the next probe (GET /models with key a) succeeds: a serves again
        wait_until(lambda: self.post(g)[1].get("x-llmgate-key") == "a", 10, interval=0.05,
                   what="a probe to end key a's depletion")
        self.assertIn("depletion ended", g.proc.output())
        # c keeps being probed (and stays cooling); b, invalid, never is
        models = lambda: self.mock.stats()["by_path"].get("/v1/models", 0)
        n0, b0 = models(), by_key(self.mock).get("sk-b", 0)
        wait_until(lambda: models() >= n0 + 3, 10, what="three more probes of key c")
        self.assertEqual(by_key(self.mock).get("sk-b", 0), b0)
        self.assertEqual(b0, 1, "key b was asked once, by the request that found it invalid")
        self.assertNotIn("c", {self.post(g)[1].get("x-llmgate-key") for _ in range(6)})

    def test_cooldown_survives_restart(self):
        state = os.path.join(self.tmp, "state")
        g = self.gateway([("a", "sk-a", None)], state_dir=state)
        self.mock.script(key="sk-a", status=429, retry_after=60, count=1)
        self.assertEqual(self.post(g)[0], 429)
        self.assertEqual(g.stop(), 0)
        g2 = self.gateway([("a", "sk-a", None)], state_dir=state)
        before = self.mock.stats()["requests"]
        st, h, _ = self.post(g2)
        self.assertEqual(st, 429)
        self.assertGreaterEqual(int(h["retry-after"]), 50)
        self.assertEqual(self.mock.stats()["requests"], before)

    def test_scenario_four_keys(self):
        g = self.gateway([("limited", "sk-limited", None), ("broken", "sk-broken", None),
                          ("revoked", "sk-revoked", None), ("healthy", "sk-healthy", None)],
                         policy={"failure_threshold": 2, "failure_cooldown_ms": 60000,
                                 "max_retries": 3})
        self.mock.script(key="sk-limited", status=429, retry_after=60)
        self.mock.script(key="sk-broken", status=500)
        self.mock.script(key="sk-revoked", status=401)
        results = []
        lock = threading.Lock()

        def worker(n):
            for _ in range(n):
                st, h, _ = self.post(g)
                with lock:
                    results.append(st)

        ts = [threading.Thread(target=worker, args=(125,)) for _ in range(8)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(120)
        self.assertEqual(len(results), 1000)
        self.assertEqual(results.count(200), 1000, {s: results.count(s) for s in set(results)})
        seen = by_key(self.mock)
        self.assertGreaterEqual(seen["sk-healthy"], 1000)
        # the bad keys were each asked only until the policy took them out
        self.assertLessEqual(seen.get("sk-limited", 0), 8)
        self.assertLessEqual(seen.get("sk-revoked", 0), 8)
        self.assertLessEqual(seen.get("sk-broken", 0), 16)


if __name__ == "__main__":
    unittest.main(verbosity=2)
