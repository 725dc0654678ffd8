"""Several hosts sharing their limits through Redis by leases (issue 15): a real redis-server,
several llmgate "hosts" (own state dirs, ports, node ids) on one mock upstream.

- 3 hosts, 3 keys of rpm 20: 300 concurrent requests over the hosts admit at most 60 in all,
  at least 60 - the documented bound, and the mock sees at most 20 per key;
- kill -9 of a host holding grants: the others never over-admit, and once its grants stop
  counting (lease_ms + 62 s) they admit again;
- Redis killed mid-run: degraded mode (/health/full, metrics), each host within its safe
  share; Redis back (its state lost): leased again, the usage reconciled, still within the
  limit;
- a 429 on host A cools the key on B and C; llmgatectl disable / enable on A's state dir
  reach B and C; a provider circuit A opens is open on B, which then sends it nothing;
- the Redis password is in no output, metric, health body, store or CLI output; a wrong one
  leaves the host degraded with a message that does not carry it.

Binaries: LLMGATE_BIN, MOCK_BIN, LLMGATECTL_BIN; redis-server from PATH."""

import concurrent.futures
import json
import math
import os
import signal
import subprocess
import time
import unittest

from harness import Gateway, Mock, post_json, wait_until
from test_cluster_cli import Redis

LLMGATECTL_BIN = os.environ.get("LLMGATECTL_BIN", "build/cli/llmgatectl")
PASSWORD = "redis-pw-7Hq-must-not-leak"
LEASE_MS = 1000


def cluster_yaml(redis, node, expected, password=False, share=None, timeout_ms=300):
    y = ["metrics: {listen: \"127.0.0.1:0\"}", "cluster:", f"  redis: \"127.0.0.1:{redis.port}\"", f"  node_id: {node}",
         f"  expected_nodes: {expected}", f"  lease_ms: {LEASE_MS}", f"  timeout_ms: {timeout_ms}"]
    if password:
        y.append("  password_env: LLMGATE_TEST_SECRET_REDIS")
    if share:
        y.append(f"  safe_share: {share}")
    return "\n".join(y) + "\n"


def host(mock, redis, node, expected, keys, password=None, share=None, wait_ms=500):
    env = {"LLMGATE_TEST_SECRET_REDIS": password} if password else None
    prov = {"name": "mock", "url": mock.url(), "keys": keys}
    return Gateway([prov], [{"name": "m", "deployments": [("mock", "gpt-x")]}],
                   policy={"wait_for_capacity_ms": wait_ms, "max_retries": 0},
                   extra_yaml=cluster_yaml(redis, node, expected, bool(password), share),
                   env=env, workers=2)


def admin_health(gw):
    """/health/full from the admin listener (the main listener does not serve it by default)."""
    return health_at(gw, "/health/full")


def health_at(gw, path):
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", gw.admin_port, timeout=10)
    c.request("GET", path)
    r = c.getresponse()
    out = r.read().decode()
    c.close()
    return json.loads(out) if path.startswith("/health") else out


def chat(port):
    try:
        status = post_json(port, "/v1/chat/completions",
                              {"model": "m", "messages": [{"role": "user", "content": "hi"}]},
                              timeout=30)[0]
        return status
    except Exception as e:  # a refused connection counts as not admitted
        return str(e)


def burst(hosts, n):
    """n concurrent requests spread round-robin over hosts: {host index: admitted}."""
    ports = [h.port for h in hosts]
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(n, 100)) as ex:
        res = list(ex.map(lambda i: (i % len(ports), chat(ports[i % len(ports)])), range(n)))
    got = {}
    for i, st in res:
        got[i] = got.get(i, 0) + (st == 200)
    return got


