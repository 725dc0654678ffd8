"""Client-facing TLS (tls: {cert_file, key_file}): HTTPS answers byte for byte what HTTP
answers, keep-alive and pipelining hold over TLS, curl and the official openai SDK trust it
through the test CA, and what is not TLS 1.2+ (plain HTTP, TLS 1.1, garbage, silence) is
closed without harming the gateway."""

import http.client
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import time
import unittest
import warnings

from harness import CERTS, LLMGATE_BIN, Mock, simple_gateway

SDK_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sdk")
CA = os.path.join(CERTS, "ca.crt")
TLS_YAML = "tls: {cert_file: %s, key_file: %s}\n" % (
    json.dumps(os.path.join(CERTS, "server.crt")), json.dumps(os.path.join(CERTS, "server.key")))
HEADER_TIMEOUT_MS = 1000


def chat_request(stream, close=True, rid="tls-test"):
    body = json.dumps({"model": "gpt-4o-mini", "stream": stream,
                       "messages": [{"role": "user", "content": "hi"}]}).encode()
    return (b"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\n"
            b"Content-Type: application/json\r\nx-request-id: " + rid.encode() + b"\r\n"
            + (b"Connection: close\r\n" if close else b"")
            + b"Content-Length: %d\r\n\r\n" % len(body) + body)


def client_ctx():
    return ssl.create_default_context(cafile=CA)


def tls_socket(port, timeout=20, ctx=None):
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    return (ctx or client_ctx()).wrap_socket(raw, server_hostname="localhost")


def read_all(s, deadline_s=20):
    out = b""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            chunk = s.recv(65536)
        except (ssl.SSLZeroReturnError, ConnectionResetError):
            break
        if not chunk:
            break
        out += chunk
    return out


def sanitizer_report(output):
    """The first line of an ASan/LSan/UBSan report in a process's output, or None."""
    m = re.search(r".*(AddressSanitizer|LeakSanitizer|runtime error:).*", output)
    return m.group(0) if m else None


def normalized(resp):
    return re.sub(rb'"created":\d+', b'"created":0', resp)


class ClientTlsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.mock = Mock()
        cls.gw = simple_gateway(cls.mock, workers=2, extra_yaml=TLS_YAML,
                                limits={"header_timeout_ms": HEADER_TIMEOUT_MS})
        cls.plain = simple_gateway(cls.mock, workers=1,
                                   limits={"header_timeout_ms": HEADER_TIMEOUT_MS})

    @classmethod
    def tearDownClass(cls):
        try:
            for g in (cls.gw, cls.plain):
                rc = g.stop()
                out = g.proc.output()
                assert rc == 0, f"llmgate exited with {rc}:\n{out[-3000:]}"
                assert sanitizer_report(out) is None, sanitizer_report(out)
        finally:
            for g in (cls.gw, cls.plain):
                g.cleanup()
            cls.mock.stop()

    def https(self, timeout=20):
        return http.client.HTTPSConnection("localhost", self.gw.port, timeout=timeout,
                                           context=client_ctx())

    def assert_still_serving(self):
        c = self.https()
        c.request("GET", "/v1/models")
        r = c.getresponse()
        self.assertEqual(r.status, 200, r.read())
        r.read()
        c.close()
        self.assertIsNone(self.gw.proc.p.poll(), "llmgate exited")

    def test_chat_same_bytes_as_http(self):
        for stream in (False, True):
            s = tls_socket(self.gw.port)
            self.assertEqual(s.version(), "TLSv1.2")
            s.sendall(chat_request(stream))
            over_tls = read_all(s)
            s.close()
            p = socket.create_connection(("127.0.0.1", self.plain.port), timeout=20)
            p.sendall(chat_request(stream))
            over_http = read_all(p)
            p.close()
            self.assertTrue(over_tls.startswith(b"HTTP/1.1 200 "), over_tls[:200])
            if stream:
                self.assertIn(b"data: [DONE]", over_tls)
            self.assertEqual(normalized(over_tls), normalized(over_http))

    def test_keepalive(self):
        c = self.https()
        socks = set()
        for i in range(5):
            c.request("POST", "/v1/chat/completions", body=json.dumps(
                {"model": "mini", "stream": i % 2 == 1,
                 "messages": [{"role": "user", "content": "hi"}]}),
                headers={"Content-Type": "application/json"})
            r = c.getresponse()
            body = r.read()
            self.assertEqual(r.status, 200, body)
            socks.add(id(c.sock))
        self.assertEqual(len(socks), 1, "one TLS connection for every request")
        c.close()

    def test_large_body(self):
        # many TLS records in, several reads per request; the gateway parses it as one body
        c = self.https()
        big = "x" * (1024 * 1024)
        for _ in range(2):
            c.request("POST", "/v1/chat/completions", body=json.dumps(
                {"model": "mini", "messages": [{"role": "user", "content": big}]}),
                headers={"Content-Type": "application/json"})
            r = c.getresponse()
            body = r.read()
            self.assertEqual(r.status, 200, body)
            self.assertEqual(json.loads(body)["choices"][0]["message"]["content"],
                             "Hello from the mock upstream.")
        c.close()

    def test_pipelining(self):
        s = tls_socket(self.gw.port)
        s.sendall(chat_request(False, close=False, rid="p1") + chat_request(True, close=False,
                                                                            rid="p2")
                  + chat_request(False, close=True, rid="p3"))
        got = read_all(s)
        s.close()
        self.assertEqual(got.count(b"HTTP/1.1 200 "), 3, got[:500])
        order = [m.group(1) for m in re.finditer(rb"x-request-id: (p\d)", got)]
        self.assertEqual(order, [b"p1", b"p2", b"p3"])
        self.assertIn(b"data: [DONE]", got)

    def test_curl(self):
        curl = shutil.which("curl")
        self.assertIsNotNone(curl, "curl is installed by ./dev.sh")
        p = subprocess.run(
            [curl, "-sS", "--fail-with-body", "--cacert", CA,
             f"https://localhost:{self.gw.port}/v1/chat/completions",
             "-H", "Content-Type: application/json",
             "-d", json.dumps({"model": "mini", "messages": [{"role": "user", "content": "x"}]})],
            capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr + p.stdout)
        self.assertEqual(json.loads(p.stdout)["choices"][0]["message"]["content"],
                         "Hello from the mock upstream.")
        # without the test CA curl does not trust it
        p = subprocess.run([curl, "-sS", f"https://localhost:{self.gw.port}/v1/models"],
                           capture_output=True, text=True, timeout=30)
        self.assertNotEqual(p.returncode, 0)
        self.assert_still_serving()

    def test_openai_sdk(self):
        node = shutil.which("node")
        self.assertIsNotNone(node, "node is installed by ./dev.sh test")
        self.assertTrue(os.path.isdir(os.path.join(SDK_DIR, "node_modules", "openai")),
                        "run `npm install` in tests/integration/sdk (./dev.sh test does)")
        env = dict(os.environ, NODE_EXTRA_CA_CERTS=CA)
        p = subprocess.run([node, "sdk_chat.mjs", f"https://localhost:{self.gw.port}/v1", "mini"],
                           cwd=SDK_DIR, capture_output=True, text=True, timeout=60, env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        out = json.loads(p.stdout)
        self.assertEqual(out["plain"]["content"], "Hello from the mock upstream.")
        self.assertGreaterEqual(out["stream"]["chunks"], 3)
        self.assertTrue(out["stream"]["text"].startswith("Hello from the mock upstream."))
        self.assertIn("mini", out["models"])

    def test_plain_http_refused(self):
        s = socket.create_connection(("127.0.0.1", self.gw.port), timeout=10)
        s.sendall(b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n")
        got = read_all(s, 10)
        s.close()
        self.assertTrue(got.startswith(b"HTTP/1.1 400 "), got)
        self.assertIn(b"https_required", got)
        self.assert_still_serving()

    def test_garbage_handshake_closed(self):
        s = socket.create_connection(("127.0.0.1", self.gw.port), timeout=10)
        s.sendall(b"\x16\x03\x01\x00\x05hello" + os.urandom(200))
        t0 = time.monotonic()
        read_all(s, 10)
        s.close()
        self.assertLess(time.monotonic() - t0, 5)
        self.assert_still_serving()

    def test_silent_client_closed_after_header_timeout(self):
        s = socket.create_connection(("127.0.0.1", self.gw.port), timeout=10)
        t0 = time.monotonic()
        got = read_all(s, 10)
        took = time.monotonic() - t0
        s.close()
        self.assertEqual(got, b"")
        self.assertGreater(took, HEADER_TIMEOUT_MS / 1000 * 0.8)
        self.assertLess(took, HEADER_TIMEOUT_MS / 1000 + 3)
        # a half-done handshake has the same deadline
        s = socket.create_connection(("127.0.0.1", self.gw.port), timeout=10)
        s.sendall(b"\x16\x03\x01\x02\x00\x01")  # the start of a ClientHello, never finished
        t0 = time.monotonic()
        read_all(s, 10)
        self.assertLess(time.monotonic() - t0, HEADER_TIMEOUT_MS / 1000 + 3)
        s.close()
        self.assert_still_serving()

    def test_tls11_refused(self):
        ctx = client_ctx()
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # let OpenSSL itself offer TLS 1.1
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.TLSv1
            ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        with self.assertRaises(ssl.SSLError) as e:
            s = tls_socket(self.gw.port, ctx=ctx)
            s.close()
        if "NO_PROTOCOLS_AVAILABLE" in str(e.exception).upper().replace(" ", "_"):
            self.skipTest("this OpenSSL cannot offer TLS 1.1 at all")
        # refused by the server (its protocol_version alert), not by the client
        self.assertIn("PROTOCOL_VERSION", str(e.exception).upper())
        self.assert_still_serving()


class ClientTlsStartTest(unittest.TestCase):
    def test_key_not_matching_cert_exits_1(self):
        mock = Mock(threads=1)
        self.addCleanup(mock.stop)
        yaml = "tls: {cert_file: %s, key_file: %s}\n" % (
            json.dumps(os.path.join(CERTS, "server.crt")),
            json.dumps(os.path.join(CERTS, "wrongname.key")))
        gw = simple_gateway(mock, workers=1, extra_yaml=yaml, start=False)
        self.addCleanup(gw.cleanup)
        p = subprocess.run([LLMGATE_BIN, "--config", gw.config], env=gw.env, capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIsNone(sanitizer_report(p.stderr))
        self.assertIn("does not belong to certificate", p.stderr)
        self.assertIn("tls.key_file", p.stderr)

    def test_missing_cert_is_a_config_error(self):
        mock = Mock(threads=1)
        self.addCleanup(mock.stop)
        gw = simple_gateway(mock, workers=1, start=False,
                            extra_yaml="tls: {cert_file: /nonexistent/c.pem, key_file: "
                                       + json.dumps(os.path.join(CERTS, "server.key")) + "}\n")
        self.addCleanup(gw.cleanup)
        p = subprocess.run([LLMGATE_BIN, "--check-config", gw.config], env=gw.env,
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertRegex(p.stderr, r"llmgate\.yaml:\d+: tls\.cert_file: cannot read "
                                   r"\"/nonexistent/c\.pem\"")


if __name__ == "__main__":
    unittest.main(verbosity=2)
