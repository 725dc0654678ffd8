"""Hostile clients: no request can choose where it goes upstream (absolute-form targets,
Host headers, query strings), upstream redirects are passed on and never followed, and
10,000 idle connections do not stop new requests from being served. (Malformed requests,
limits and slow clients: test_http_limits.py; secrets: every test's gateway output and
store are searched at stop by harness.Gateway.)"""

import json
import resource
import socket
import time
import unittest

from harness import Mock, simple_gateway, post_json, raw_exchange, wait_until

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


class SecurityTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # for us and the gateway
        # the gateway inherits a non-zero core limit, so that lowering it is its own doing
        csoft, chard = resource.getrlimit(resource.RLIMIT_CORE)
        if chard != 0:
            resource.setrlimit(resource.RLIMIT_CORE, (chard if chard != resource.RLIM_INFINITY
                                                      else 1 << 30, chard))
        cls.mock = Mock()
        cls.other = Mock(threads=1)  # a host a request might try to reach instead
        cls.gw = simple_gateway(cls.mock, workers=2, policy={"failure_threshold": 0})

    @classmethod
    def tearDownClass(cls):
        cls.gw.stop()
        cls.gw.cleanup()
        cls.other.stop()
        cls.mock.stop()

    def test_absolute_form_target_is_not_a_proxy(self):
        body = json.dumps(CHAT).encode()
        before = self.other.stats()["requests"]
        out = raw_exchange(self.gw.port,
                           b"POST http://127.0.0.1:%d/v1/chat/completions HTTP/1.1\r\n"
                           b"Host: 127.0.0.1:%d\r\nConnection: close\r\nContent-Length: %d\r\n\r\n"
                           % (self.other.port, self.other.port, len(body)) + body)
        self.assertIn(b" 404 ", out.split(b"\r\n")[0])
        self.assertEqual(self.other.stats()["requests"], before)

    def test_host_header_and_query_do_not_redirect(self):
        before = self.other.stats()["requests"]
        st, _, _ = post_json(self.gw.port,
                             "/v1/chat/completions?base_url=http://127.0.0.1:%d" % self.other.port,
                             CHAT, {"Host": "127.0.0.1:%d" % self.other.port,
                                    "X-Forwarded-Host": "127.0.0.1:%d" % self.other.port})
        self.assertEqual(st, 200)
        hdrs = dict((n.lower(), v) for n, v in self.mock.last()["headers"])
        self.assertEqual(hdrs["host"], "127.0.0.1:%d" % self.mock.port)
        self.assertEqual(self.other.stats()["requests"], before)

    def test_no_core_dumps_by_default(self):
        # a core would hold the secrets: llmgate sets its own soft core limit to 0
        with open(f"/proc/{self.gw.proc.p.pid}/limits") as f:
            line = [l for l in f if l.startswith("Max core file size")][0]
        self.assertEqual(line.split()[4], "0", line)

    def test_upstream_redirect_not_followed(self):
        before = self.mock.stats()["requests"]
        st, h, _ = post_json(self.gw.port, "/v1/chat/completions", CHAT, {"x-mock-status": "302"})
        self.assertEqual(st, 302)
        self.assertEqual(h["x-llmgate-attempts"], "1")
        self.assertEqual(self.mock.stats()["requests"], before + 1)

    def test_10000_idle_connections_do_not_block_service(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = 10000 + 1000
        if hard < want:
            self.skipTest(f"needs {want} file descriptors, the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), hard))
        # the gateway inherited its limit at start: read what it has
        with open(f"/proc/{self.gw.proc.p.pid}/limits") as f:
            line = [l for l in f if l.startswith("Max open files")][0]
        if int(line.split()[3]) < want:
            self.skipTest("the gateway's open-files limit is below 11000")
        socks = []
        try:
            for _ in range(10000):
                socks.append(socket.create_connection(("127.0.0.1", self.gw.port), timeout=10))
            t0 = time.monotonic()
            st, _, _ = post_json(self.gw.port, "/v1/chat/completions", CHAT, timeout=10)
            self.assertEqual(st, 200)
            st, _, _ = post_json(self.gw.port, "/v1/chat/completions", dict(CHAT, stream=True))
            self.assertEqual(st, 200)
            self.assertLess(time.monotonic() - t0, 5)
        finally:
            for s in socks:
                s.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
