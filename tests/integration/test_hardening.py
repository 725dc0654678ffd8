"""Regression tests of the hardening issue, through the real binaries:

- a member name spelled with escapes ("mod\\u0065l") is the same member: a second model,
  max_tokens or stream hidden that way is refused (400 naming it), never sent upstream;
- a body the gateway changes (the usage event it asked for, taken out) is framed anew, never
  with the provider's Content-Length: the next response on the connection is intact;
- a client that stops reading is cut after limits.send_timeout_ms (or the request deadline),
  and its reservation (here: the key's only in-flight slot) is released;
- an upstream 401/403 body (OpenAI's carries a fragment of the key) never reaches the client.
"""

import http.client
import json
import socket
import threading
import time
import unittest

from harness import Mock, Gateway, post_json, wait_until

MSGS = [{"role": "user", "content": "hi"}]


class FakeUpstream:
    """A tiny HTTP/1.1 keep-alive server on loopback whose answer is given by a function
    (method, path, headers, body) -> bytes of a complete response."""

    def __init__(self, answer):
        self.answer = answer
        self.requests = []
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.stopping = False
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self):
        return f"http://127.0.0.1:{self.port}/v1"

    def _accept(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        buf = b""
        c.settimeout(30)
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    d = c.recv(65536)
                    if not d:
                        return
                    buf += d
                head, buf = buf.split(b"\r\n\r\n", 1)
                lines = head.decode().split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                hdrs = {}
                for l in lines[1:]:
                    n, v = l.split(":", 1)
                    hdrs[n.strip().lower()] = v.strip()
                n = int(hdrs.get("content-length", "0"))
                while len(buf) < n:
                    d = c.recv(65536)
                    if not d:
                        return
                    buf += d
                body, buf = buf[:n], buf[n:]
                self.requests.append((method, path, hdrs, body))
                c.sendall(self.answer(method, path, hdrs, body))
        except OSError:
            return
        finally:
            c.close()

    def stop(self):
        self.stopping = True
        self.sock.close()


def one_provider(url, model="m", keys=(("k", "sk-up-1", None),), **kw):
    return Gateway([{"name": "p", "url": url, "keys": list(keys)}],
                   [{"name": model, "deployments": [("p", model)]}], workers=1, **kw)


class EscapedMembersTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.mock = Mock(threads=1)
        cls.gw = Gateway([{"name": "p", "url": cls.mock.url(), "keys": [("k", "sk-up", None)]}],
                         [{"name": "gpt-4o-mini", "deployments": [("p", "gpt-4o-mini")]},
                          {"name": "gpt-4o", "deployments": [("p", "gpt-4o")]}],
                         workers=1, clients=True,
                         extra_yaml="client_keys:\n"
                                    "  - {name: small, secret_env: LLMGATE_TEST_CLIENT_SMALL, "
                                    "models: [gpt-4o-mini], tokens_per_day: 100000}\n",
                         env={"LLMGATE_TEST_CLIENT_SMALL": "sk-client-small-0123456789"})

    @classmethod
    def tearDownClass(cls):
        cls.gw.stop()
        cls.gw.cleanup()
        cls.mock.stop()

    def post_raw(self, body):
        return post_json(self.gw.port, "/v1/chat/completions", body,
                         {"authorization": "Bearer sk-client-small-0123456789"})

    def test_hidden_members_refused(self):
        before = self.mock.stats()["requests"]
        cases = [
            ('{"model":"gpt-4o-mini","mod\\u0065l":"gpt-4o","messages":[]}', "model"),
            ('{"model":"gpt-4o-mini","max_tokens":1,"max_tok\\u0065ns":999999,"messages":[]}',
             "max_tokens"),
            ('{"model":"gpt-4o-mini","stream":false,"str\\u0065am":true,"messages":[]}',
             "stream"),
            ('{"\\u006dodel":"gpt-4o","model":"gpt-4o-mini","messages":[]}', "model"),
        ]
        for body, param in cases:
            st, _, data = self.post_raw(body)
            self.assertEqual(st, 400, (body, data))
            err = json.loads(data)["error"]
            self.assertEqual(err["param"], param, data)
            self.assertIn("more than once", err["message"])
        self.assertEqual(self.mock.stats()["requests"], before, "nothing went upstream")
        # an escaped name alone is the member it spells: allowlist and all apply to it
        st, _, data = self.post_raw('{"mod\\u0065l":"gpt-4o","messages":[]}')
        self.assertEqual(st, 403, data)
        st, _, data = self.post_raw('{"mod\\u0065l":"gpt-4o-mini","messages":[]}')
        self.assertEqual(st, 200, data)


def sse_with_length(events):
    body = b"".join(b"data: " + e.encode() + b"\n\n" for e in events)
    return (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body) + body)


