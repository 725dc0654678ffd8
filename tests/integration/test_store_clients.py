"""Client keys kept in the store (issue 19), as the running servers see them: two llmgate
processes on one state dir, under load, while `llmgatectl client add / revoke / rotate / set`
change the clients.

- under load over both processes: a client that stays valid never fails, a revoked client's
  key is refused (401 "revoked") from the moment the revoke returned, a rotated-away key is
  refused (401 "replaced") and the new one passes, a client added meanwhile passes at once;
- a store client's rpm is exact over both processes, and a `client set` that raises it is
  obeyed at the next request: exactly the difference more is admitted;
- an expired key is refused with a message that says so;
- a name both in the configuration and the store: the server refuses to start, and a reload
  that adds it is refused, each message naming both places;
- no generated key appears in any output of the servers or in their store.

Binaries: LLMGATE_BIN, MOCK_BIN, LLMGATECTL_BIN."""

import concurrent.futures
import json
import os
import re
import signal
import subprocess
import threading
import time
import unittest

from harness import Gateway, Mock, Proc, LLMGATE_BIN, get, post_json, wait_until

LLMGATECTL_BIN = os.environ.get("LLMGATECTL_BIN", "build/cli/llmgatectl")
KEY_RE = re.compile(r"lgk-[A-Za-z0-9_-]{43}")


def store_gateway(mock, state_dir=None, start=True, extra_clients=""):
    """A gateway whose configuration has no client keys (and does not allow anonymous use):
    it serves only the store's clients."""
    prov = {"name": "mock", "url": mock.url(), "keys": [("up1", "sk-store-clients-up", None)]}
    gw = Gateway([prov], [{"name": "m", "deployments": [("mock", "gpt-x")]}], workers=2,
                 state_dir=state_dir, start=False, extra_yaml="metrics: {listen: main}\n")
    gw.config_text = gw.config_text.replace("allow_unauthenticated: true\n", "") + extra_clients
    with open(gw.config, "w") as f:
        f.write(gw.config_text)
    if start:
        gw.start()
    return gw


class Ctl:
    def __init__(self, state_dir, gateways):
        self.state_dir = state_dir
        self.gateways = gateways

    def run(self, *args, ok=True):
        p = subprocess.run([LLMGATECTL_BIN, "--state", self.state_dir, *args],
                           capture_output=True, text=True, timeout=30)
        if ok and p.returncode != 0:
            raise AssertionError(f"llmgatectl {' '.join(args)}: rc {p.returncode}: "
                                 f"{p.stdout}{p.stderr}")
        return p

    def new_key(self, *args):
        """add or rotate: the key printed once, registered as a secret of every gateway."""
        out = self.run("client", *args).stdout
        m = KEY_RE.search(out)
        if not m:
            raise AssertionError(f"no key in the output of client {args[0]}: {out!r}")
        for gw in self.gateways:
            gw.secrets.append(m.group(0))
        return m.group(0)


def chat(port, key, timeout=30):
    st, _, body = post_json(port, "/v1/chat/completions",
                            {"model": "m", "messages": [{"role": "user", "content": "hi"}]},
                            headers={"Authorization": "Bearer " + key}, timeout=timeout)
    return st, body.decode(errors="replace")


