"""Upstream failures the data path must turn into clean answers: connection refused (502),
first-byte timeout (504), a reset or truncated body mid-response (the client sees an
incomplete response, never a hang), and Retry-After/x-ratelimit headers passed on."""

import http.client
import json
import socket
import unittest

from harness import Mock, Gateway, simple_gateway, post_json, assert_openai_error

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class UpstreamTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.mock = Mock()
        # The key policy would cool the only key after these failures; these tests are
        # about the transport, so it is turned off here (test_keypolicy covers it).
        cls.gw = simple_gateway(cls.mock, provider_extra={"first_byte_timeout_ms": 800,
                                                          "idle_timeout_ms": 800},
                                policy={"failure_threshold": 0, "max_retries": 0})

    @classmethod
    def tearDownClass(cls):
        cls.gw.stop()
        cls.gw.cleanup()
        cls.mock.stop()

    def test_connect_refused_502(self):
        gw = Gateway([{"name": "dead", "url": f"http://127.0.0.1:{closed_port()}/v1",
                       "keys": [("kd", "sk-dead", None)]}],
                     [{"name": "m", "deployments": [("dead", "m")]}], workers=1)
        try:
            st, _, body = post_json(gw.port, "/v1/chat/completions", {"model": "m"})
            j = assert_openai_error(self, st, body, 502, "upstream_error")
            self.assertIn("dead", j["error"]["message"])
            self.assertNotIn("sk-dead", body.decode())
        finally:
            gw.stop()
            gw.cleanup()

    def test_first_byte_timeout_504(self):
        st, _, body = post_json(self.gw.port, "/v1/chat/completions", CHAT,
                                {"x-mock-delay-ms": "3000"})
        assert_openai_error(self, st, body, 504, "upstream_timeout")

    def test_idle_timeout_mid_stream_truncates(self):
        c = http.client.HTTPConnection("127.0.0.1", self.gw.port, timeout=10)
        c.request("POST", "/v1/chat/completions", body=json.dumps(dict(CHAT, stream=True)),
                  headers={"x-mock-chunk-delay-ms": "3000", "x-mock-chunks": "3"})
        r = c.getresponse()
        self.assertEqual(r.status, 200)
        with self.assertRaises(http.client.IncompleteRead):
            r.read()
        c.close()

    def test_reset_mid_body(self):
        c = http.client.HTTPConnection("127.0.0.1", self.gw.port, timeout=10)
        c.request("POST", "/v1/chat/completions", body=json.dumps(CHAT),
                  headers={"x-mock-reset-after-bytes": "250", "x-mock-content-bytes": "5000"})
        try:
            r = c.getresponse()
            # headers made it: the body must come out short
            with self.assertRaises((http.client.IncompleteRead, ConnectionError)):
                r.read()
        except (http.client.RemoteDisconnected, ConnectionError):
            pass  # reset before the head was complete: 502 or close are both honest
        c.close()

    def test_truncated_body(self):
        c = http.client.HTTPConnection("127.0.0.1", self.gw.port, timeout=10)
        c.request("POST", "/v1/chat/completions", body=json.dumps(CHAT),
                  headers={"x-mock-truncate": "1"})
        r = c.getresponse()
        with self.assertRaises(http.client.IncompleteRead):
            r.read()
        c.close()

    def test_bad_chunking(self):
        c = http.client.HTTPConnection("127.0.0.1", self.gw.port, timeout=10)
        c.request("POST", "/v1/chat/completions", body=json.dumps(dict(CHAT, stream=True)),
                  headers={"x-mock-bad-chunking": "1"})
        r = c.getresponse()
        with self.assertRaises(http.client.IncompleteRead):
            r.read()
        c.close()

    def test_rate_limit_headers_passed(self):
        st, h, body = post_json(self.gw.port, "/v1/chat/completions", CHAT,
                                {"x-mock-ratelimit-remaining-requests": "57",
                                 "x-mock-ratelimit-reset-requests": "7s"})
        self.assertEqual(st, 200)
        self.assertEqual(h.get("x-ratelimit-remaining-requests"), "57")
        self.assertEqual(h.get("x-ratelimit-reset-requests"), "7s")

    def test_gateway_survives_all_of_it(self):
        st, _, _ = post_json(self.gw.port, "/v1/chat/completions", CHAT)
        self.assertEqual(st, 200)


if __name__ == "__main__":
    unittest.main(verbosity=2)
