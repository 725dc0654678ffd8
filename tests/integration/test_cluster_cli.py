"""`llmgatectl cluster` against a real redis-server holding the Redis layout of cluster mode
(issue 15): the nodes (a live one, a gone one, one seen only in a grant id), the live units
per node of a key's and a client key's limits (an expired grant not counted), the same in
--json; a config without a cluster section and a Redis that is down are exit 1 with a
message naming the address; with a password (redis --requirepass, password_env) the password
appears in no output, right, wrong or missing.

The data is written with a small RESP client (the `redis` module is not a dependency), as
the lease script and the heartbeat write it. Binaries: LLMGATECTL_BIN; redis-server from
PATH (or REDIS_SERVER)."""

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

from harness import wait_until

LLMGATECTL_BIN = os.environ.get("LLMGATECTL_BIN", "build/cli/llmgatectl")
REDIS_SERVER = os.environ.get("REDIS_SERVER") or shutil.which("redis-server") or \
    "/usr/bin/redis-server"
PASSWORD = "redis-pw-Zq8-never-printed"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Resp:
    """A blocking RESP2 client: enough for AUTH, PING, TIME, SADD, HSET, ZADD, FLUSHALL."""

    def __init__(self, port, password=None, timeout=2.0):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.f = self.s.makefile("rb")
        if password:
            self.cmd("AUTH", password)

    def close(self):
        self.f.close()
        self.s.close()

    def cmd(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.s.sendall(b"".join(out))
        return self._read()

    def _read(self):
        line = self.f.readline()
        if not line:
            raise ConnectionError("redis closed the connection")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.f.read(n + 2)[:-2]
            return data.decode()
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._read() for _ in range(n)]
        raise RuntimeError(f"bad RESP line {line!r}")


class Redis:
    """redis-server on a loopback port, no persistence; stop() ends it and removes its dir."""

    def __init__(self, password=None, port=None):
        """port: start on this one (a restart), else on a free one."""
        self.password = password
        self.dir = tempfile.mkdtemp(prefix="llmgate-redis-")
        for _ in range(5):  # the port is free when picked; another process may take it first
            self.port = port or free_port()
            argv = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                    "--appendonly", "no", "--dir", self.dir]
            if password:
                argv += ["--requirepass", password]
            self.log = open(os.path.join(self.dir, "redis.log"), "wb")
            self.p = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT)
            try:
                wait_until(self._pong, timeout=10, what=f"redis-server PING on {self.port}")
                return
            except AssertionError:
                if self.p.poll() is None or port:
                    raise
                self.log.close()  # it exited: the port was taken, try another
        raise AssertionError("redis-server did not start (see its log)")

    def _pong(self):
        if self.p.poll() is not None:
            raise AssertionError("redis-server exited")
        try:
            c = Resp(self.port, self.password, timeout=0.5)
        except OSError:
            return False
        try:
            return c.cmd("PING") == "PONG"
        finally:
            c.close()

    def client(self):
        return Resp(self.port, self.password)

    def kill(self):
        """SIGKILL: Redis gone at once, its state lost (no persistence)."""
        self.p.kill()
        self.p.wait()

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def write_config(path, redis_port=None, password_env=None, prefix=None):
    lines = ['listen: ["127.0.0.1:0"]',
             f'state_dir: {json.dumps(os.path.join(os.path.dirname(path), "state"))}',
             "providers:",
             "  - name: mock",
             '    base_url: "http://127.0.0.1:9"',
             "    keys:",
             "      - {name: k1, secret_env: CLT_SECRET_K1, rpm: 20, rpd: 1000}",
             "      - {name: k2, secret_env: CLT_SECRET_K2}",
             "models:",
             "  - name: m",
             "    deployments:",
             "      - {provider: mock, model: m}",
             "client_keys:",
             "  - {name: team-a, secret_env: CLT_CLIENT_A, rpm: 30, cost_per_day_usd: 5}",
             "  - {name: team-free, secret_env: CLT_CLIENT_B}"]
    if redis_port:
        lines += ["cluster:", f'  redis: "127.0.0.1:{redis_port}"', "  node_id: host-a",
                  "  expected_nodes: 3"]
        if password_env:
            lines.append(f"  password_env: {password_env}")
        if prefix:
            lines.append(f"  prefix: {prefix}")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def ctl(*args, env_extra=None, forbidden=(PASSWORD,)):
    env = {k: v for k, v in os.environ.items() if k not in ("LLMGATE_CONFIG", "LLMGATE_STATE_DIR")}
    env["NO_COLOR"] = "1"
    env.update(env_extra or {})
    p = subprocess.run([LLMGATECTL_BIN, *args], capture_output=True, text=True, env=env,
                       timeout=30)
    for s in forbidden:
        assert s not in p.stdout + p.stderr, f"a password in the output of {args}"
    return p.returncode, p.stdout, p.stderr


