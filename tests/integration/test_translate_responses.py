"""The Responses API (POST /v1/responses, JSON and streamed) on an api: openai-chat provider,
through the real gateway and the mock speaking chat completions: text and tools, plain and
streamed (the event order, sequence numbers, the final usage), a function_call_output round
trip, the refusals (previous_response_id, built-in tools), a stream cut by the provider,
billing from the provider's own counts, failover between an api: openai deployment (served
natively, the mock speaks /responses) and an api: openai-chat one both ways, client-key
budgets; and the real SDKs: the openai SDK's client.responses.create (plain, stream, a
function tool) and the Vercel ai SDK's default openai('model') provider, which speaks the
Responses API (sdk/sdk_responses_chat.mjs)."""

import hashlib
import http.client
import json
import os
import shutil
import subprocess
import tempfile
import unittest

from harness import Mock, Gateway, wait_until

SDK_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sdk")
NODE_TIMEOUT = 60
TEXT = "Hello from the mock upstream."
STREAM_TEXT = "Hello from the mock upstream. Hello from the"  # 8 words, one event each
WEATHER = {"city": "Paris", "unit": "celsius"}
APP_KEY = "sk-client-resp-app-0123456789"
LIM_KEY = "sk-client-resp-lim-9876543210"
TOOLS = [{"type": "function", "name": "get_weather", "description": "The weather in a city",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"},
                                                          "unit": {"type": "string"}}},
          "strict": False}]
NAMED = {"type": "function", "name": "get_weather"}
BODY = {"model": "ds", "instructions": "Be brief.", "input": "Say hello"}
EVENTS_TEXT = (["response.created", "response.in_progress", "response.output_item.added",
                "response.content_part.added"] + ["response.output_text.delta"] * 8 +
               ["response.output_text.done", "response.content_part.done",
                "response.output_item.done", "response.completed"])


