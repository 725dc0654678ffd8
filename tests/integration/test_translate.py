"""Format translation end to end, through the real gateway and the mock speaking each format:
OpenAI chat clients on an api: anthropic provider and Anthropic Messages clients on an
OpenAI-compatible one (JSON, streams, tools streamed, errors in the client's shape), a
fallback from one format to the other, usage billed from the provider's own counts, and the
official SDKs (openai, @anthropic-ai/sdk) as clients."""

import json
import os
import shutil
import subprocess
import tempfile
import unittest

from harness import Mock, Gateway, access_log_line, request, sse_data

SDK_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sdk")
TEXT = "Hello from the mock upstream."


def sse_events(raw):
    """(event, data) pairs of an Anthropic SSE body."""
    out, name = [], None
    for line in raw.decode().splitlines():
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            out.append((name, json.loads(line[6:])))
    return out


CHAT = {"model": "claude", "messages": [{"role": "system", "content": "Be brief."},
                                        {"role": "user", "content": "Say hello"}]}
MSG = {"model": "gpt", "max_tokens": 64, "system": "Be brief.",
       "messages": [{"role": "user", "content": "Say hello"}]}
TOOLS_CHAT = [{"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"},
                                                    "unit": {"type": "string"}}}}}]
TOOLS_MSG = [{"name": "get_weather", "description": "The weather in a city",
              "input_schema": TOOLS_CHAT[0]["function"]["parameters"]}]
WEATHER = {"city": "Paris", "unit": "celsius"}


class TranslateTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.mock = Mock()
        cls.tmp = tempfile.mkdtemp(prefix="llmgate-xlate-")
        cls.log = os.path.join(cls.tmp, "access.log")
        cls.gw = Gateway(
            [{"name": "an", "api": "anthropic", "url": cls.mock.url(),
              "keys": [("an-1", "sk-an-1", None)]},
             {"name": "oa", "url": cls.mock.url(), "keys": [("oa-1", "sk-oa-1", None)]},
             {"name": "oa2", "url": cls.mock.url(), "keys": [("oa2-1", "sk-oa2-1", None)]}],
            [{"name": "claude", "deployments": [("an", "claude-sonnet-4-5")]},
             {"name": "gpt", "deployments": [("oa", "deepseek-chat")]},
             # tier 1 OpenAI-compatible, tier 2 Anthropic: a fallback across formats
             {"name": "cross", "deployments": [("oa2", "deepseek-chat", 1, 1),
                                               ("an", "claude-haiku-4-5", 1, 2)]}],
            policy={"probe_interval_ms": 0}, start=False,
            extra_yaml=f'access_log: {{path: "{cls.log}"}}\ntranslation: {{default_max_tokens: 777}}\n')
        # DeepSeek takes at most 8192 output tokens: the deployment says so
        dep = '{provider: oa, model: "deepseek-chat", weight: 1, priority: 1}'
        assert dep in cls.gw.config_text, cls.gw.config_text
        dep2 = '{provider: an, model: "claude-sonnet-4-5", weight: 1, priority: 1}'
        assert dep2 in cls.gw.config_text, cls.gw.config_text
        with open(cls.gw.config, "w") as f:
            f.write(cls.gw.config_text.replace(
                dep, dep[:-1] + ", max_output_tokens: 8192}").replace(
                dep2, dep2[:-1] + ", max_output_tokens: 1000}"))
        cls.gw.start()

    @classmethod
    def tearDownClass(cls):
        cls.gw.stop()
        cls.gw.cleanup()
        cls.mock.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def line(self, rid):
        return access_log_line(self.log, rid)

    def last_sent(self):
        last = self.mock.last()
        return last["path"], {n.lower(): v for n, v in last["headers"]}, json.loads(last["body"])

    # ---- OpenAI chat clients on an Anthropic provider --------------------------------------

    def test_chat_on_anthropic_json(self):
        st, h, data = request(self.gw.port, "POST", "/v1/chat/completions", CHAT,
                              {"x-request-id": "xl-chat-json"})
        self.assertEqual(st, 200, data)
        j = json.loads(data)
        self.assertEqual(j["object"], "chat.completion")
        self.assertEqual(j["model"], "claude")
        self.assertEqual(j["choices"][0]["message"]["content"], TEXT)
        self.assertEqual(j["choices"][0]["finish_reason"], "stop")
        path, hdrs, sent = self.last_sent()
        self.assertEqual(path, "/v1/messages")
        self.assertEqual(hdrs.get("x-api-key"), "sk-an-1")
        self.assertEqual(hdrs.get("anthropic-version"), "2023-06-01")
        self.assertEqual(sent["model"], "claude-sonnet-4-5")
        self.assertEqual(sent["system"], "Be brief.")
        self.assertEqual(sent["max_tokens"], 777, "translation.default_max_tokens")
        self.assertEqual([m["role"] for m in sent["messages"]], ["user"])
        line = self.line("xl-chat-json")
        self.assertEqual((line["api"], line["provider"]), ("chat", "an"))
        self.assertEqual(line["prompt_tokens"], j["usage"]["prompt_tokens"])
        self.assertEqual(line["completion_tokens"], j["usage"]["completion_tokens"])
        self.assertFalse(line["tokens_estimated"])

    def test_chat_max_tokens_capped_by_the_deployment(self):
        st, _, data = request(self.gw.port, "POST", "/v1/chat/completions",
                              dict(CHAT, max_completion_tokens=5000))
        self.assertEqual(st, 200, data)
        _, _, sent = self.last_sent()
        self.assertEqual(sent["max_tokens"], 1000)

    def test_chat_on_anthropic_stream(self):
        body = dict(CHAT, stream=True, stream_options={"include_usage": True})
        st, h, data = request(self.gw.port, "POST", "/v1/chat/completions", body,
                              {"x-request-id": "xl-chat-sse"})
        self.assertEqual(st, 200, data)
        self.assertTrue(h.get("content-type", "").startswith("text/event-stream"))
        ev = sse_data(data)
        self.assertEqual(ev[-1], "[DONE]")
        chunks = ev[:-1]
        self.assertTrue(all(c["object"] == "chat.completion.chunk" for c in chunks))
        text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks
                       if c["choices"])
        self.assertTrue(text.startswith("Hello from the mock upstream."), text)
        self.assertEqual([c["choices"][0]["finish_reason"] for c in chunks
                          if c["choices"] and c["choices"][0]["finish_reason"]], ["stop"])
        usage = [c["usage"] for c in chunks if c.get("usage")]
        self.assertEqual(len(usage), 1, "one usage chunk, asked for by include_usage")
        line = self.line("xl-chat-sse")
        self.assertEqual(line["prompt_tokens"], usage[0]["prompt_tokens"])
        self.assertEqual(line["completion_tokens"], usage[0]["completion_tokens"])

    def test_chat_tools_streamed_on_anthropic(self):
        body = dict(CHAT, stream=True, tools=TOOLS_CHAT,
                    tool_choice={"type": "function", "function": {"name": "get_weather"}})
        st, _, data = request(self.gw.port, "POST", "/v1/chat/completions", body)
        self.assertEqual(st, 200, data)
        _, _, sent = self.last_sent()
        self.assertEqual(sent["tools"][0]["name"], "get_weather")
        self.assertEqual(sent["tool_choice"], {"type": "tool", "name": "get_weather"})
        calls = {}
        finish = None
        for c in sse_data(data)[:-1]:
            if not c["choices"]:
                continue
            d = c["choices"][0]["delta"]
            for tc in d.get("tool_calls") or []:
                e = calls.setdefault(tc["index"], {"id": None, "name": None, "args": ""})
                e["id"] = tc.get("id") or e["id"]
                e["name"] = (tc.get("function") or {}).get("name") or e["name"]
                e["args"] += (tc.get("function") or {}).get("arguments") or ""
            finish = c["choices"][0]["finish_reason"] or finish
        self.assertEqual(list(calls), [0])
        self.assertEqual(calls[0]["name"], "get_weather")
        self.assertTrue(calls[0]["id"])
        self.assertEqual(json.loads(calls[0]["args"]), WEATHER)
        self.assertEqual(finish, "tool_calls")

    def test_chat_tool_results_go_back_as_anthropic_blocks(self):
        body = dict(CHAT, messages=CHAT["messages"] + [
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function",
                 "function": {"name": "get_weather", "arguments": json.dumps(WEATHER)}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "18 degrees"}],
            tools=TOOLS_CHAT)
        st, _, data = request(self.gw.port, "POST", "/v1/chat/completions", body)
        self.assertEqual(st, 200, data)
        _, _, sent = self.last_sent()
        self.assertEqual([m["role"] for m in sent["messages"]], ["user", "assistant", "user"])
        use = sent["messages"][1]["content"][-1]
        self.assertEqual((use["type"], use["id"], use["input"]), ("tool_use", "call_1", WEATHER))
        res = sent["messages"][2]["content"][0]
        self.assertEqual((res["type"], res["tool_use_id"]), ("tool_result", "call_1"))

    def test_chat_errors_in_openai_shape(self):
        st, h, data = request(self.gw.port, "POST", "/v1/chat/completions", CHAT,
                              {"x-mock-status": "400", "x-mock-error-message": "bad thing"})
        self.assertEqual(st, 400, data)
        j = json.loads(data)
        self.assertIn("error", j)
        self.assertNotIn("type", j, "not Anthropic's top-level shape")
        self.assertIn("bad thing", j["error"]["message"])
        # a field that cannot be carried is refused, naming it
        st, _, data = request(self.gw.port, "POST", "/v1/chat/completions", dict(CHAT, n=3))
        self.assertEqual(st, 400, data)
        self.assertEqual(json.loads(data)["error"]["param"], "n")

    # ---- Anthropic Messages clients on an OpenAI-compatible provider -----------------------

    def test_messages_on_openai_json_and_stream(self):
        hv = {"anthropic-version": "2023-06-01", "x-request-id": "xl-msg-json"}
        st, _, data = request(self.gw.port, "POST", "/v1/messages", MSG, hv)
        self.assertEqual(st, 200, data)
        j = json.loads(data)
        self.assertEqual((j["type"], j["role"], j["model"]), ("message", "assistant", "gpt"))
        self.assertEqual(j["content"][0], {"type": "text", "text": TEXT})
        self.assertEqual(j["stop_reason"], "end_turn")
        path, hdrs, sent = self.last_sent()
        self.assertEqual(path, "/v1/chat/completions")
        self.assertEqual(hdrs.get("authorization"), "Bearer sk-oa-1")
        self.assertEqual(sent["model"], "deepseek-chat")
        self.assertEqual(sent["messages"][0], {"role": "system", "content": "Be brief."})
        line = self.line("xl-msg-json")
        self.assertEqual(line["api"], "messages")
        self.assertEqual(line["completion_tokens"], j["usage"]["output_tokens"])

        hv["x-request-id"] = "xl-msg-sse"
        st, _, data = request(self.gw.port, "POST", "/v1/messages", dict(MSG, stream=True), hv)
        self.assertEqual(st, 200, data)
        ev = sse_events(data)
        names = [n for n, _ in ev]
        self.assertEqual(names[0], "message_start")
        self.assertEqual(names[-2:], ["message_delta", "message_stop"])
        self.assertTrue(all(n == d["type"] for n, d in ev))
        text = "".join(d["delta"]["text"] for n, d in ev
                       if n == "content_block_delta" and d["delta"]["type"] == "text_delta")
        self.assertTrue(text.startswith("Hello from the mock upstream."), text)
        _, _, sent = self.last_sent()
        self.assertEqual(sent.get("stream_options"), {"include_usage": True},
                         "usage is asked for, so the stream is billed exactly")
        line = self.line("xl-msg-sse")
        self.assertFalse(line["tokens_estimated"])
        self.assertEqual(line["completion_tokens"], ev[-2][1]["usage"]["output_tokens"])

    def test_messages_max_tokens_capped_by_the_deployment(self):
        st, _, data = request(self.gw.port, "POST", "/v1/messages", dict(MSG, max_tokens=32000),
                              {"anthropic-version": "2023-06-01"})
        self.assertEqual(st, 200, data)
        _, _, sent = self.last_sent()
        self.assertEqual(sent["max_tokens"], 8192, "Claude Code's 32000 lowered to the cap")

    def test_messages_count_tokens_estimated(self):
        before = self.mock.stats()["requests"]
        st, h, data = request(self.gw.port, "POST", "/v1/messages/count_tokens",
                              {"model": "gpt", "system": "x" * 400,
                               "messages": [{"role": "user", "content": "y" * 400}]},
                              {"anthropic-version": "2023-06-01"})
        self.assertEqual(st, 200, data)
        self.assertEqual(h.get("x-llmgate-estimate"), "true")
        self.assertEqual(json.loads(data), {"input_tokens": 200}, "800 characters / 4")
        self.assertEqual(self.mock.stats()["requests"], before, "nothing went upstream")

    def test_messages_tools_streamed_on_openai(self):
        body = dict(MSG, stream=True, tools=TOOLS_MSG,
                    tool_choice={"type": "tool", "name": "get_weather"})
        st, _, data = request(self.gw.port, "POST", "/v1/messages", body,
                              {"anthropic-version": "2023-06-01"})
        self.assertEqual(st, 200, data)
        _, _, sent = self.last_sent()
        self.assertEqual(sent["tools"][0]["function"]["name"], "get_weather")
        ev = sse_events(data)
        starts = [d for n, d in ev if n == "content_block_start"
                  and d["content_block"]["type"] == "tool_use"]
        self.assertEqual(len(starts), 1)
        self.assertEqual(starts[0]["content_block"]["name"], "get_weather")
        idx = starts[0]["index"]
        args = "".join(d["delta"]["partial_json"] for n, d in ev
                       if n == "content_block_delta" and d["index"] == idx)
        self.assertEqual(json.loads(args), WEATHER)
        self.assertEqual([d["delta"]["stop_reason"] for n, d in ev if n == "message_delta"],
                         ["tool_use"])

    def test_messages_errors_in_anthropic_shape(self):
        st, _, data = request(self.gw.port, "POST", "/v1/messages", MSG,
                              {"anthropic-version": "2023-06-01", "x-mock-status": "400",
                               "x-mock-error-message": "bad thing"})
        self.assertEqual(st, 400, data)
        j = json.loads(data)
        self.assertEqual(j["type"], "error")
        self.assertEqual(j["error"]["type"], "invalid_request_error")
        self.assertIn("bad thing", j["error"]["message"])

    # ---- across formats -----------------------------------------------------------------

    def test_fallback_across_formats(self):
        # the OpenAI-compatible tier answers 429: the Anthropic tier serves, translated
        self.mock.script(key="sk-oa2-1", status=429, count=1)
        st, h, data = request(self.gw.port, "POST", "/v1/chat/completions",
                              dict(CHAT, model="cross"))
        self.assertEqual(st, 200, data)
        self.assertEqual(h.get("x-llmgate-provider"), "an")
        self.assertEqual(h.get("x-llmgate-attempts"), "2")
        j = json.loads(data)
        self.assertEqual(j["object"], "chat.completion")
        self.assertEqual(j["choices"][0]["message"]["content"], TEXT)
        path, _, sent = self.last_sent()
        self.assertEqual((path, sent["model"]), ("/v1/messages", "claude-haiku-4-5"))

    # ---- the official SDKs ----------------------------------------------------------------

    def node(self, *args):
        node = shutil.which("node")
        self.assertIsNotNone(node, "node is installed by ./dev.sh test")
        p = subprocess.run([node, *args], cwd=SDK_DIR, capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        return json.loads(p.stdout)

    def test_openai_sdk_on_anthropic(self):
        out = self.node("sdk_chat.mjs", self.gw.url() + "/v1", "claude")
        self.assertEqual(out["plain"]["content"], TEXT)
        self.assertEqual(out["plain"]["model"], "claude")
        self.assertGreaterEqual(out["stream"]["chunks"], 3)
        self.assertTrue(out["stream"]["text"].startswith("Hello from the mock upstream."))

    def test_anthropic_sdk_on_openai(self):
        out = self.node("sdk_anthropic.mjs", "basic", self.gw.url(), "gpt")
        self.assertEqual(out["create"]["text"], TEXT, out)
        self.assertGreater(out["create"]["usage"]["output_tokens"], 0)
        self.assertTrue(out["stream"]["final_text"].startswith("Hello from the mock upstream."))
        self.assertGreater(out["count"]["input_tokens"], 0, "the gateway's estimate")


if __name__ == "__main__":
    unittest.main(verbosity=2)