def tables(text):
    """The blocks of the output after the summary line, each {(first, second cell): row}."""
    blocks = [b for b in text.split("\n\n")[1:] if b.strip()]
    out = []
    for b in blocks:
        lines = b.strip("\n").splitlines()
        head = re.split(r"\s{2,}", lines[0].strip())
        rows = {}
        for l in lines[1:]:
            cells = re.split(r"\s{2,}", l.strip())
            assert len(cells) == len(head), f"row {l!r} does not fit header {head}"
            rows[(cells[0], cells[1])] = dict(zip(head, cells))
        out.append((head, rows))
    return out


def put_grants(r, key, now_ms, grants):
    """grants: [(grant id, amount, ms from Redis' now until which it counts)]."""
    for gid, amount, ttl in grants:
        r.cmd("ZADD", key, now_ms + ttl, gid)
        r.cmd("HSET", key + ":a", gid, amount)


class ClusterCliTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="llmgate-cluster-cli-")
        cls.redis = Redis()

    @classmethod
    def tearDownClass(cls):
        cls.redis.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def fill(self, prefix="llmgate"):
        r = self.redis.client()
        try:
            r.cmd("FLUSHALL")
            sec, usec = r.cmd("TIME")
            now = int(sec) * 1000 + int(usec) // 1000
            wall = int(time.time() * 1000)
            r.cmd("SADD", f"{prefix}:nodes", "host-a", "host-b")
            r.cmd("HSET", f"{prefix}:node:host-a", "last_contact_ms", wall - 400, "mode",
                  "leased", "pid", 4242, "grants", 4, "units", 11, "refills", 17,
                  "refill_p50_us", 850, "refill_max_us", 2500, "version", "9.9.9")
            # host-b is listed but its heartbeat hash has expired: gone
            put_grants(r, "{%s:k:k1}:rpm" % prefix, now, [
                ("host-a/4242/1", 5, 60000), ("host-a/4242/2", 3, 60000),
                ("host-b/777/1", 7, 30000),
                ("host-a/4242/0", 50, -1000),   # expired: its score is behind Redis' TIME
                ("host-b/777/0", 40, -1)])
            put_grants(r, "{%s:k:k1}:rpd" % prefix, now, [("host-b/777/2", 4, 3600000)])
            # a key without limits is no entity, whatever Redis holds
            put_grants(r, "{%s:k:k2}:rpm" % prefix, now, [("host-a/4242/9", 99, 60000)])
            # host-c is in no set and has no hash: seen only in a grant id
            put_grants(r, "{%s:c:team-a}:rpm" % prefix, now, [("host-a/4242/3", 2, 60000),
                                                              ("host-c/1/1", 1, 60000)])
            put_grants(r, "{%s:c:team-a}:costd" % prefix, now, [("host-a/4242/4", 1234567,
                                                                 3600000)])
        finally:
            r.close()

    def test_table(self):
        self.fill()
        cfg = write_config(os.path.join(self.tmp, "t.yaml"), self.redis.port)
        rc, out, err = ctl("--config", cfg, "cluster")
        self.assertEqual(rc, 0, err)
        self.assertEqual(err, "")
        self.assertTrue(out.startswith(f"redis 127.0.0.1:{self.redis.port}  prefix llmgate  "
                                       "nodes 3 (2 gone), 3 expected\n"), out)
        (nh, nodes), (kh, keys), (ch, clients) = tables(out)
        self.assertEqual(nh, ["NODE", "MODE", "CONTACT", "PID", "GRANTS", "UNITS", "REFILLS",
                              "REFILL P50", "REFILL MAX", "VERSION"])
        a = nodes[("host-a", "leased")]
        m = re.fullmatch(r"(\d+\.\d)s ago", a["CONTACT"])
        self.assertTrue(m, a)
        self.assertTrue(0.3 <= float(m.group(1)) < 10, a)
        self.assertEqual([a["PID"], a["GRANTS"], a["UNITS"], a["REFILLS"], a["REFILL P50"],
                          a["REFILL MAX"], a["VERSION"]],
                         ["4242", "4", "11", "17", "850us", "2.5ms", "9.9.9"])
        for n in ("host-b", "host-c"):
            self.assertEqual(nodes[(n, "-")]["CONTACT"], "gone", out)
        self.assertEqual(kh, ["KEY", "NODE", "RPM", "TPM", "RPD"])
        self.assertEqual(keys[("k1", "host-a")], {"KEY": "k1", "NODE": "host-a", "RPM": "8/20",
                                                  "TPM": "-", "RPD": "0/1000"})
        self.assertEqual(keys[("k1", "host-b")]["RPM"], "7/20")
        self.assertEqual(keys[("k1", "host-b")]["RPD"], "4/1000")
        self.assertEqual(keys[("k1", "(all)")]["RPM"], "15/20", "expired grants not counted")
        self.assertEqual(keys[("k1", "(all)")]["RPD"], "4/1000")
        self.assertEqual(len(keys), 3, "k2 has no limit: not shown")
        self.assertEqual(ch, ["CLIENT", "NODE", "RPM", "RPD", "TOK/D", "TOK/M", "COST/D",
                              "COST/M"])
        self.assertEqual(clients[("team-a", "host-a")]["RPM"], "2/30")
        self.assertEqual(clients[("team-a", "host-a")]["COST/D"], "$1.2346/$5.0000")
        self.assertEqual(clients[("team-a", "host-c")]["RPM"], "1/30")
        self.assertEqual(clients[("team-a", "host-c")]["COST/D"], "$0.0000/$5.0000")
        self.assertEqual(clients[("team-a", "(all)")]["RPM"], "3/30")
        self.assertNotIn("team-free", out)

        # the same through LLMGATE_CONFIG
        rc, out2, err = ctl("cluster", env_extra={"LLMGATE_CONFIG": cfg})
        self.assertEqual(rc, 0, err)
        self.assertEqual(tables(out2)[1], (kh, keys))

    def test_json(self):
        self.fill(prefix="lg-test")
        cfg = write_config(os.path.join(self.tmp, "j.yaml"), self.redis.port, prefix="lg-test")
        rc, out, err = ctl("--config", cfg, "cluster", "--json")
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.count("\n"), 1, "one line")
        j = json.loads(out)
        self.assertEqual((j["schema"], j["command"], j["config"], j["prefix"], j["redis"],
                          j["expected_nodes"]),
                         (1, "cluster", cfg, "lg-test", f"127.0.0.1:{self.redis.port}", 3))
        self.assertGreater(j["redis_time_ms"], 0)
        nodes = {n["node"]: n for n in j["nodes"]}
        self.assertEqual([n["node"] for n in j["nodes"]], ["host-a", "host-b", "host-c"])
        a = nodes["host-a"]
        self.assertEqual((a["listed"], a["gone"], a["mode"], a["pid"], a["grants"], a["units"],
                          a["refills"], a["refill_p50_us"], a["refill_max_us"], a["version"]),
                         (True, False, "leased", 4242, 4, 11, 17, 850, 2500, "9.9.9"))
        self.assertTrue(300 <= a["last_contact_age_ms"] < 10000, a)
        self.assertEqual(a["last_contact_ms"], j["generated_ms"] - a["last_contact_age_ms"])
        for n, listed in (("host-b", True), ("host-c", False)):
            self.assertEqual((nodes[n]["listed"], nodes[n]["gone"], nodes[n]["mode"],
                              nodes[n]["last_contact_ms"], nodes[n]["pid"]),
                             (listed, True, None, 0, None), n)
        ents = {(e["kind"], e["name"]): e for e in j["entities"]}
        self.assertEqual(list(ents), [("key", "k1"), ("client", "team-a")])
        k1 = {d["dim"]: d for d in ents[("key", "k1")]["dims"]}
        self.assertEqual(ents[("key", "k1")]["provider"], "mock")
        self.assertEqual(list(k1), ["rpm", "rpd"])
        self.assertEqual(k1["rpm"], {"dim": "rpm", "limit": 20, "units": 15, "grants": 3,
                                     "nodes": [{"node": "host-a", "units": 8, "grants": 2},
                                               {"node": "host-b", "units": 7, "grants": 1}]})
        self.assertEqual(k1["rpd"], {"dim": "rpd", "limit": 1000, "units": 4, "grants": 1,
                                     "nodes": [{"node": "host-b", "units": 4, "grants": 1}]})
        ta = {d["dim"]: d for d in ents[("client", "team-a")]["dims"]}
        self.assertIsNone(ents[("client", "team-a")]["provider"])
        self.assertEqual(list(ta), ["rpm", "costd"])
        self.assertEqual((ta["rpm"]["units"], ta["rpm"]["limit"]), (3, 30))
        self.assertEqual((ta["costd"]["units"], ta["costd"]["limit"]), (1234567, 5000000))

    def test_empty_redis(self):
        r = self.redis.client()
        r.cmd("FLUSHALL")
        r.close()
        cfg = write_config(os.path.join(self.tmp, "e.yaml"), self.redis.port)
        rc, out, err = ctl("--config", cfg, "cluster")
        self.assertEqual(rc, 0, err)
        self.assertIn("no node has joined yet (llmgate:nodes is empty)", out)
        self.assertEqual(tables(out)[1][1][("k1", "(all)")]["RPM"], "0/20")
        rc, out, err = ctl("--config", cfg, "cluster", "--json")
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["nodes"], [])

    def test_no_cluster_section(self):
        cfg = write_config(os.path.join(self.tmp, "alone.yaml"))
        rc, out, err = ctl("--config", cfg, "cluster")
        self.assertEqual((rc, out), (1, ""))
        self.assertIn(f"llmgatectl: {cfg} has no cluster section", err)

    def test_redis_down(self):
        port = free_port()  # nothing listens there
        cfg = write_config(os.path.join(self.tmp, "down.yaml"), port)
        for extra in ((), ("--json",)):
            t = time.monotonic()
            rc, out, err = ctl("--config", cfg, "cluster", *extra)
            self.assertEqual((rc, out), (1, ""), err)
            self.assertIn(f"cannot reach Redis at 127.0.0.1:{port}", err)
            self.assertLess(time.monotonic() - t, 10)

    def test_usage(self):
        cfg = write_config(os.path.join(self.tmp, "u.yaml"), self.redis.port)
        for args, msg in ((("cluster",), "cluster needs the server's config"),
                          (("--config", cfg, "cluster", "x"), "cluster takes no arguments"),
                          (("--state", self.tmp, "cluster"), "--state does not apply"),
                          (("--config", cfg, "cluster", "--provider", "p"),
                           "--provider does not apply to cluster")):
            rc, out, err = ctl(*args)
            self.assertEqual((rc, out), (1, ""), args)
            self.assertIn(msg, err, args)
        rc, _, err = ctl("--config", os.path.join(self.tmp, "missing.yaml"), "cluster")
        self.assertEqual(rc, 2, err)
        rc, out, _ = ctl("--help")
        self.assertIn("  cluster ", out)


class ClusterCliPasswordTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="llmgate-cluster-cli-pw-")
        cls.redis = Redis(password=PASSWORD)
        r = cls.redis.client()
        r.cmd("SADD", "llmgate:nodes", "host-a")
        r.cmd("HSET", "llmgate:node:host-a", "last_contact_ms", int(time.time() * 1000),
              "mode", "degraded", "pid", 1)
        r.close()
        cls.cfg = write_config(os.path.join(cls.tmp, "pw.yaml"), cls.redis.port,
                               password_env="CLT_REDIS_PASSWORD")

    @classmethod
    def tearDownClass(cls):
        cls.redis.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_right_password(self):
        for extra in ((), ("--json",)):
            rc, out, err = ctl("--config", self.cfg, "cluster", *extra,
                               env_extra={"CLT_REDIS_PASSWORD": PASSWORD})
            self.assertEqual(rc, 0, err)
            self.assertIn("degraded", out)

    def test_wrong_password(self):
        wrong = "wrong-pw-Kx3-never-printed"
        rc, out, err = ctl("--config", self.cfg, "cluster",
                           env_extra={"CLT_REDIS_PASSWORD": wrong},
                           forbidden=(PASSWORD, wrong))
        self.assertEqual((rc, out), (1, ""))
        self.assertIn(f"Redis at 127.0.0.1:{self.redis.port} refused the password from "
                      "$CLT_REDIS_PASSWORD", err)

    def test_no_password(self):
        rc, out, err = ctl("--config", self.cfg, "cluster")
        self.assertEqual((rc, out), (1, ""))
        self.assertIn(f"Redis at 127.0.0.1:{self.redis.port} wants a password: set "
                      "$CLT_REDIS_PASSWORD", err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
