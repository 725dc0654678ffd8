"""The Responses API and Anthropic Messages through the real gateway and the mock:
plain and streaming, stateful affinity (previous_response_id and /v1/responses/{id} go to the
key that created the response, never to another organisation's), Anthropic's error shape and
native providers, exactly one x-request-id on every answer."""

import http.client
import os
import shutil
import socket
import tempfile
import time
import json
import unittest

from harness import Mock, Gateway, access_log_line, post_json


def request(port, method, path, body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    c.request(method, path, body=json.dumps(body) if body is not None else None, headers=h)
    r = c.getresponse()
    data = r.read()
    hdrs = r.getheaders()
    c.close()
    return r.status, hdrs, data


def one(hdrs, name):
    return [v for k, v in hdrs if k.lower() == name]


class ApisTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.mock = Mock()
        cls.gw = Gateway(
            [{"name": "oa", "url": cls.mock.url(),
              "keys": [("org-a", "sk-org-a", None), ("org-b", "sk-org-b", None)]},
             {"name": "an", "url": cls.mock.url(), "keys": [("an-1", "sk-an-1", None)]}],
            [{"name": "gpt", "deployments": [("oa", "gpt-4o")]},
             {"name": "claude", "deployments": [("an", "claude-sonnet-4-5")]}],
            workers=2, extra_yaml="")
        # the anthropic provider: api: anthropic (x-api-key auth by default)
        text = cls.gw.config_text.replace(
            "  - name: an\n", "  - name: an\n    api: anthropic\n")
        cls.gw.stop()
        with open(cls.gw.config, "w") as f:
            f.write(text)
        cls.gw.start()

    @classmethod
    def tearDownClass(cls):
        cls.gw.stop()
        cls.gw.cleanup()
        cls.mock.stop()

    def test_responses_json_and_stream(self):
        st, h, data = request(self.gw.port, "POST", "/v1/responses",
                              {"model": "gpt", "input": "hi"})
        self.assertEqual(st, 200, data)
        j = json.loads(data)
        self.assertEqual(j["object"], "response")
        self.assertEqual(j["model"], "gpt-4o", "the upstream model name was spliced in")
        self.assertEqual(len(one(h, "x-request-id")), 1, h)
        self.assertEqual(len(one(h, "x-upstream-request-id")), 1, h)
        st, h, data = request(self.gw.port, "POST", "/v1/responses",
                              {"model": "gpt", "input": "hi", "stream": True})
        self.assertEqual(st, 200)
        events = [l[7:] for l in data.decode().splitlines() if l.startswith("event: ")]
        self.assertEqual(events[0], "response.created")
        self.assertEqual(events[-1], "response.completed")
        self.assertNotIn(b"[DONE]", data)

    def test_previous_response_goes_to_its_key(self):
        ids = []
        for _ in range(4):  # round robin: both keys create responses
            st, h, data = request(self.gw.port, "POST", "/v1/responses",
                                  {"model": "gpt", "input": "hi"})
            self.assertEqual(st, 200, data)
            ids.append((json.loads(data)["id"], dict((k.lower(), v) for k, v in h)["x-llmgate-key"]))
        self.assertEqual({k for _, k in ids}, {"org-a", "org-b"})
        for rid, key in ids:
            for _ in range(3):
                st, h, data = request(self.gw.port, "POST", "/v1/responses",
                                      {"model": "gpt", "input": "more",
                                       "previous_response_id": rid})
                self.assertEqual(st, 200, data)  # the mock refuses another key's id with 400
                self.assertEqual(dict((k.lower(), v) for k, v in h)["x-llmgate-key"], key)
            st, h, data = request(self.gw.port, "GET", f"/v1/responses/{rid}")
            self.assertEqual(st, 200, data)
            self.assertEqual(json.loads(data)["id"], rid)
        st, _, data = request(self.gw.port, "POST", "/v1/responses",
                              {"model": "gpt", "input": "x", "previous_response_id": "resp_nope"})
        self.assertEqual(st, 400, data)
        self.assertEqual(json.loads(data)["error"]["code"], "previous_response_not_found")
        rid = ids[0][0]
        st, _, data = request(self.gw.port, "DELETE", f"/v1/responses/{rid}")
        self.assertEqual(st, 200, data)
        st, _, data = request(self.gw.port, "GET", f"/v1/responses/{rid}")
        self.assertEqual(st, 404, data)

    def test_follow_ups_at_once_on_other_connections(self):
        """The id reaches the client only once the store knows it: 40 clients that name
        their response the moment they read it, on a new connection (either worker), all
        find it - JSON and streamed."""
        import threading
        out, lock = [], threading.Lock()

        def one(stream):
            body = {"model": "gpt", "input": "hi", "stream": stream}
            c = http.client.HTTPConnection("127.0.0.1", self.gw.port, timeout=30)
            c.request("POST", "/v1/responses", body=json.dumps(body),
                      headers={"Content-Type": "application/json"})
            r = c.getresponse()
            rid = None
            if stream:
                while rid is None:
                    line = r.readline()
                    if not line:
                        break
                    if line.startswith(b"data: ") and b"response.created" in line:
                        rid = json.loads(line[6:])["response"]["id"]
            else:
                rid = json.loads(r.read())["id"]
            # at once, on another connection, before this one is read to its end
            st, _, data = request(self.gw.port, "GET", f"/v1/responses/{rid}")
            c.close()
            with lock:
                out.append((stream, st, data[:200]))

        ts = [threading.Thread(target=one, args=(i % 2 == 1,)) for i in range(40)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        self.assertEqual(len(out), 40)
        self.assertEqual([x for x in out if x[1] != 200], [])

    def test_messages_native(self):
        body = {"model": "claude", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}
        st, h, data = request(self.gw.port, "POST", "/v1/messages", body)
        self.assertEqual(st, 200, data)
        self.assertEqual(json.loads(data)["type"], "message")
        last = self.mock.last()
        names = {n.lower(): v for n, v in last["headers"]}
        self.assertEqual(names.get("x-api-key"), "sk-an-1")
        self.assertEqual(names.get("anthropic-version"), "2023-06-01")
        self.assertNotIn("authorization", names)
        st, h, data = request(self.gw.port, "POST", "/v1/messages", dict(body, stream=True),
                              {"anthropic-version": "2023-06-01", "anthropic-beta": "x-1"})
        self.assertEqual(st, 200)
        self.assertIn(b"event: message_stop", data)
        names = {n.lower(): v for n, v in self.mock.last()["headers"]}
        self.assertEqual(names.get("anthropic-beta"), "x-1", "the client's beta header passes")
        st, _, data = request(self.gw.port, "POST", "/v1/messages/count_tokens",
                              {"model": "claude", "messages": body["messages"]})
        self.assertEqual(st, 200, data)
        self.assertIn("input_tokens", json.loads(data))

    def test_messages_errors_in_anthropic_shape(self):
        st, _, data = request(self.gw.port, "POST", "/v1/messages",
                              {"model": "nope", "max_tokens": 1, "messages": []})
        self.assertEqual(st, 404, data)
        j = json.loads(data)
        self.assertEqual((j["type"], j["error"]["type"]), ("error", "not_found_error"))
        # a model only on OpenAI-compatible providers: 400 naming the model and the API
        st, _, data = request(self.gw.port, "POST", "/v1/messages",
                              {"model": "gpt", "max_tokens": 1, "messages": []})
        self.assertEqual(st, 400, data)
        j = json.loads(data)
        self.assertEqual(j["error"]["type"], "invalid_request_error")
        self.assertIn("gpt", j["error"]["message"])
        self.assertIn("messages", j["error"]["message"])
        # an API that no translation serves yet, in OpenAI's shape: the Responses API on
        # a model only on Anthropic-native providers
        st, _, data = request(self.gw.port, "POST", "/v1/responses",
                              {"model": "claude", "input": "hi"})
        self.assertEqual(st, 400, data)
        self.assertEqual(json.loads(data)["error"]["code"], "api_not_supported")



class CutStreamsTest(unittest.TestCase):
    """A client that leaves a Responses or Messages stream early is still billed: the
    input as the stream's start said it (Messages) or estimated, the output about a token
    per event streamed, and the access log flags it as estimated."""

    @classmethod
    def setUpClass(cls):
        cls.mock = Mock()
        cls.tmp = tempfile.mkdtemp(prefix="llmgate-cut-")
        cls.log = os.path.join(cls.tmp, "access.log")
        cls.gw = Gateway(
            [{"name": "oa", "url": cls.mock.url(), "keys": [("oa-1", "sk-oa-1", None)]},
             {"name": "an", "api": "anthropic", "url": cls.mock.url(),
              "keys": [("an-1", "sk-an-1", None)]}],
            [{"name": "gpt", "deployments": [("oa", "gpt-4o")]},
             {"name": "claude", "deployments": [("an", "claude-sonnet-4-5")]}],
            extra_yaml=f'access_log: {{path: "{cls.log}"}}\n')

    @classmethod
    def tearDownClass(cls):
        cls.gw.stop()
        cls.gw.cleanup()
        cls.mock.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def line(self, rid):
        return access_log_line(self.log, rid)

    def cut(self, path, body, rid, events=5):
        data = json.dumps(body).encode()
        s = socket.create_connection(("127.0.0.1", self.gw.port), timeout=10)
        s.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nx-request-id: {rid}\r\n"
                  "anthropic-version: 2023-06-01\r\nx-mock-chunks: 40\r\n"
                  f"x-mock-chunk-delay-ms: 100\r\nContent-Length: {len(data)}\r\n\r\n".encode()
                  + data)
        got = b""
        deadline = time.monotonic() + 10
        while got.count(b"\ndata: {") < events + 2 and time.monotonic() < deadline:
            got += s.recv(65536)
        s.close()
        self.assertGreaterEqual(got.count(b"\ndata: {"), events + 2, got[:400])

    def test_messages_cut_early(self):
        body = {"model": "claude", "max_tokens": 256, "stream": True,
                "messages": [{"role": "user", "content": "tell me a long story, please"}]}
        st, _, data = request(self.gw.port, "POST", "/v1/messages", dict(body, stream=False),
                              {"anthropic-version": "2023-06-01"})
        self.assertEqual(st, 200, data)
        exact_input = json.loads(data)["usage"]["input_tokens"]
        rid = "cut-messages-%d" % time.monotonic_ns()
        self.cut("/v1/messages", body, rid)
        line = self.line(rid)
        self.assertEqual(line["api"], "messages")
        self.assertTrue(line["tokens_estimated"], line)
        self.assertEqual(line["prompt_tokens"], exact_input, "the input from message_start")
        self.assertGreaterEqual(line["completion_tokens"], 5, line)
        self.assertLess(line["completion_tokens"], 40, line)

    def test_responses_cut_early(self):
        body = {"model": "gpt", "input": "tell me a long story, please", "stream": True}
        rid = "cut-responses-%d" % time.monotonic_ns()
        self.cut("/v1/responses", body, rid)
        line = self.line(rid)
        self.assertEqual(line["api"], "responses")
        self.assertTrue(line["tokens_estimated"], line)
        self.assertGreater(line["prompt_tokens"], 0)
        self.assertGreaterEqual(line["completion_tokens"], 5, line)
        self.assertLess(line["completion_tokens"], 40, line)


if __name__ == "__main__":
    unittest.main(verbosity=2)