class StoreClientsTest(unittest.TestCase):
    def setUp(self):
        self.mock = Mock()
        self.addCleanup(self.mock.stop)
        self.a = store_gateway(self.mock)
        self.addCleanup(self.a.cleanup)
        self.b = store_gateway(self.mock, state_dir=self.a.state_dir)
        self.addCleanup(self.b.cleanup)
        self.ctl = Ctl(self.a.state_dir, [self.a, self.b])

    def test_live_changes_under_load(self):
        stay = self.ctl.new_key("add", "stay")
        revokee = self.ctl.new_key("add", "revokee")
        rot_old = self.ctl.new_key("add", "rotatee")
        keys = {"stay": stay, "revokee": revokee, "rot_old": rot_old}
        events = {}
        log = []  # (label, sent, done, status, body)
        lock = threading.Lock()
        stop = threading.Event()

        def worker(i):
            n = 0
            while not stop.is_set():
                with lock:
                    labels = list(keys)
                label = labels[n % len(labels)]
                port = (self.a.port, self.b.port)[(n + i) % 2]
                n += 1
                sent = time.monotonic()
                st, body = chat(port, keys[label])
                done = time.monotonic()
                with lock:
                    log.append((label, sent, done, st, body))

        def wait_requests(label, count):
            wait_until(lambda: sum(1 for e in list(log) if e[0] == label) >= count, timeout=20,
                       what=f"{count} requests with {label}")

        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            futs = [ex.submit(worker, i) for i in range(8)]
            wait_requests("revokee", 30)
            events["revoke_start"] = time.monotonic()
            self.ctl.run("client", "revoke", "revokee")
            events["revoke_done"] = time.monotonic()
            wait_requests("rot_old", 60)
            events["rotate_start"] = time.monotonic()
            rot_new = self.ctl.new_key("rotate", "rotatee", "--grace", "0")
            events["rotate_done"] = time.monotonic()
            newbie = self.ctl.new_key("add", "newbie")
            events["add_done"] = time.monotonic()
            with lock:
                keys["rot_new"] = rot_new
                keys["newbie"] = newbie
            wait_requests("newbie", 30)
            wait_requests("rot_new", 30)
            stop.set()
            for f in futs:
                f.result()

        by = {}
        for label, sent, done, st, body in log:
            by.setdefault(label, []).append((sent, done, st, body))
        print(f"# {len(log)} requests: " +
              ", ".join(f"{k} {len(v)}" for k, v in sorted(by.items())))
        bad = [(s, b[:120]) for _, _, s, b in by["stay"] if s != 200]
        self.assertEqual(bad, [], "a client that stays valid never fails")
        for label, ev, word in (("revokee", "revoke", "revoked"), ("rot_old", "rotate", "replaced")):
            before = [s for sent, done, s, _ in by[label] if done < events[ev + "_start"]]
            after = [(s, b) for sent, _, s, b in by[label] if sent > events[ev + "_done"]]
            self.assertTrue(before and after, f"{label}: requests before and after the {ev}")
            self.assertEqual(set(before), {200}, f"{label} passed before the {ev}")
            self.assertEqual({s for s, _ in after}, {401}, f"{label} refused after the {ev}")
            self.assertTrue(all(word in b for _, b in after), f"the 401 says {word}")
            for _, b in after:
                for k in (revokee, rot_old, rot_new):
                    self.assertNotIn(k, b, "the refusal never echoes a key")
        for label in ("rot_new", "newbie"):
            got = {s for sent, _, s, _ in by[label] if sent > events["add_done"]}
            self.assertEqual(got, {200}, f"{label} passes from its first request")

    def test_budget_exact_and_live_set(self):
        key = self.ctl.new_key("add", "metered", "--rpm", "10")

        def burst(n):
            ports = [self.a.port, self.b.port]
            with concurrent.futures.ThreadPoolExecutor(20) as ex:
                return list(ex.map(lambda i: chat(ports[i % 2], key)[0], range(n)))

        before = self.mock.stats()["by_key"].get("sk-store-clients-up", 0)
        got = burst(40)
        self.assertEqual(got.count(200), 10, f"rpm 10 over two processes: {got}")
        self.assertEqual(got.count(429), 30)
        self.ctl.run("client", "set", "metered", "--rpm", "15")
        got = burst(40)
        self.assertEqual(got.count(200), 5, "raised to 15 with 10 used: exactly 5 more")
        up = self.mock.stats()["by_key"].get("sk-store-clients-up", 0) - before
        self.assertEqual(up, 15, "the mock saw exactly what was admitted")
        p = self.ctl.run("client", "metered", "--json")
        self.assertNotIn(key, p.stdout + p.stderr, "client NAME never shows the key")
        st, _, body = get(self.b.port, "/metrics")
        text = body.decode()
        self.assertEqual(st, 200)
        for line in ('llmgate_client_info{client="metered",source="store",status="active"} 1',
                     'llmgate_client_requests_total{client="metered"} 15',
                     'llmgate_client_budget_used{client="metered",budget="rpm"} 15',
                     'llmgate_client_budget_limit{client="metered",budget="rpm"} 15'):
            self.assertIn(line, text, "the client's figures in the metrics of either process")
        self.assertNotIn(key, text)

    def test_expired_key(self):
        key = self.ctl.new_key("add", "temp", "--expires", "2s")
        st, _ = chat(self.a.port, key)
        self.assertEqual(st, 200, "valid before its expiry")
        got = wait_until(lambda: (lambda r: r if r[0] == 401 else None)(chat(self.b.port, key)),
                         timeout=10, interval=0.2, what="the key expires")
        self.assertIn("expired", got[1])
        self.assertNotIn(key, got[1])


class ConflictTest(unittest.TestCase):
    def test_name_in_config_and_store(self):
        mock = Mock()
        self.addCleanup(mock.stop)
        gw = store_gateway(mock)
        self.addCleanup(gw.cleanup)
        ctl = Ctl(gw.state_dir, [gw])
        ctl.new_key("add", "acme")
        # a reload that brings a configuration client of the same name is refused
        clash = ("client_keys:\n  - name: acme\n    sha256: "
                 "5bef590c9b702157b92db28d965b0344addf6549efbdf61dbc9483ce78406083\n")
        with open(gw.config, "w") as f:
            f.write(gw.config_text + clash)
        gw.proc.p.send_signal(signal.SIGHUP)
        line = gw.proc.wait_line(r"reload refused: .*acme.*")
        self.assertIn(gw.config, line.group(0))
        self.assertIn("client_keys[0]", line.group(0))
        self.assertIn(gw.state_dir, line.group(0))
        gw.stop()
        # and a start with it is refused the same way
        p = Proc([LLMGATE_BIN, "--config", gw.config], env=gw.env, name="llmgate")
        p.p.wait(20)
        rc = p.stop()
        self.assertNotEqual(rc, 0, "the server refuses to start")
        self.assertIn("client_keys[0].name: client \"acme\" is also a client of the store",
                      p.output())


if __name__ == "__main__":
    unittest.main()
