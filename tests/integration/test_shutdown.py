"""SIGTERM and SIGINT: stop accepting, let the request in flight finish, exit 0; a request
that outlives shutdown_timeout_ms is cut and the process still exits 0."""

import json
import signal
import socket
import threading
import unittest

from harness import Mock, simple_gateway, post_json, wait_until

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


class ShutdownTest(unittest.TestCase):
    def setUp(self):
        self.mock = Mock()

    def tearDown(self):
        self.mock.stop()

    def drain_case(self, sig):
        gw = simple_gateway(self.mock)
        try:
            result = {}

            def slow():
                result["r"] = post_json(gw.port, "/v1/chat/completions", CHAT,
                                        {"x-mock-delay-ms": "1500"})

            t = threading.Thread(target=slow)
            t.start()
            wait_until(lambda: self.mock.stats()["by_path"].get("/v1/chat/completions", 0) >= 1
                       or None, 5, what="the slow request to reach the mock")
            gw.proc.send(sig)
            gw.proc.wait_line(r"draining")
            # new connections are refused once draining
            def refused():
                try:
                    socket.create_connection(("127.0.0.1", gw.port), timeout=1).close()
                    return False
                except OSError:
                    return True
            wait_until(refused, 5, what="the listener to close")
            t.join(10)
            st, _, body = result["r"]
            self.assertEqual(st, 200, body)
            self.assertEqual(gw.proc.p.wait(10), 0)
            self.assertIn("stopped", gw.proc.output())
        finally:
            gw.stop()
            gw.cleanup()

    def test_sigterm_drains(self):
        self.drain_case(signal.SIGTERM)

    def test_sigint_drains(self):
        self.drain_case(signal.SIGINT)

    def test_deadline_cuts_long_requests(self):
        gw = simple_gateway(self.mock, extra_yaml="")
        # shutdown_timeout_ms is 5000 in the harness config; the request takes 60 s.
        try:
            s = socket.create_connection(("127.0.0.1", gw.port), timeout=30)
            body = json.dumps(CHAT).encode()
            s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nx-mock-delay-ms: 60000\r\n"
                      b"Content-Length: %d\r\n\r\n" % len(body) + body)
            wait_until(lambda: self.mock.stats()["by_path"].get("/v1/chat/completions", 0) >= 1
                       or None, 5, what="the request to reach the mock")
            gw.proc.send(signal.SIGTERM)
            self.assertEqual(gw.proc.p.wait(15), 0)
            self.assertIn("closing the connections still open", gw.proc.output())
            s.close()
        finally:
            gw.stop()
            gw.cleanup()

    def test_idle_connections_do_not_hold_shutdown(self):
        gw = simple_gateway(self.mock)
        try:
            socks = [socket.create_connection(("127.0.0.1", gw.port)) for _ in range(20)]
            st, _, _ = post_json(gw.port, "/v1/chat/completions", CHAT)
            self.assertEqual(st, 200)
            gw.proc.send(signal.SIGTERM)
            self.assertEqual(gw.proc.p.wait(4), 0)
            self.assertNotIn("closing the connections still open", gw.proc.output())
            for s in socks:
                s.close()
        finally:
            gw.stop()
            gw.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
