"""OpenAI chat clients on providers that speak Google's Gemini API natively (api: gemini),
through the real gateway and the mock speaking Gemini: plain and streamed answers (with
include_usage), tool calls plain and streamed and a follow-up turn with the results, the key
sent in x-goog-api-key and never the client's, billing from the provider's usageMetadata, a
429 RESOURCE_EXHAUSTED whose RetryInfo retryDelay cools that key for about that long while
the next key serves, Gemini's errors in OpenAI's shape, a fallback chain openai -> anthropic
-> gemini, Messages and Responses clients refused clearly for a Gemini-only model, and the
real openai npm SDK on a Gemini-served model."""

import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

from harness import Mock, Gateway, access_log_line, sse_data
from harness import request as harness_request

LLMGATECTL_BIN = os.environ.get("LLMGATECTL_BIN", "llmgatectl")

SDK_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sdk")
TEXT = "Hello from the mock upstream."
CLIENT_KEY = "sk-client-must-not-travel"


def request(port, method, path, body=None, headers=None):
    """harness.request with the client's own key, which must never reach the provider."""
    h = {"Authorization": "Bearer " + CLIENT_KEY}
    h.update(headers or {})
    return harness_request(port, method, path, body, h)


CHAT = {"model": "gem", "messages": [{"role": "system", "content": "Be brief."},
                                     {"role": "user", "content": "Say hello"}]}
TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"},
                                                    "unit": {"type": "string"}},
                   "additionalProperties": False}}}]
NAMED = {"type": "function", "function": {"name": "get_weather"}}
WEATHER = {"city": "Paris", "unit": "celsius"}


class TranslateGeminiTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.mock = Mock()
        gem_url = cls.mock.url()[:-3] + "/v1beta"
        cls.tmp = tempfile.mkdtemp(prefix="llmgate-xgem-")
        cls.log = os.path.join(cls.tmp, "access.log")
        cls.gw = Gateway(
            [{"name": "gm", "api": "gemini", "url": gem_url,
              "keys": [("gm-1", "sk-gm-1", None)]},
             # two keys: a 429 on one is served by the other
             {"name": "gq", "api": "gemini", "url": gem_url,
              "keys": [("gq-1", "sk-gq-1", None), ("gq-2", "sk-gq-2", None)]},
             # the first two links of the fallback chain
             {"name": "oa-f", "url": cls.mock.url(), "keys": [("oa-f1", "sk-oa-f1", None)]},
             {"name": "an-f", "api": "anthropic", "url": cls.mock.url(),
              "keys": [("an-f1", "sk-an-f1", None)]},
             {"name": "gm-f", "api": "gemini", "url": gem_url,
              "keys": [("gm-f1", "sk-gm-f1", None)]}],
            [{"name": "gem", "deployments": [("gm", "gemini-2.5-flash")]},
             {"name": "gem-q", "deployments": [("gq", "gemini-2.5-flash")]},
             {"name": "chain", "deployments": [("oa-f", "gpt-4o-mini")],
              "fallbacks": ["chain-claude", "chain-gemini"]},
             {"name": "chain-claude", "deployments": [("an-f", "claude-haiku-4-5")]},
             {"name": "chain-gemini", "deployments": [("gm-f", "gemini-2.5-flash-lite")]}],
            policy={"probe_interval_ms": 0, "strategy": "round_robin"},
            extra_yaml=f'access_log: {{path: "{cls.log}"}}\n')

    @classmethod
    def tearDownClass(cls):
        rc = cls.gw.stop()
        out = cls.gw.proc.output()
        mrc = cls.mock.stop()
        cls.gw.cleanup()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        # under ASan+UBSan: nothing reported, a clean exit of both processes
        for what in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
            assert what not in out, f"llmgate reported {what}:\n{out[-4000:]}"
        assert (rc, mrc) == (0, 0), f"exit codes llmgate {rc}, mock {mrc}"

    def line(self, rid):
        return access_log_line(self.log, rid)

    def last_sent(self):
        last = self.mock.last()
        return last["path"], {n.lower(): v for n, v in last["headers"]}, last["body"]

    def assert_gemini_key(self, hdrs, secret):
        self.assertEqual(hdrs.get("x-goog-api-key"), secret)
        self.assertNotIn("authorization", hdrs, "the client's key never travels")
        self.assertNotIn(CLIENT_KEY, json.dumps(hdrs))

    def keys(self):
        p = subprocess.run([LLMGATECTL_BIN, "--config", self.gw.config, "keys", "--json"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        return {k["name"]: k for k in json.loads(p.stdout)["keys"]}

    # ---- plain and streamed ----------------------------------------------------------

    def test_plain(self):
        st, h, data = request(self.gw.port, "POST", "/v1/chat/completions", CHAT,
                              {"x-request-id": "xg-plain"})
        self.assertEqual(st, 200, data)
        j = json.loads(data)
        self.assertEqual((j["object"], j["model"]), ("chat.completion", "gem"))
        self.assertEqual(j["choices"][0]["message"]["content"], TEXT)
        self.assertEqual(j["choices"][0]["finish_reason"], "stop")
        self.assertEqual(h.get("x-llmgate-provider"), "gm")
        path, hdrs, body = self.last_sent()
        self.assertEqual(path, "/v1beta/models/gemini-2.5-flash:generateContent")
        self.assert_gemini_key(hdrs, "sk-gm-1")
        sent = json.loads(body)
        self.assertEqual(sent["systemInstruction"], {"parts": [{"text": "Be brief."}]})
        self.assertEqual(sent["contents"], [{"role": "user", "parts": [{"text": "Say hello"}]}])
        self.assertNotIn("model", sent)
        # billing: the mock's usageMetadata (prompt = its body bytes / 4, 5 words)
        prompt = max(1, len(body.encode()) // 4)
        self.assertEqual(j["usage"]["prompt_tokens"], prompt)
        self.assertEqual(j["usage"]["completion_tokens"], 5)
        line = self.line("xg-plain")
        self.assertEqual((line["api"], line["provider"]), ("chat", "gm"))
        self.assertEqual((line["prompt_tokens"], line["completion_tokens"]), (prompt, 5))
        self.assertFalse(line["tokens_estimated"])

    def test_stream_with_usage(self):
        body = dict(CHAT, stream=True, stream_options={"include_usage": True})
        st, h, data = request(self.gw.port, "POST", "/v1/chat/completions", body,
                              {"x-request-id": "xg-stream"})
        self.assertEqual(st, 200, data)
        self.assertTrue(h["content-type"].startswith("text/event-stream"))
        ev = sse_data(data)
        self.assertEqual(ev[-1], "[DONE]")
        chunks = ev[:-1]
        self.assertEqual(chunks[0]["choices"][0]["delta"], {"role": "assistant", "content": ""})
        text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks
                       if c["choices"])
        self.assertTrue(text.startswith(TEXT), text)
        self.assertEqual(chunks[-2]["choices"][0]["finish_reason"], "stop")
        usage = chunks[-1]
        self.assertEqual(usage["choices"], [])
        path, hdrs, sent = self.last_sent()
        self.assertEqual(path, "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse")
        self.assert_gemini_key(hdrs, "sk-gm-1")
        prompt = max(1, len(sent.encode()) // 4)
        self.assertEqual(usage["usage"]["prompt_tokens"], prompt)
        self.assertEqual(usage["usage"]["completion_tokens"], 8, "8 words streamed")
        line = self.line("xg-stream")
        self.assertEqual((line["prompt_tokens"], line["completion_tokens"]), (prompt, 8))
        self.assertFalse(line["tokens_estimated"])

    def test_stream_without_usage(self):
        st, _, data = request(self.gw.port, "POST", "/v1/chat/completions",
                              dict(CHAT, stream=True), {"x-request-id": "xg-stream-nu"})
        self.assertEqual(st, 200, data)
        ev = sse_data(data)
        self.assertEqual(ev[-1], "[DONE]")
        self.assertTrue(all(c["choices"] for c in ev[:-1]), "no usage chunk")
        line = self.line("xg-stream-nu")
        self.assertEqual(line["completion_tokens"], 8, "billed all the same")

    # ---- tools ---------------------------------------------------------------------------

    def test_tools_plain_and_follow_up(self):
        body = dict(CHAT, tools=TOOLS, tool_choice=NAMED)
        st, _, data = request(self.gw.port, "POST", "/v1/chat/completions", body,
                              {"x-request-id": "xg-tools"})
        self.assertEqual(st, 200, data)
        msg = json.loads(data)["choices"][0]
        self.assertEqual(msg["finish_reason"], "tool_calls")
        calls = msg["message"]["tool_calls"]
        self.assertEqual(len(calls), 1)
        self.assertEqual(calls[0]["function"]["name"], "get_weather")
        self.assertEqual(json.loads(calls[0]["function"]["arguments"]), WEATHER)
        self.assertEqual(calls[0]["id"], "call_xg-tools_0")
        _, _, sent = self.last_sent()
        sent = json.loads(sent)
        decl = sent["tools"][0]["functionDeclarations"][0]
        self.assertEqual(decl["name"], "get_weather")
        self.assertEqual(decl["parametersJsonSchema"], TOOLS[0]["function"]["parameters"])
        self.assertEqual(sent["toolConfig"], {"functionCallingConfig": {
            "mode": "ANY", "allowedFunctionNames": ["get_weather"]}})
        # the follow-up turn: the call and its result
        follow = {"model": "gem", "tools": TOOLS, "messages": [
            CHAT["messages"][1], msg["message"],
            {"role": "tool", "tool_call_id": calls[0]["id"], "content": "18 degrees, clear"}]}
        st, _, data = request(self.gw.port, "POST", "/v1/chat/completions", follow)
        self.assertEqual(st, 200, data)
        self.assertEqual(json.loads(data)["choices"][0]["message"]["content"], TEXT)
        _, _, sent = self.last_sent()
        contents = json.loads(sent)["contents"]
        self.assertEqual([c["role"] for c in contents], ["user", "model", "user"])
        self.assertEqual(contents[1]["parts"], [{"functionCall": {"name": "get_weather",
                                                                  "args": WEATHER}}])
        self.assertEqual(contents[2]["parts"], [{"functionResponse": {
            "name": "get_weather", "response": {"result": "18 degrees, clear"}}}])

    def test_tools_streamed(self):
        body = dict(CHAT, tools=TOOLS, tool_choice=NAMED, stream=True,
                    stream_options={"include_usage": True})
        st, _, data = request(self.gw.port, "POST", "/v1/chat/completions", body,
                              {"x-request-id": "xg-tools-s", "x-mock-tool-calls": "2",
                               "x-mock-tool-text": "1", "x-mock-chunks": "3"})
        self.assertEqual(st, 200, data)
        ev = sse_data(data)
        self.assertEqual(ev[-1], "[DONE]")
        deltas = [c["choices"][0]["delta"] for c in ev[:-1] if c["choices"]]
        text = "".join(d.get("content", "") for d in deltas)
        self.assertEqual(text, "Hello from the")
        calls = [d["tool_calls"][0] for d in deltas if "tool_calls" in d]
        self.assertEqual([c["index"] for c in calls], [0, 1])
        self.assertEqual([json.loads(c["function"]["arguments"])["city"] for c in calls],
                         ["Paris", "Rome"])
        self.assertEqual([c["id"] for c in calls], ["call_xg-tools-s_0", "call_xg-tools-s_1"])
        finish = [c["choices"][0]["finish_reason"] for c in ev[:-1] if c["choices"]]
        self.assertEqual(finish[-1], "tool_calls")
        usage = ev[-2]["usage"]
        self.assertEqual(usage["completion_tokens"], 3 + 2 * 10, "3 words + 10 per call")
        line = self.line("xg-tools-s")
        self.assertEqual(line["completion_tokens"], usage["completion_tokens"])
        self.assertEqual(line["prompt_tokens"], usage["prompt_tokens"])

    # ---- errors --------------------------------------------------------------------------

    def test_error_in_openai_shape(self):
        st, _, data = request(self.gw.port, "POST", "/v1/chat/completions", CHAT,
                              {"x-mock-status": "400", "x-mock-error-message": "bad thing"})
        self.assertEqual(st, 400, data)
        e = json.loads(data)["error"]
        self.assertEqual((e["type"], e["code"], e["message"]),
                         ("invalid_request_error", "INVALID_ARGUMENT", "bad thing"))

    def test_refused_field(self):
        st, _, data = request(self.gw.port, "POST", "/v1/chat/completions", dict(CHAT, n=2))
        self.assertEqual(st, 400, data)
        e = json.loads(data)["error"]
        self.assertEqual(e["param"], "n")
        self.assertIn("Gemini", e["message"])

    def test_other_client_apis_are_not_routed_to_gemini(self):
        st, _, data = request(self.gw.port, "POST", "/v1/messages",
                              {"model": "gem", "max_tokens": 10,
                               "messages": [{"role": "user", "content": "hi"}]},
                              {"anthropic-version": "2023-06-01"})
        self.assertEqual(st, 400, data)
        j = json.loads(data)
        self.assertEqual(j["type"], "error")
        self.assertIn("model gem has no provider that serves the messages API",
                      j["error"]["message"])
        st, _, data = request(self.gw.port, "POST", "/v1/responses",
                              {"model": "gem", "input": "hi"})
        self.assertEqual(st, 400, data)
        self.assertEqual(json.loads(data)["error"]["code"], "api_not_supported")

    # ---- key policy: RetryInfo -----------------------------------------------------------

    def test_resource_exhausted_cools_the_key(self):
        # gq-1's key answers 429 RESOURCE_EXHAUSTED with retryDelay 30s (until reset)
        self.mock.script(key="sk-gq-1", status=429, retry_after=30)
        try:
            served = []
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                st, h, data = request(self.gw.port, "POST", "/v1/chat/completions",
                                      dict(CHAT, model="gem-q"))
                self.assertEqual(st, 200, data)
                served.append(h.get("x-llmgate-key"))
                if self.keys()["gq-1"]["state"] == "cooling":
                    break
            k = self.keys()["gq-1"]
            self.assertEqual(k["state"], "cooling", served)
            self.assertEqual(k["reason"], "rate_limited")
            self.assertTrue(25000 <= k["cooldown_left_ms"] <= 30000, k["cooldown_left_ms"])
            self.assertEqual(set(served), {"gq-2"}, "the next key served every request")
            self.assertNotEqual(self.keys()["gq-2"]["state"], "cooling")
            # while gq-1 cools, gq-2 alone serves
            for _ in range(3):
                st, h, _ = request(self.gw.port, "POST", "/v1/chat/completions",
                                   dict(CHAT, model="gem-q"))
                self.assertEqual((st, h.get("x-llmgate-key")), (200, "gq-2"))
        finally:
            self.mock.reset()

    # ---- across formats ------------------------------------------------------------------

    def test_fallback_chain_openai_anthropic_gemini(self):
        self.mock.script(key="sk-oa-f1", status=503, count=1)
        self.mock.script(key="sk-an-f1", status=529, count=1)
        st, h, data = request(self.gw.port, "POST", "/v1/chat/completions",
                              dict(CHAT, model="chain"), {"x-request-id": "xg-chain"})
        self.assertEqual(st, 200, data)
        self.assertEqual(h.get("x-llmgate-provider"), "gm-f")
        self.assertEqual(h.get("x-llmgate-attempts"), "3")
        j = json.loads(data)
        self.assertEqual(j["choices"][0]["message"]["content"], TEXT)
        path, hdrs, _ = self.last_sent()
        self.assertEqual(path, "/v1beta/models/gemini-2.5-flash-lite:generateContent")
        self.assert_gemini_key(hdrs, "sk-gm-f1")
        line = self.line("xg-chain")
        self.assertEqual(line["provider"], "gm-f")
        self.assertEqual(line["completion_tokens"], 5)

    # ---- the openai npm SDK --------------------------------------------------------------

    def test_openai_sdk_on_gemini(self):
        node = shutil.which("node")
        if not node or not os.path.isdir(os.path.join(SDK_DIR, "node_modules", "openai")):
            self.skipTest("node and the SDKs (npm ci in tests/integration/sdk) are needed")
        p = subprocess.run([node, "sdk_gemini.mjs", self.gw.url() + "/v1", "gem"], cwd=SDK_DIR,
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        out = json.loads(p.stdout)
        self.assertEqual(out["plain"]["content"], TEXT, out)
        self.assertEqual(out["plain"]["model"], "gem")
        self.assertTrue(out["stream"]["text"].startswith(TEXT), out)
        self.assertGreater(out["stream"]["usage"]["completion_tokens"], 0)
        self.assertEqual(out["tools"]["name"], "get_weather")
        self.assertEqual(out["tools"]["arguments"], WEATHER)
        self.assertEqual(out["tools_stream"]["name"], "get_weather")
        self.assertEqual(out["tools_stream"]["arguments"], WEATHER)
        self.assertEqual(out["final"]["content"], TEXT)


if __name__ == "__main__":
    unittest.main(verbosity=2)