class ReframedBodyTest(unittest.TestCase):
    def test_stripped_usage_event_is_not_framed_by_provider_length(self):
        chunk = {"id": "c", "object": "chat.completion.chunk", "model": "m",
                 "choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": None}]}
        usage = {"id": "c", "object": "chat.completion.chunk", "model": "m", "choices": [],
                 "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}

        def answer(method, path, hdrs, body):
            if json.loads(body).get("stream"):
                return sse_with_length([json.dumps(chunk), json.dumps(usage), "[DONE]"])
            j = b'{"id":"x","object":"chat.completion","choices":[],"usage":{"prompt_tokens":1}}'
            return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n" % len(j) + j)

        up = FakeUpstream(answer)
        self.addCleanup(up.stop)
        gw = one_provider(up.url(), extra_yaml="stream_include_usage: true\n")
        self.addCleanup(gw.cleanup)
        self.addCleanup(gw.stop)
        c = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=5)
        c.request("POST", "/v1/chat/completions",
                  json.dumps({"model": "m", "stream": True, "messages": MSGS}),
                  {"Content-Type": "application/json"})
        r = c.getresponse()
        self.assertEqual(r.status, 200)
        data = r.read()  # with the provider's length this would wait for bytes never sent
        self.assertIn(b"[DONE]", data)
        self.assertNotIn(b'"usage"', data, "the usage event the client did not ask for")
        self.assertTrue(json.loads(up.requests[-1][3])["stream_options"]["include_usage"])
        # the connection is intact: the next response on it is whole
        c.request("POST", "/v1/chat/completions", json.dumps({"model": "m", "messages": MSGS}),
                  {"Content-Type": "application/json"})
        r = c.getresponse()
        self.assertEqual(r.status, 200)
        self.assertEqual(json.loads(r.read())["object"], "chat.completion")
        c.close()


class StalledClientTest(unittest.TestCase):
    def stalled_request(self, gw):
        body = json.dumps({"model": "m", "stream": True, "messages": MSGS}).encode()
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", gw.port))
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Type: application/json\r\nx-mock-chunks: 5000\r\n"
                  b"x-mock-content-bytes: 20000\r\nContent-Length: %d\r\n\r\n" % len(body)
                  + body)
        return s  # and never read

    def check_cut(self, extra_limits, policy, what):
        mock = Mock(threads=1)
        self.addCleanup(mock.stop)
        gw = Gateway([{"name": "p", "url": mock.url(),
                       "keys": [("only", "sk-only", {"max_inflight": 1})]}],
                     [{"name": "m", "deployments": [("p", "m")]}], workers=1,
                     limits=extra_limits, policy=dict(policy, wait_for_capacity_ms=0))
        self.addCleanup(gw.cleanup)
        self.addCleanup(gw.stop)
        s = self.stalled_request(gw)
        self.addCleanup(s.close)
        wait_until(lambda: mock.stats()["requests"] >= 1, 5, what="the stream to start")
        st, _, _ = post_json(gw.port, "/v1/chat/completions", {"model": "m", "messages": MSGS})
        self.assertEqual(st, 429, "the stalled stream holds the key's only slot")
        t0 = time.monotonic()

        def slot_free():
            st, _, _ = post_json(gw.port, "/v1/chat/completions",
                                 {"model": "m", "messages": MSGS})
            return st == 200

        wait_until(slot_free, 15, interval=0.1, what=f"the slot to be released ({what})")
        waited = time.monotonic() - t0
        gw.proc.wait_line(r"took no response bytes")
        return waited

    def test_send_timeout_releases_the_reservation(self):
        self.check_cut({"send_timeout_ms": 800}, {}, "send timeout")

    def test_request_deadline_bounds_a_stalled_client(self):
        self.check_cut({"send_timeout_ms": 600000}, {"request_timeout_ms": 1500}, "deadline")


class UpstreamAuthBodyTest(unittest.TestCase):
    def test_401_body_with_key_fragment_is_replaced(self):
        body = (b'{"error":{"message":"Incorrect API key provided: sk-proj-****abcd. You can '
                b'find your API key at https://platform.openai.com/account/api-keys.",'
                b'"type":"invalid_request_error","param":null,"code":"invalid_api_key"}}')

        def answer(method, path, hdrs, b):
            return (b"HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n"
                    b"www-authenticate: Bearer realm=\"sk-proj-****abcd\"\r\n"
                    b"Content-Length: %d\r\n\r\n" % len(body) + body)

        up = FakeUpstream(answer)
        self.addCleanup(up.stop)
        gw = one_provider(up.url(), keys=[("a", "sk-up-a", None), ("b", "sk-up-b", None)])
        self.addCleanup(gw.cleanup)
        self.addCleanup(gw.stop)
        st, h, data = post_json(gw.port, "/v1/chat/completions", {"model": "m", "messages": MSGS})
        self.assertEqual(len(up.requests), 2, "both keys were tried")
        self.assertEqual(st, 502, data)
        err = json.loads(data)["error"]
        self.assertEqual(err["code"], "upstream_auth_failed")
        self.assertIn("model m", err["message"])
        self.assertNotIn(b"sk-proj", data)
        self.assertFalse([v for v in h.values() if "sk-proj" in v], h)
        self.assertEqual(h.get("x-llmgate-provider"), "p")


if __name__ == "__main__":
    unittest.main(verbosity=2)