def ctl(*args):
    p = subprocess.run([LLMGATECTL_BIN, *args], capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout + p.stderr


def key_status(gw, key):
    rc, out = ctl("--state", gw.state_dir, "key", key, "--json")
    if rc != 0:
        return None
    return json.loads(out)["key"]["status"]


class ClusterTest(unittest.TestCase):
    def setUp(self):
        self.mock = Mock()
        self.addCleanup(self.mock.stop)
        self.redis = Redis()
        self.addCleanup(self.redis.stop)
        self.hosts = []

    def start_hosts(self, n, keys, **kw):
        for i in range(n):
            h = host(self.mock, self.redis, f"node-{chr(97 + i)}", n, keys, **kw)
            self.hosts.append(h)
            self.addCleanup(h.cleanup)
            h.admin_port = int(h.proc.wait_line(r"admin http on \S+ \(port (\d+)\)").group(1))
        for h in self.hosts:  # every host leases before the traffic starts
            wait_until(lambda h=h: admin_health(h).get("cluster", {}).get("mode") == "leased",
                       timeout=10, what="the host leases from Redis")

    def test_three_hosts_share_the_limits(self):
        keys = [(f"k{i}", f"sk-cluster-{i}", {"rpm": 20}) for i in range(3)]
        self.start_hosts(3, keys)
        got = burst(self.hosts, 300)
        total = sum(got.values())
        cap = math.ceil(20 / (2 * 3))
        bound = 3 * 3 * cap  # per key expected_nodes x lease cap, three keys
        print(f"# 3 hosts, 3 keys of rpm 20: {total} of 60 admitted ({got}); bound {bound}")
        self.assertLessEqual(total, 60)
        self.assertGreaterEqual(total, 60 - bound)
        by_key = self.mock.stats()["by_key"]
        for _, secret, _ in keys:
            self.assertLessEqual(by_key.get(secret, 0), 20, f"mock saw more than 20 for {secret}")
        self.assertEqual(sum(by_key.get(s, 0) for _, s, _ in keys), total)
        # the second minute's window is still full: nothing more
        self.assertEqual(sum(burst(self.hosts, 30).values()), 0)
        rc, out = ctl("--config", self.hosts[0].config, "cluster", "--json")
        self.assertEqual(rc, 0, out)
        view = json.loads(out)
        self.assertEqual(sorted(n["node"] for n in view["nodes"]), ["node-a", "node-b", "node-c"])
        for n in view["nodes"]:
            self.assertEqual(n["mode"], "leased")
        m = health_at(self.hosts[0], "/metrics")
        self.assertIn("llmgate_cluster_degraded 0", m)
        self.assertRegex(m, r"llmgate_cluster_lease_refills_total [1-9]")

    def test_kill9_strands_only_its_grants(self):
        keys = [("k1", "sk-cluster-k9", {"rpm": 10})]
        self.start_hosts(2, keys)
        a, b = self.hosts
        t0 = time.monotonic()
        got_a = burst([a], 4)[0]
        self.assertEqual(got_a, 4)
        a.proc.send(signal.SIGKILL)
        a.proc.p.wait(10)
        # b: at most what is left of the limit, whatever a held unused
        got_b = sum(burst([b], 30).values())
        print(f"# kill -9: a admitted {got_a}, then b {got_b} of the 10")
        self.assertLessEqual(got_a + got_b, 10)
        self.assertGreaterEqual(got_b, 10 - 4 - math.ceil(10 / 4) * 2)
        self.assertLessEqual(self.mock.stats()["by_key"].get("sk-cluster-k9", 0), 10)
        # a's grants stop counting lease_ms + 62 s after they were made: b admits again,
        # never before 60 s after the first admissions
        def again():
            return chat(b.port) == 200
        wait_until(again, timeout=100, interval=1.0, what="b admits once a's grants expired")
        self.assertGreaterEqual(time.monotonic() - t0, 60.0)

    def test_redis_gone_degraded_then_back(self):
        keys = [("k1", "sk-cluster-dg", {"rpm": 20})]
        self.start_hosts(2, keys, share=0.5)
        port = self.redis.port
        self.redis.kill()
        for h in self.hosts:
            wait_until(lambda h=h: admin_health(h)["cluster"]["mode"] == "degraded", timeout=10,
                       what="degraded without Redis")
            self.assertIn("llmgate_cluster_degraded 1", health_at(h, "/metrics"))
            self.assertEqual(admin_health(h)["status"], "ready")
        got = burst(self.hosts, 60)
        print(f"# degraded: {got} admitted, share 0.5 of rpm 20")
        for i, n in got.items():
            self.assertLessEqual(n, 10, f"host {i} over its safe share")
        self.assertEqual(sum(got.values()), 20)  # each host its whole share: nothing leased
        self.redis.stop()
        self.redis = Redis(port=port)  # a new Redis: the old one's state is lost
        self.addCleanup(self.redis.stop)
        for h in self.hosts:
            wait_until(lambda h=h: admin_health(h)["cluster"]["mode"] == "leased", timeout=15,
                       what="leased again once Redis is back")
        # the usage of the window was reconciled: the limit is spent
        more = sum(burst(self.hosts, 30).values())
        self.assertEqual(more, 0, "Redis came back empty: the hosts' usage must count")
        self.assertLessEqual(self.mock.stats()["by_key"].get("sk-cluster-dg", 0), 20)
        for h in self.hosts:
            self.assertIn("degraded", h.proc.output())

    def test_status_reaches_every_host(self):
        keys = [("k1", "sk-cluster-s1", None), ("k2", "sk-cluster-s2", None)]
        self.start_hosts(3, keys)
        a, b, c = self.hosts
        self.mock.script(key="sk-cluster-s1", status=429, retry_after=30, count=1)
        for _ in range(4):  # round robin: k1 meets the 429 within two requests
            chat(a.port)
        wait_until(lambda: key_status(a, "k1") == "cooling", timeout=5, what="k1 cooling on a")
        for h in (b, c):
            wait_until(lambda h=h: key_status(h, "k1") == "cooling", timeout=3,
                       what="k1 cooling on every host")
        rc, out = ctl("--state", a.state_dir, "disable", "k2")
        self.assertEqual(rc, 0, out)
        for h in (b, c):
            wait_until(lambda h=h: key_status(h, "k2") == "disabled", timeout=3,
                       what="k2 disabled on every host")
        rc, out = ctl("--state", c.state_dir, "enable", "k2")
        self.assertEqual(rc, 0, out)
        for h in (a, b):
            wait_until(lambda h=h: key_status(h, "k2") == "active", timeout=3,
                       what="k2 enabled on every host")


    def test_open_circuit_reaches_every_host(self):
        """Provider "bad" fails on A until its circuit opens; B, which has sent it nothing,
        takes the open circuit from A and sends it nothing either."""
        for node in ("node-a", "node-b"):
            provs = [{"name": "bad", "url": self.mock.url(),
                      "keys": [("c1", "sk-cb1", None), ("c2", "sk-cb2", None)]},
                     {"name": "good", "url": self.mock.url(), "keys": [("g1", "sk-cg1", None)]}]
            h = Gateway(provs, [{"name": "m", "deployments": [("bad", "m", 1, 1),
                                                               ("good", "m", 1, 2)]}],
                        policy={"circuit_min_requests": 4, "circuit_error_percent": 50,
                                "circuit_open_ms": 60000, "failure_threshold": 0,
                                "max_retries": 5},
                        extra_yaml=cluster_yaml(self.redis, node, 2), workers=2)
            self.addCleanup(h.cleanup)
            h.admin_port = int(h.proc.wait_line(r"admin http on \S+ \(port (\d+)\)").group(1))
            self.hosts.append(h)
        a, b = self.hosts
        for h in self.hosts:
            wait_until(lambda h=h: admin_health(h).get("cluster", {}).get("mode") == "leased",
                       timeout=10, what="the host leases from Redis")
        self.mock.script(key="sk-cb1", status=500)
        self.mock.script(key="sk-cb2", status=500)

        def circuit(h):
            rc, out = ctl("--state", h.state_dir, "providers", "--json")
            self.assertEqual(rc, 0, out)
            return {p["name"]: p["circuit"] for p in json.loads(out)["providers"]}["bad"]

        for _ in range(6):
            st, hd, _ = post_json(a.port, "/v1/chat/completions",
                                  {"model": "m", "messages": [{"role": "user", "content": "hi"}]})
            self.assertEqual((st, hd.get("x-llmgate-provider")), (200, "good"))
        self.assertEqual(circuit(a), "open")
        wait_until(lambda: circuit(b) == "open", timeout=3, what="bad's circuit open on b")
        by_key = self.mock.stats()["by_key"]
        sent = by_key.get("sk-cb1", 0) + by_key.get("sk-cb2", 0)
        for _ in range(8):
            st, hd, _ = post_json(b.port, "/v1/chat/completions",
                                  {"model": "m", "messages": [{"role": "user", "content": "hi"}]})
            self.assertEqual((st, hd.get("x-llmgate-attempts")), (200, "1"))
        by_key = self.mock.stats()["by_key"]
        self.assertEqual(by_key.get("sk-cb1", 0) + by_key.get("sk-cb2", 0), sent,
                         "b sends nothing to a provider whose circuit a opened")
        self.assertIn("circuit is open as node node-a says", b.proc.output())


class ClusterPasswordTest(unittest.TestCase):
    def test_password_never_shown(self):
        mock = Mock()
        self.addCleanup(mock.stop)
        redis = Redis(password=PASSWORD)
        self.addCleanup(redis.stop)
        keys = [("k1", "sk-cluster-pw", {"rpm": 5})]
        good = host(mock, redis, "node-a", 1, keys, password=PASSWORD)
        self.addCleanup(good.cleanup)
        good.admin_port = int(good.proc.wait_line(r"admin http on \S+ \(port (\d+)\)").group(1))
        bad = host(mock, redis, "node-b", 1, keys, password="not-" + PASSWORD)
        self.addCleanup(bad.cleanup)
        bad.admin_port = int(bad.proc.wait_line(r"admin http on \S+ \(port (\d+)\)").group(1))
        wait_until(lambda: admin_health(good)["cluster"]["mode"] == "leased", timeout=10,
                   what="the right password leases")
        self.assertEqual(chat(good.port), 200)
        bad.proc.wait_line(r"Redis refused the connection", timeout=10)
        wait_until(lambda: admin_health(bad)["cluster"]["mode"] == "degraded", timeout=10,
                   what="a wrong password: degraded")
        texts = [json.dumps(admin_health(good)), health_at(good, "/metrics"),
                 ctl("--config", good.config, "cluster")[1],
                 ctl("--config", good.config, "cluster", "--json")[1],
                 ctl("--state", good.state_dir, "keys")[1]]
        good.stop()
        bad.stop()  # check_no_secrets: neither password in the outputs and stores
        texts += [good.proc.output(), bad.proc.output()]
        for t in texts:
            self.assertNotIn(PASSWORD, t)
        self.assertIn("degraded", bad.proc.output())


if __name__ == "__main__":
    unittest.main()