def request(port, path, body, headers=None, key=APP_KEY):
    """(status, headers, body bytes); a body cut by the gateway gives what arrived."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    h = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
    h.update(headers or {})
    c.request("POST", path, body=json.dumps(body), headers=h)
    r = c.getresponse()
    try:
        data = r.read()
    except http.client.IncompleteRead as e:
        data = e.partial + b"\n<cut>"
    hdrs = {k.lower(): v for k, v in r.getheaders()}
    c.close()
    return r.status, hdrs, data


def events(raw):
    """(event, data) pairs of a Responses SSE body."""
    out, name = [], None
    for line in raw.decode().splitlines():
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            out.append((name, json.loads(line[6:])))
    return out


class TranslateResponsesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.mock = Mock()
        cls.tmp = tempfile.mkdtemp(prefix="llmgate-xlate-resp-")
        cls.log = os.path.join(cls.tmp, "access.log")
        clients = ("client_keys:\n"
                   f"  - {{name: app, sha256: {hashlib.sha256(APP_KEY.encode()).hexdigest()}}}\n"
                   "  - {name: lim, secret_env: LLMGATE_TEST_CLIENT_LIM, rpm: 2,"
                   " tokens_per_day: 100000}\n")
        try:
            cls.gw = Gateway(
                [{"name": "oc", "api": "openai-chat", "url": cls.mock.url(),
                  "keys": [("oc-1", "sk-oc-1", None)]},
                 {"name": "oc2", "api": "openai-chat", "url": cls.mock.url(),
                  "keys": [("oc2-1", "sk-oc2-1", None)]},
                 {"name": "oa", "url": cls.mock.url(), "keys": [("oa-1", "sk-oa-1", None)]},
                 {"name": "oa2", "url": cls.mock.url(), "keys": [("oa2-1", "sk-oa2-1", None)]},
                 {"name": "oc-cut", "api": "openai-chat", "url": cls.mock.url(),
                  "keys": [("oc-cut-1", "sk-oc-cut-1", None)]}],
                [{"name": "ds", "deployments": [("oc", "deepseek-chat")]},
                 {"name": "ds-cut", "deployments": [("oc-cut", "deepseek-chat")]},
                 # native first, then translated; and the reverse
                 {"name": "native-first", "deployments": [("oa", "gpt-4.1", 1, 1),
                                                          ("oc", "deepseek-chat", 1, 2)]},
                 {"name": "chat-first", "deployments": [("oc2", "deepseek-chat", 1, 1),
                                                        ("oa2", "gpt-4.1", 1, 2)]}],
                policy={"probe_interval_ms": 0}, clients=True,
                env={"LLMGATE_TEST_CLIENT_LIM": LIM_KEY},
                extra_yaml=f'access_log: {{path: "{cls.log}"}}\n' + clients)
        except BaseException:
            cls.mock.stop()
            shutil.rmtree(cls.tmp, ignore_errors=True)
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.gw.stop()
            cls.gw.cleanup()
        finally:
            cls.mock.stop()
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def line(self, rid):
        def find():
            try:
                with open(self.log) as f:
                    return [json.loads(l) for l in f if rid in l]
            except FileNotFoundError:
                return []
        return wait_until(find, 10, what=f"the access log line of {rid}")[0]

    def last_sent(self):
        last = self.mock.last()
        return last["path"], {n.lower(): v for n, v in last["headers"]}, last["body"]

    def assert_billed(self, rid, usage, sent_body):
        """The access log has the provider's counts, which the client's usage repeats."""
        line = self.line(rid)
        self.assertEqual(line["api"], "responses")
        self.assertFalse(line["tokens_estimated"])
        self.assertEqual(line["prompt_tokens"], max(1, len(sent_body.encode()) // 4),
                         "the mock's input tokens: its body bytes / 4")
        self.assertEqual(line["prompt_tokens"], usage["input_tokens"])
        self.assertEqual(line["completion_tokens"], usage["output_tokens"])
        self.assertEqual(usage["total_tokens"], usage["input_tokens"] + usage["output_tokens"])

    # ---- text -------------------------------------------------------------------------

    def test_plain(self):
        st, h, data = request(self.gw.port, "/v1/responses", dict(BODY, max_output_tokens=50),
                              {"x-request-id": "rc-plain"})
        self.assertEqual(st, 200, data)
        self.assertTrue(h.get("content-type", "").startswith("application/json"))
        self.assertEqual(h.get("x-llmgate-provider"), "oc")
        j = json.loads(data)
        self.assertEqual((j["object"], j["status"], j["model"]), ("response", "completed", "ds"))
        self.assertEqual(j["id"], "resp_rc-plain")
        self.assertEqual(j["instructions"], "Be brief.")
        self.assertEqual(j["max_output_tokens"], 50)
        self.assertEqual(len(j["output"]), 1)
        msg = j["output"][0]
        self.assertEqual((msg["type"], msg["role"], msg["status"]),
                         ("message", "assistant", "completed"))
        self.assertEqual(msg["content"], [{"type": "output_text", "text": TEXT,
                                           "annotations": []}])
        path, hdrs, body = self.last_sent()
        self.assertEqual(path, "/v1/chat/completions")
        self.assertEqual(hdrs.get("authorization"), "Bearer sk-oc-1")
        sent = json.loads(body)
        self.assertEqual(sent["model"], "deepseek-chat")
        self.assertEqual(sent["messages"], [{"role": "system", "content": "Be brief."},
                                            {"role": "user", "content": "Say hello"}])
        self.assertEqual(sent["max_tokens"], 50)
        self.assertNotIn("stream", sent)
        self.assert_billed("rc-plain", j["usage"], body)

    def test_stream(self):
        st, h, data = request(self.gw.port, "/v1/responses", dict(BODY, stream=True),
                              {"x-request-id": "rc-sse"})
        self.assertEqual(st, 200, data)
        self.assertTrue(h.get("content-type", "").startswith("text/event-stream"))
        ev = events(data)
        self.assertEqual([n for n, _ in ev], EVENTS_TEXT)
        self.assertTrue(all(n == d["type"] for n, d in ev))
        self.assertEqual([d["sequence_number"] for _, d in ev], list(range(len(ev))))
        text = "".join(d["delta"] for n, d in ev if n == "response.output_text.delta")
        self.assertEqual(text, STREAM_TEXT)
        self.assertEqual(ev[-4][1]["text"], STREAM_TEXT, "output_text.done repeats the text")
        final = ev[-1][1]["response"]
        self.assertEqual(final["status"], "completed")
        self.assertEqual(final["output"][0]["content"][0]["text"], STREAM_TEXT)
        self.assertEqual(final["id"], ev[0][1]["response"]["id"])
        _, _, body = self.last_sent()
        sent = json.loads(body)
        self.assertEqual((sent["stream"], sent["stream_options"]), (True, {"include_usage": True}))
        self.assertGreater(final["usage"]["output_tokens"], 0)
        self.assert_billed("rc-sse", final["usage"], body)

    # ---- tools ------------------------------------------------------------------------

    def test_tools_plain(self):
        st, _, data = request(self.gw.port, "/v1/responses",
                              dict(BODY, tools=TOOLS, tool_choice=NAMED),
                              {"x-request-id": "rc-tools"})
        self.assertEqual(st, 200, data)
        j = json.loads(data)
        calls = [o for o in j["output"] if o["type"] == "function_call"]
        self.assertEqual(len(calls), 1, j)
        self.assertEqual((calls[0]["name"], calls[0]["call_id"], calls[0]["status"]),
                         ("get_weather", "call_mock_0", "completed"))
        self.assertTrue(calls[0]["id"].startswith("fc_"))
        self.assertEqual(json.loads(calls[0]["arguments"]), WEATHER)
        self.assertEqual(j["tools"], TOOLS, "the request's tools echoed")
        self.assertEqual(j["tool_choice"], NAMED)
        _, _, body = self.last_sent()
        sent = json.loads(body)
        self.assertEqual(sent["tools"], [{"type": "function", "function": {
            k: v for k, v in TOOLS[0].items() if k != "type"}}])
        self.assertEqual(sent["tool_choice"], {"type": "function",
                                               "function": {"name": "get_weather"}})
        self.assert_billed("rc-tools", j["usage"], body)

    def test_tools_streamed(self):
        st, _, data = request(self.gw.port, "/v1/responses",
                              dict(BODY, stream=True, tools=TOOLS, tool_choice=NAMED),
                              {"x-mock-tool-calls": "2", "x-request-id": "rc-tools-sse"})
        self.assertEqual(st, 200, data)
        ev = events(data)
        names = [n for n, _ in ev]
        self.assertEqual(names[:2], ["response.created", "response.in_progress"])
        self.assertEqual(names[-1], "response.completed")
        self.assertEqual([d["sequence_number"] for _, d in ev], list(range(len(ev))))
        added = [d for n, d in ev if n == "response.output_item.added"]
        self.assertEqual([a["item"]["type"] for a in added], ["function_call"] * 2)
        self.assertEqual([a["output_index"] for a in added], [0, 1])
        for a, city in zip(added, ("Paris", "Rome")):
            item_id = a["item"]["id"]
            args = "".join(d["delta"] for n, d in ev
                           if n == "response.function_call_arguments.delta"
                           and d["item_id"] == item_id)
            self.assertEqual(json.loads(args), {"city": city, "unit": "celsius"})
            done = [d for n, d in ev if n == "response.function_call_arguments.done"
                    and d["item_id"] == item_id]
            self.assertEqual(done[0]["arguments"], args)
            self.assertEqual(done[0]["name"], "get_weather")
        final = ev[-1][1]["response"]
        self.assertEqual([o["call_id"] for o in final["output"]], ["call_mock_0", "call_mock_1"])
        _, _, body = self.last_sent()
        self.assert_billed("rc-tools-sse", final["usage"], body)

    def test_function_call_output_round_trip(self):
        body = dict(BODY, tools=TOOLS, input=[
            {"role": "user", "content": [{"type": "input_text", "text": "Weather in Paris?"}]},
            {"type": "function_call", "call_id": "call_mock_0", "name": "get_weather",
             "arguments": json.dumps(WEATHER), "id": "fc_1", "status": "completed"},
            {"type": "function_call_output", "call_id": "call_mock_0", "output": "18 degrees"}])
        st, _, data = request(self.gw.port, "/v1/responses", body)
        self.assertEqual(st, 200, data)
        j = json.loads(data)
        self.assertEqual(j["output"][0]["content"][0]["text"], TEXT)
        _, _, sent = self.last_sent()
        msgs = json.loads(sent)["messages"]
        self.assertEqual([m["role"] for m in msgs], ["system", "user", "assistant", "tool"])
        self.assertEqual(msgs[2]["tool_calls"], [{"id": "call_mock_0", "type": "function",
                                                  "function": {"name": "get_weather",
                                                               "arguments": json.dumps(WEATHER)}}])
        self.assertEqual(msgs[3], {"role": "tool", "tool_call_id": "call_mock_0",
                                   "content": "18 degrees"})

    # ---- refusals and errors ------------------------------------------------------------

    def test_previous_response_id_400(self):
        before = self.mock.stats()["requests"]
        st, _, data = request(self.gw.port, "/v1/responses",
                              dict(BODY, previous_response_id="resp_abc123"))
        self.assertEqual(st, 400, data)
        e = json.loads(data)["error"]
        self.assertEqual(e["param"], "previous_response_id")
        self.assertIn("cannot continue a stored response", e["message"])
        self.assertIn("whole conversation", e["message"])
        self.assertEqual(self.mock.stats()["requests"], before, "nothing went upstream")
        # a translated response is stored nowhere: its id is not a stored response either
        st, _, data = request(self.gw.port, "/v1/responses", BODY, {"x-request-id": "rc-first"})
        self.assertEqual(st, 200, data)
        st, _, data = request(self.gw.port, "/v1/responses",
                              dict(BODY, previous_response_id=json.loads(data)["id"]))
        self.assertEqual(st, 400, data)
        self.assertEqual(json.loads(data)["error"]["param"], "previous_response_id")
        # conversation: refused by the translation, naming it
        st, _, data = request(self.gw.port, "/v1/responses", dict(BODY, conversation="conv_1"))
        self.assertEqual(st, 400, data)
        self.assertEqual(json.loads(data)["error"]["param"], "conversation")

    def test_builtin_tool_400(self):
        st, _, data = request(self.gw.port, "/v1/responses",
                              dict(BODY, tools=TOOLS + [{"type": "web_search_preview"}]))
        self.assertEqual(st, 400, data)
        e = json.loads(data)["error"]
        self.assertEqual(e["param"], "tools[1].type")
        self.assertIn("web_search_preview", e["message"])
        self.assertIn("api: openai", e["message"], "says what to do")
        st, _, data = request(self.gw.port, "/v1/responses", dict(BODY, background=True))
        self.assertEqual(st, 400, data)
        self.assertEqual(json.loads(data)["error"]["param"], "background")

    def test_provider_error_in_openai_shape(self):
        st, _, data = request(self.gw.port, "/v1/responses", BODY,
                              {"x-mock-status": "400", "x-mock-error-message": "bad thing"})
        self.assertEqual(st, 400, data)
        e = json.loads(data)["error"]
        self.assertIn("bad thing", e["message"])
        self.assertEqual(e["type"], "invalid_request_error")

    def test_stream_cut_ends_with_a_failure(self):
        st, _, data = request(self.gw.port, "/v1/responses",
                              dict(BODY, model="ds-cut", stream=True), {"x-mock-truncate": "1"})
        self.assertEqual(st, 200, data)
        self.assertTrue(data.endswith(b"<cut>"), "the connection is cut, as the provider's was")
        ev = events(data[:-len(b"<cut>")])
        names = [n for n, _ in ev]
        self.assertEqual(names[:2], ["response.created", "response.in_progress"])
        self.assertEqual(names[-2:], ["response.failed", "error"], names)
        self.assertEqual(ev[-2][1]["response"]["status"], "failed")
        self.assertIn("cut", ev[-1][1]["message"])
        self.assertNotIn("response.completed", names)

    # ---- across formats -----------------------------------------------------------------

    def test_native_fails_over_to_translated(self):
        self.mock.script(key="sk-oa-1", status=429, count=1)
        st, h, data = request(self.gw.port, "/v1/responses", dict(BODY, model="native-first"))
        self.assertEqual(st, 200, data)
        self.assertEqual((h.get("x-llmgate-provider"), h.get("x-llmgate-attempts")), ("oc", "2"))
        j = json.loads(data)
        self.assertEqual((j["object"], j["model"]), ("response", "native-first"))
        self.assertEqual(j["output"][0]["content"][0]["text"], TEXT)
        path, _, _ = self.last_sent()
        self.assertEqual(path, "/v1/chat/completions")

    def test_translated_fails_over_to_native(self):
        self.mock.script(key="sk-oc2-1", status=503, count=1)
        st, h, data = request(self.gw.port, "/v1/responses",
                              dict(BODY, model="chat-first", stream=True))
        self.assertEqual(st, 200, data)
        self.assertEqual((h.get("x-llmgate-provider"), h.get("x-llmgate-attempts")), ("oa2", "2"))
        ev = events(data)
        self.assertEqual(ev[-1][0], "response.completed")
        self.assertTrue(ev[-1][1]["response"]["id"].startswith("resp_"))
        path, _, body = self.last_sent()
        self.assertEqual(path, "/v1/responses")
        self.assertEqual(json.loads(body)["model"], "gpt-4.1", "the native body, model spliced")

    # ---- the other APIs on api: openai-chat ---------------------------------------------

    def test_openai_chat_serves_the_rest(self):
        st, _, data = request(self.gw.port, "/v1/chat/completions",
                              {"model": "ds", "messages": [{"role": "user", "content": "hi"}]})
        self.assertEqual(st, 200, data)
        self.assertEqual(json.loads(data)["choices"][0]["message"]["content"], TEXT)
        path, _, body = self.last_sent()
        self.assertEqual(path, "/v1/chat/completions")
        self.assertEqual(json.loads(body)["messages"], [{"role": "user", "content": "hi"}],
                         "chat passes as it is")
        st, _, data = request(self.gw.port, "/v1/embeddings", {"model": "ds", "input": "x"})
        self.assertEqual(st, 200, data)
        self.assertEqual(self.last_sent()[0], "/v1/embeddings")
        # Anthropic Messages: translated to chat completions, count_tokens estimated
        hv = {"anthropic-version": "2023-06-01"}
        st, _, data = request(self.gw.port, "/v1/messages",
                              {"model": "ds", "max_tokens": 64,
                               "messages": [{"role": "user", "content": "Say hello"}]}, hv)
        self.assertEqual(st, 200, data)
        j = json.loads(data)
        self.assertEqual((j["type"], j["content"][0]["text"]), ("message", TEXT))
        self.assertEqual(self.last_sent()[0], "/v1/chat/completions")
        st, h, data = request(self.gw.port, "/v1/messages/count_tokens",
                              {"model": "ds", "messages": [{"role": "user", "content": "y" * 40}]},
                              hv)
        self.assertEqual(st, 200, data)
        self.assertEqual((h.get("x-llmgate-estimate"), json.loads(data)), ("true",
                                                                           {"input_tokens": 10}))

    # ---- client keys --------------------------------------------------------------------

    def test_client_budget_applies(self):
        for left in ("1", "0"):
            st, h, data = request(self.gw.port, "/v1/responses", BODY, key=LIM_KEY)
            self.assertEqual(st, 200, data)
            self.assertEqual(h.get("x-ratelimit-remaining-requests"), left, h)
            self.assertLess(int(h["x-ratelimit-remaining-tokens"]), 100000)
        st, h, data = request(self.gw.port, "/v1/responses", dict(BODY, stream=True), key=LIM_KEY)
        self.assertEqual(st, 429, data)
        self.assertEqual(json.loads(data)["error"]["code"], "client_budget_exceeded")
        st, _, data = request(self.gw.port, "/v1/responses", BODY, key="sk-nobody")
        self.assertEqual(st, 401, data)

    # ---- the real SDKs ------------------------------------------------------------------

    def node(self, *args):
        node = shutil.which("node")
        self.assertIsNotNone(node, "node is installed by ./dev.sh test")
        for p in ("openai", "ai", "@ai-sdk/openai", "zod"):
            self.assertTrue(os.path.isdir(os.path.join(SDK_DIR, "node_modules", p)),
                            f"{p} is missing: run `npm ci` in tests/integration/sdk")
        env = dict(os.environ, LLMGATE_CLIENT_KEY=APP_KEY)
        p = subprocess.run([node, "sdk_responses_chat.mjs", *args], cwd=SDK_DIR, env=env,
                           capture_output=True, text=True, timeout=NODE_TIMEOUT)
        self.assertEqual(p.returncode, 0, p.stderr)
        return json.loads(p.stdout)

    def test_openai_sdk(self):
        out = self.node("openai", self.gw.url() + "/v1", "ds")
        self.assertTrue(out["plain"]["ok"], out)
        plain = out["plain"]["value"]
        self.assertEqual(plain["output_text"], TEXT)
        self.assertEqual((plain["status"], plain["model"]), ("completed", "ds"))
        self.assertGreater(plain["usage"]["output_tokens"], 0)
        self.assertTrue(out["stream"]["ok"], out)
        s = out["stream"]["value"]
        self.assertEqual(s["text"], STREAM_TEXT)
        self.assertEqual(s["types"][0], "response.created")
        self.assertEqual(s["types"][-1], "response.completed")
        self.assertGreater(s["usage"]["total_tokens"], 0)
        self.assertTrue(out["tool"]["ok"], out)
        t = out["tool"]["value"]
        self.assertEqual(t["calls"], [{"name": "get_weather", "call_id": "call_mock_0",
                                       "args": WEATHER}])
        self.assertEqual(t["follow_up"], TEXT, "the function_call_output turn")
        self.assertTrue(out["stream_tool"]["ok"], out)
        self.assertEqual(out["stream_tool"]["value"]["args"], WEATHER)
        self.assertFalse(out["cut"]["ok"], "a cut stream raises in the SDK")
        self.assertEqual(out["cut"]["err"]["class"], "APIError", out["cut"])

    def test_ai_sdk_default_provider(self):
        out = self.node("vercel", self.gw.url() + "/v1", "ds")
        self.assertTrue(out["generate"]["ok"], out)
        g = out["generate"]["value"]
        self.assertEqual(g["text"], TEXT)
        self.assertEqual(g["finishReason"], "stop")
        self.assertGreater(g["usage"]["outputTokens"], 0)
        self.assertTrue(out["stream"]["ok"], out)
        self.assertEqual(out["stream"]["value"]["text"], STREAM_TEXT)

    def test_ai_sdk_tool_loop(self):
        # the first request of the loop is a tool call, the second text
        self.mock.script(key="sk-oc-1", tool_call="get_weather", count=1)
        out = self.node("vercel_tool", self.gw.url() + "/v1", "ds")
        self.assertTrue(out["tool"]["ok"], out)
        t = out["tool"]["value"]
        self.assertEqual(t["toolCalls"], [{"toolName": "get_weather", "input": WEATHER}])
        self.assertEqual((t["text"], t["steps"]), (TEXT, 2), "the loop's second step")
        path, _, body = self.last_sent()
        self.assertEqual(path, "/v1/chat/completions")
        msgs = json.loads(body)["messages"]
        self.assertEqual([m["role"] for m in msgs], ["user", "assistant", "tool"])
        self.assertEqual(json.loads(msgs[2]["content"]), {"temperature": 18})


if __name__ == "__main__":
    unittest.main(verbosity=2)
