"""The state plane through the real server: every request is admitted through the LMDB
store, so limits hold across workers and across gateway processes sharing a state dir,
and survive a restart and a kill -9; in-flight reservations of a killed process are
reclaimed."""

import json
import os
import signal
import stat
import threading
import unittest

from harness import Mock, Gateway, post_json, wait_until

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def gateway(mock, state_dir, limits, workers=2, keys=1, start=True):
    ks = [(f"s{i}", f"sk-state-{i}", limits) for i in range(keys)]
    return Gateway([{"name": "p", "url": mock.url(), "keys": ks}],
                   [{"name": "m", "deployments": [("p", "m")]}],
                   workers=workers, state_dir=state_dir, start=start)


class StateTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.mock = Mock()

    @classmethod
    def tearDownClass(cls):
        cls.mock.stop()

    def setUp(self):
        import tempfile
        self.tmp = tempfile.mkdtemp(prefix="llmgate-state-")
        self.state = os.path.join(self.tmp, "state")
        self.gws = []

    def tearDown(self):
        import shutil
        for g in self.gws:
            g.stop()
            g.cleanup()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def start(self, limits, **kw):
        g = gateway(self.mock, self.state, limits, **kw)
        self.gws.append(g)
        return g

    def burst(self, ports, n, headers=None):
        """n concurrent requests spread over ports; returns the list of statuses."""
        out = []
        lock = threading.Lock()

        def one(i):
            st, h, body = post_json(ports[i % len(ports)], "/v1/chat/completions", CHAT,
                                    headers)
            with lock:
                out.append((st, h))

        ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(30)
        return out

    def test_store_files_private(self):
        self.start({"rpm": 100})
        self.assertEqual(stat.S_IMODE(os.stat(self.state).st_mode), 0o700)
        for f in ("data.mdb", "lock.mdb"):
            self.assertEqual(stat.S_IMODE(os.stat(os.path.join(self.state, f)).st_mode), 0o600)
        with open(os.path.join(self.state, "data.mdb"), "rb") as f:
            self.assertNotIn(b"sk-state-0", f.read())

    def test_rpm_exact_across_two_processes(self):
        a = self.start({"rpm": 10})
        b = self.start({"rpm": 10})
        res = self.burst([a.port, b.port], 30)
        ok = [s for s, _ in res if s == 200]
        limited = [h for s, h in res if s == 429]
        self.assertEqual(len(ok), 10, [s for s, _ in res])
        self.assertEqual(len(limited), 20)
        for h in limited:
            self.assertGreaterEqual(int(h["retry-after"]), 1)
            self.assertLessEqual(int(h["retry-after"]), 61)

    def test_limit_survives_restart(self):
        g = self.start({"rpm": 3, "rpd": 100})
        self.assertEqual([s for s, _ in self.burst([g.port], 3)], [200] * 3)
        self.assertEqual(g.stop(), 0)
        g2 = self.start({"rpm": 3, "rpd": 100})
        st, h, body = post_json(g2.port, "/v1/chat/completions", CHAT)
        self.assertEqual(st, 429, body)
        self.assertIn("retry-after", h)

    def test_kill9_keeps_counts(self):
        g = self.start({"rpm": 4}, workers=1)
        self.assertEqual([s for s, _ in self.burst([g.port], 4)], [200] * 4)
        g.proc.stop(signal.SIGKILL)
        g2 = self.start({"rpm": 4}, workers=1)
        st, h, body = post_json(g2.port, "/v1/chat/completions", CHAT)
        self.assertEqual(st, 429, body)

    def test_kill9_inflight_reclaimed(self):
        g = self.start({"max_inflight": 2}, workers=1)
        base = self.mock.stats()["requests"]
        # two slow requests hold both in-flight slots
        slow = threading.Thread(target=self.burst,
                                args=([g.port], 2, {"x-mock-delay-ms": "20000"}), daemon=True)
        slow.start()
        wait_until(lambda: self.mock.stats()["requests"] >= base + 2, 10,
                   what="both slow requests to reach the upstream")
        st, h, body = post_json(g.port, "/v1/chat/completions", CHAT)
        self.assertEqual(st, 429, body)
        self.assertEqual(h["retry-after"], "1")
        g.proc.stop(signal.SIGKILL)
        g2 = self.start({"max_inflight": 2}, workers=1)
        # The dead process's reservations are reclaimed when the new process registers as an
        # owner, or by maintenance (about once a second) at the latest.
        wait_until(lambda: post_json(g2.port, "/v1/chat/completions", CHAT)[0] == 200, 10,
                   what="the killed process's reservations to be reclaimed")

    def test_refuses_others_writable_state_dir(self):
        os.makedirs(self.state, mode=0o700)
        os.chmod(self.state, 0o777)
        g = gateway(self.mock, self.state, {"rpm": 1}, workers=1, start=False)
        self.gws.append(g)
        from harness import Proc, LLMGATE_BIN
        p = Proc([LLMGATE_BIN, "--config", g.config], env=g.env, name="llmgate")
        self.assertNotEqual(p.p.wait(10), 0)
        p.stop()
        self.assertIn(self.state, p.output())
        self.assertIn("writable", p.output())


if __name__ == "__main__":
    unittest.main(verbosity=2)
