"""The data path: endpoints, byte-for-byte responses, header rewrite, model splicing,
keep-alive reuse upstream and downstream, pipelining."""

import json
import socket
import unittest

from harness import Mock, simple_gateway, post_json, get, raw_exchange, assert_openai_error

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello there"}]}


class ProxyTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.mock = Mock()
        cls.gw = simple_gateway(cls.mock, keys=(("k1", "sk-test-one"), ("k2", "sk-test-two")))

    @classmethod
    def tearDownClass(cls):
        cls.gw.stop()
        cls.gw.cleanup()
        cls.mock.stop()

    def test_health(self):
        st, h, body = get(self.gw.port, "/health")
        self.assertEqual(st, 200)
        self.assertEqual(json.loads(body), {"status": "ok"})

    def test_models_from_config(self):
        st, h, body = get(self.gw.port, "/v1/models")
        self.assertEqual(st, 200)
        j = json.loads(body)
        self.assertEqual(j["object"], "list")
        self.assertEqual(sorted(m["id"] for m in j["data"]), ["gpt-4o-mini", "mini"])

    def test_plain_completion_byte_for_byte(self):
        body = json.dumps(CHAT).encode()
        st_d, h_d, direct = post_json(self.mock.port, "/v1/chat/completions", body,
                                      {"Authorization": "Bearer sk-test-one"})
        st, h, via = post_json(self.gw.port, "/v1/chat/completions", body)
        self.assertEqual((st_d, st), (200, 200))
        self.assertEqual(via, direct)
        self.assertEqual(h["content-length"], str(len(direct)))
        self.assertEqual(h["x-llmgate-provider"], "mock")
        self.assertIn(h["x-llmgate-key"], ("k1", "k2"))
        self.assertEqual(h["x-llmgate-attempts"], "1")
        self.assertIn("usage", json.loads(via))

    def test_streaming_byte_for_byte(self):
        body = json.dumps(dict(CHAT, stream=True)).encode()
        _, _, direct = post_json(self.mock.port, "/v1/chat/completions", body,
                                 {"Authorization": "Bearer sk-test-one"})
        st, h, via = post_json(self.gw.port, "/v1/chat/completions", body)
        self.assertEqual(st, 200)
        self.assertEqual(via, direct)
        self.assertTrue(via.rstrip().endswith(b"data: [DONE]"))
        self.assertEqual(h.get("transfer-encoding"), "chunked")
        self.assertIn("text/event-stream", h["content-type"])

    def test_completions_and_embeddings(self):
        for path, obj in (("/v1/completions", {"model": "mini", "prompt": "Hi"}),
                          ("/v1/embeddings", {"model": "mini", "input": ["a", "b"]})):
            st, h, body = post_json(self.gw.port, path, obj)
            self.assertEqual(st, 200, body)
            self.assertEqual(self.mock.last()["path"], path)

    def test_alias_spliced_and_rewrite(self):
        body = '{"model" : "mini", "messages":[{"role":"user","content":"x"}],"n":1}'
        st, h, out = post_json(self.gw.port, "/v1/chat/completions", body, {
            "Authorization": "Bearer client-credential-xyz",
            "Connection": "keep-alive, X-Hop-Header",
            "X-Hop-Header": "drop me",
            "Keep-Alive": "timeout=5",
            "TE": "trailers",
            "X-Request-Id": "req-123",
        })
        self.assertEqual(st, 200, out)
        last = self.mock.last()
        self.assertEqual(last["body"],
                         '{"model" : "gpt-4o-mini", "messages":[{"role":"user","content":"x"}],"n":1}')
        hdrs = {}
        for name, value in last["headers"]:
            hdrs.setdefault(name.lower(), []).append(value)
        self.assertEqual(hdrs["host"], [f"127.0.0.1:{self.mock.port}"])
        self.assertIn(hdrs["authorization"][0], ("Bearer sk-test-one", "Bearer sk-test-two"))
        self.assertEqual(len(hdrs["authorization"]), 1)
        self.assertEqual(hdrs["content-length"], [str(len(last["body"]))])
        self.assertEqual(hdrs["x-request-id"], ["req-123"])
        for gone in ("x-hop-header", "keep-alive", "te", "transfer-encoding"):
            self.assertNotIn(gone, hdrs)
        self.assertNotIn("client-credential-xyz", json.dumps(last))

    def test_round_robin_over_keys(self):
        before = self.mock.stats()["by_key"]
        for _ in range(10):
            st, _, _ = post_json(self.gw.port, "/v1/chat/completions", CHAT)
            self.assertEqual(st, 200)
        after = self.mock.stats()["by_key"]
        d1 = after.get("sk-test-one", 0) - before.get("sk-test-one", 0)
        d2 = after.get("sk-test-two", 0) - before.get("sk-test-two", 0)
        self.assertEqual(d1 + d2, 10)
        self.assertGreaterEqual(min(d1, d2), 3, (d1, d2))

    def test_errors_are_openai_shaped(self):
        st, _, body = post_json(self.gw.port, "/v1/chat/completions", {"model": "nope"})
        j = assert_openai_error(self, st, body, 404, "model_not_found")
        self.assertIn("nope", j["error"]["message"])
        st, _, body = post_json(self.gw.port, "/v1/chat/completions", {"messages": []})
        j = assert_openai_error(self, st, body, 400)
        self.assertEqual(j["error"]["param"], "model")
        st, _, body = post_json(self.gw.port, "/v1/chat/completions", b"{not json")
        j = assert_openai_error(self, st, body, 400)
        self.assertIn("JSON", j["error"]["message"])
        st, _, body = post_json(self.gw.port, "/v1/chat/completions", b"")
        assert_openai_error(self, st, body, 400)
        st, _, body = get(self.gw.port, "/v1/nothing-here?key=sk-should-not-echo")
        j = assert_openai_error(self, st, body, 404)
        self.assertNotIn("sk-should-not-echo", body.decode())
        st, _, body = get(self.gw.port, "/v1/chat/completions")
        assert_openai_error(self, st, body, 405)

    def test_upstream_error_passed_through(self):
        st, h, body = post_json(self.gw.port, "/v1/chat/completions", CHAT,
                                {"x-mock-status": "400", "x-mock-error-code": "context_length_exceeded"})
        self.assertEqual(st, 400)
        self.assertEqual(json.loads(body)["error"]["code"], "context_length_exceeded")

    def test_keepalive_reuse_both_sides(self):
        accepted0 = self.mock.stats()["connections_accepted"]
        c = self.gw.conn()
        peers = set()
        for _ in range(20):
            c.request("POST", "/v1/chat/completions", body=json.dumps(CHAT),
                      headers={"Content-Type": "application/json"})
            r = c.getresponse()
            self.assertEqual(r.status, 200)
            r.read()
            peers.add(c.sock.getsockname())
        c.close()
        self.assertEqual(len(peers), 1, "client connection kept alive")
        accepted = self.mock.stats()["connections_accepted"] - accepted0
        # at most one upstream connection per worker and key origin (2 workers)
        self.assertLessEqual(accepted, 2, "upstream connections reused from the pool")

    def test_pipelining_in_order(self):
        reqs = b""
        models = ["gpt-4o-mini", "mini", "gpt-4o-mini"]
        for i, m in enumerate(models):
            body = json.dumps({"model": m, "messages": [], "i": i}).encode()
            reqs += (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)) + body
        reqs += b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        out = raw_exchange(self.gw.port, reqs)
        self.assertEqual(out.count(b"HTTP/1.1 200 OK"), 4, out)
        self.assertTrue(out.rstrip().endswith(b'{"status":"ok"}'))
        self.assertIn(b"Connection: close", out.split(b"HTTP/1.1 200 OK")[-1])

    def test_http10_client(self):
        body = json.dumps(dict(CHAT, stream=True)).encode()
        req = (b"POST /v1/chat/completions HTTP/1.0\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d\r\n\r\n" % len(body)) + body
        out = raw_exchange(self.gw.port, req)
        head, _, payload = out.partition(b"\r\n\r\n")
        self.assertIn(b"200 OK", head)
        self.assertNotIn(b"chunked", head.lower())
        self.assertTrue(payload.rstrip().endswith(b"data: [DONE]"), payload[-200:])

    def test_expect_100_continue(self):
        body = json.dumps(CHAT).encode()
        s = socket.create_connection(("127.0.0.1", self.gw.port), timeout=10)
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(body))
        first = s.recv(100)
        self.assertTrue(first.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), first)
        s.sendall(body)
        data = b""
        while b"total_tokens" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
        self.assertIn(b"HTTP/1.1 200 OK", data)


if __name__ == "__main__":
    unittest.main(verbosity=2)
