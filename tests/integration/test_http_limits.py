"""Downstream HTTP limits and malformed input: every limit answers with the right status
and an OpenAI-shaped JSON error, and the connection is closed after it."""

import json
import socket
import time
import unittest

from harness import Mock, simple_gateway, raw_exchange


def status_and_json(out):
    head, _, body = out.partition(b"\r\n\r\n")
    line = head.split(b"\r\n")[0].decode()
    status = int(line.split()[1])
    return status, head.decode("latin-1"), json.loads(body) if body.strip() else None


class LimitsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.mock = Mock(threads=1)
        cls.gw = simple_gateway(cls.mock, limits={
            "max_header_bytes": 4096, "max_headers": 20, "max_url_bytes": 512,
            "max_body_bytes": 10000, "header_timeout_ms": 700, "body_timeout_ms": 700,
            "idle_timeout_ms": 1000})

    @classmethod
    def tearDownClass(cls):
        cls.gw.stop()
        cls.gw.cleanup()
        cls.mock.stop()

    def check(self, raw, want, code=None):
        out = raw_exchange(self.gw.port, raw)
        st, head, j = status_and_json(out)
        self.assertEqual(st, want, out[:300])
        self.assertIn("Connection: close", head)
        self.assertIn("error", j)
        self.assertEqual(set(j["error"]), {"message", "type", "param", "code"})
        if code:
            self.assertEqual(j["error"]["code"], code)
        return j

    def test_header_bytes_431(self):
        self.check(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 5000 + b"\r\n\r\n", 431)

    def test_header_count_431(self):
        hs = b"".join(b"X-H%d: v\r\n" % i for i in range(30))
        self.check(b"GET /health HTTP/1.1\r\nHost: x\r\n" + hs + b"\r\n", 431)

    def test_url_414(self):
        self.check(b"GET /" + b"a" * 600 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414)

    def test_body_content_length_413(self):
        self.check(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 20000\r\n\r\n",
                   413)

    def test_body_chunked_413(self):
        chunk = b"a" * 4000
        body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(4)) + b"0\r\n\r\n"
        self.check(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\n" + body, 413)

    def test_chunked_body_accepted_under_limit(self):
        body = b'{"model":"mini","messages":[]}'
        raw = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
        out = raw_exchange(self.gw.port, raw)
        self.assertIn(b"200 OK", out.split(b"\r\n")[0])

    def test_malformed_400(self):
        self.check(b"GARBAGE\r\n\r\n", 400)
        self.check(b"GET /health HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", 400)

    def test_te_and_cl_400(self):
        self.check(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400)

    def test_duplicate_content_length_400(self):
        self.check(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                   b"Content-Length: 6\r\n\r\nhello", 400)

    def test_obs_fold_and_bare_lf_400(self):
        self.check(b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\r\n  folded\r\n\r\n", 400)
        self.check(b"GET /health HTTP/1.1\nHost: x\n\n", 400)

    def test_slow_headers_408(self):
        s = socket.create_connection(("127.0.0.1", self.gw.port), timeout=10)
        t0 = time.monotonic()
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        out = b""
        while True:
            c = s.recv(4096)
            if not c:
                break
            out += c
        s.close()
        st, head, j = status_and_json(out)
        self.assertEqual(st, 408)
        self.assertGreaterEqual(time.monotonic() - t0, 0.6)

    def test_slow_body_408(self):
        s = socket.create_connection(("127.0.0.1", self.gw.port), timeout=10)
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        out = b""
        while True:
            c = s.recv(4096)
            if not c:
                break
            out += c
        s.close()
        self.assertEqual(status_and_json(out)[0], 408)

    def test_idle_keepalive_closed_quietly(self):
        s = socket.create_connection(("127.0.0.1", self.gw.port), timeout=10)
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        data = s.recv(4096)
        self.assertIn(b"200 OK", data)
        rest = b""
        while True:  # the idle timeout (1 s) closes it without a response
            c = s.recv(4096)
            if not c:
                break
            rest += c
        s.close()
        self.assertEqual(rest, b"")


if __name__ == "__main__":
    unittest.main(verbosity=2)
