"""Format translation end to end with real clients: the openai SDK on a model served by an
api: anthropic provider (tools plain and streamed, the SDK's stream helper, runTools), the
@anthropic-ai/sdk on one served by an OpenAI-compatible provider (tool_use blocks, inputJson
events, finalMessage), the Vercel ai SDK's chat-completions model and LangChain's ChatOpenAI on
the Anthropic-served model, and the openai SDK on a model that falls back from an
OpenAI-compatible deployment to an Anthropic one; errors, plain and mid-stream, as each SDK's
own error classes. Each node process (sdk/sdk_translate.mjs) prints one JSON object; the
assertions are here."""

import json
import os
import shutil
import subprocess
import tempfile
import unittest

from harness import Mock, Gateway, wait_until

SDK_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sdk")
NODE_TIMEOUT = 60  # seconds, each node process
PACKAGES = ("openai", "@anthropic-ai/sdk", "ai", "@ai-sdk/openai", "zod", "@langchain/openai",
            "@langchain/core")
TEXT = "Hello from the mock upstream."
# Streamed, the mock sends 8 words (one event each), the text repeated as needed.
STREAM_TEXT = "Hello from the mock upstream. Hello from the"
STREAM_WORDS = 8
WEATHER = {"city": "Paris", "unit": "celsius"}
# The mock's streamed arguments: 4 pieces that cut keys and values apart.
PIECES = ['{"city":', '"Paris",', '"unit":"', 'celsius"}']
TOOL_OUTPUT_TOKENS = 10  # the mock: 10 output tokens per call, no text


class TranslateSdkTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.node = shutil.which("node")
        if cls.node is None:
            raise AssertionError("node is installed by ./dev.sh test")
        for p in PACKAGES:
            if not os.path.isdir(os.path.join(SDK_DIR, "node_modules", p)):
                raise AssertionError(f"{p} is missing: run `npm ci` in tests/integration/sdk "
                                     "(./dev.sh test does)")
        cls.mock = Mock()
        cls.tmp = tempfile.mkdtemp(prefix="llmgate-xlate-sdk-")
        cls.log = os.path.join(cls.tmp, "access.log")
        try:
            cls.gw = Gateway(
                [{"name": "an", "api": "anthropic", "url": cls.mock.url(),
                  "keys": [("an-1", "sk-an-1", None)]},
                 {"name": "oa", "url": cls.mock.url(), "keys": [("oa-1", "sk-oa-1", None)]},
                 {"name": "oa2", "url": cls.mock.url(), "keys": [("oa2-1", "sk-oa2-1", None)]},
                 {"name": "oa3", "url": cls.mock.url(), "keys": [("oa3-1", "sk-oa3-1", None)]},
                 # the error tests' own keys: what their failures do to a key stays there
                 {"name": "an-err", "api": "anthropic", "url": cls.mock.url(),
                  "keys": [("an-err-1", "sk-an-err-1", None)]},
                 {"name": "oa-err", "url": cls.mock.url(),
                  "keys": [("oa-err-1", "sk-oa-err-1", None)]}],
                [{"name": "claude", "deployments": [("an", "claude-sonnet-4-5")]},
                 {"name": "gpt", "deployments": [("oa", "deepseek-chat")]},
                 {"name": "claude-err", "deployments": [("an-err", "claude-sonnet-4-5")]},
                 {"name": "gpt-err", "deployments": [("oa-err", "deepseek-chat")]},
                 # tier 1 OpenAI-compatible, tier 2 Anthropic: fallbacks across formats, one
                 # model for the plain request and one for the stream (the first 429 cools
                 # its key, so a second request on the same model would not cross)
                 {"name": "cross", "deployments": [("oa2", "deepseek-chat", 1, 1),
                                                   ("an", "claude-haiku-4-5", 1, 2)]},
                 {"name": "cross-stream", "deployments": [("oa3", "deepseek-chat", 1, 1),
                                                          ("an", "claude-haiku-4-5", 1, 2)]}],
                policy={"probe_interval_ms": 0},
                extra_yaml=(f'access_log: {{path: "{cls.log}"}}\n'
                            'translation: {default_max_tokens: 777}\n'))
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

    def setUp(self):
        self.mock.reset()  # no script, counter or last request of another test

    def run_node(self, scenario, base, *models, rid=None):
        env = dict(os.environ)
        if rid:
            env["LLMGATE_RID"] = rid
        p = subprocess.run([self.node, "sdk_translate.mjs", scenario, base, *models],
                           cwd=SDK_DIR, env=env, capture_output=True, text=True,
                           timeout=NODE_TIMEOUT)
        self.assertEqual(p.returncode, 0, f"sdk_translate.mjs {scenario}: {p.stderr}")
        try:
            return json.loads(p.stdout)
        except ValueError:
            self.fail(f"sdk_translate.mjs {scenario} printed no JSON: {p.stdout!r} {p.stderr!r}")

    def ok(self, r, what):
        self.assertTrue(r["ok"], f"{what}: {json.dumps(r.get('err'))}")
        return r["value"]

    def line(self, rid):
        """The access-log line of request rid."""
        def find():
            try:
                with open(self.log) as f:
                    return [json.loads(l) for l in f if f'"{rid}"' in l]
            except FileNotFoundError:
                return []
        return wait_until(find, 10, what=f"the access log line of {rid}")[0]

    def last_sent(self):
        last = self.mock.last()
        return last["path"], json.loads(last["body"])

    def assert_weather_call(self, calls, what, id_key="id", args_key="args"):
        self.assertEqual(len(calls), 1, f"{what}: {calls}")
        self.assertEqual(calls[0]["name"], "get_weather", what)
        self.assertTrue(calls[0][id_key], f"{what}: a call has an id")
        self.assertEqual(calls[0][args_key], WEATHER, what)

    # ---- the openai SDK on an Anthropic provider ------------------------------------------

    def test_openai_sdk_tools_on_anthropic(self):
        out = self.run_node("openai_tools", self.gw.url() + "/v1", "claude", rid="xs-oa-tools")
        p = out["plain"]
        self.assertEqual((p["object"], p["model"]), ("chat.completion", "claude"))
        self.assertEqual(p["finish_reason"], "tool_calls")
        self.assertIsNone(p["content"])
        self.assert_weather_call(p["tool_calls"], "plain")
        self.assertEqual(p["tool_calls"][0]["type"], "function")
        self.assertEqual(p["usage"]["completion_tokens"], TOOL_OUTPUT_TOKENS)
        line = self.line("xs-oa-tools-plain")
        self.assertEqual((line["api"], line["provider"]), ("chat", "an"))
        self.assertEqual(line["prompt_tokens"], p["usage"]["prompt_tokens"])
        self.assertEqual(line["completion_tokens"], p["usage"]["completion_tokens"])

        f = self.ok(out["followup"], "the turn with the tool result")
        self.assertEqual(f["status"], 200)
        self.assertEqual(f["content"], TEXT)
        self.assertEqual(f["finish_reason"], "stop")
        self.assertEqual(f["tool_calls"], [])

        # the stream helper assembled the translated deltas into the same call
        h = out["helper"]
        self.assertEqual(h["final"]["finish_reason"], "tool_calls")
        self.assert_weather_call(h["final"]["tool_calls"], "finalChatCompletion")
        self.assertEqual([d for d in h["arg_deltas"] if d], PIECES,
                         "the argument pieces arrive one delta each, in order")
        self.assertEqual(h["args_done"], [{"name": "get_weather", "index": 0, "args": WEATHER}])
        self.assertEqual(h["final"]["usage"]["completion_tokens"], TOOL_OUTPUT_TOKENS,
                         "include_usage: the usage chunk")
        line = self.line("xs-oa-tools-helper")
        self.assertFalse(line["tokens_estimated"])
        self.assertEqual(line["prompt_tokens"], h["final"]["usage"]["prompt_tokens"])
        self.assertEqual(line["completion_tokens"], h["final"]["usage"]["completion_tokens"])

        s = out["streamed"]
        self.assertEqual(s["role"], "assistant")
        self.assertEqual(s["finish_reason"], "tool_calls")
        self.assertEqual([c["index"] for c in s["tool_calls"]], [0])
        self.assert_weather_call(s["tool_calls"], "raw stream")
        # text, then 3 calls: one text block and 3 tool_use blocks upstream, one message and
        # 3 indexed calls for the SDK
        for what in ("plain", "stream"):
            m = out["parallel"][what]
            self.assertEqual(m["finish_reason"], "tool_calls", what)
            self.assertEqual(m["content"], TEXT if what == "plain" else STREAM_TEXT, what)
            self.assertEqual([c["args"]["city"] for c in m["tool_calls"]],
                             ["Paris", "Rome", "Berlin"], what)
            self.assertEqual(len({c["id"] for c in m["tool_calls"]}), 3, what)
        # the last request went upstream as Anthropic Messages
        path, sent = self.last_sent()
        self.assertEqual(path, "/v1/messages")
        self.assertEqual(sent["tool_choice"], {"type": "tool", "name": "get_weather"})
        self.assertEqual(sent["tools"][0]["input_schema"]["required"], ["city", "unit"])

    def test_openai_sdk_errors_from_anthropic(self):
        out = self.run_node("openai_errors", self.gw.url() + "/v1", "claude-err")
        for what in ("plain", "stream"):
            r = out[what]
            self.assertFalse(r["ok"], f"{what}: {r}")
            e = r["err"]
            self.assertEqual(e["status"], 400, f"{what}: {e}")
            self.assertTrue(e["isBadRequest"], f"{what}: {e['class']}")
            self.assertEqual(e["error"]["message"], "bad thing", f"{what}: OpenAI's shape")
            self.assertEqual(e["error"]["type"], "invalid_request_error", what)
        # Anthropic's error event mid-stream: the SDK throws its APIError with the error
        m = out["mid_stream"]
        self.assertEqual(m["text_before"], STREAM_TEXT, "the text before the error arrived")
        self.assertFalse(m["ok"], m)
        self.assertTrue(m["err"]["isAPI"], m)
        self.assertEqual(m["err"]["error"]["code"], "overloaded_error", m)

    def test_openai_sdk_run_tools_on_anthropic(self):
        # each runner loop: the first request answers a call (tool_choice is "auto", so the
        # script asks for it), the second - with the tool's result - text
        for _ in range(2):
            self.mock.script(key="sk-an-1", tool_call="get_weather", count=1)
            self.mock.script(key="sk-an-1", count=1)
        out = self.run_node("openai_run_tools", self.gw.url() + "/v1", "claude")
        self.assertEqual(out["tool_args"], [WEATHER, WEATHER],
                         "runTools parsed the arguments and called the tool, plain and streamed")
        p = out["plain"]
        self.assertEqual(p["content"], TEXT)
        self.assertEqual(p["final_finish_reason"], "stop")
        self.assertEqual(p["roles"], ["user", "assistant", "tool", "assistant"])
        self.assertEqual(p["completions"], 2)
        s = out["streamed"]
        self.assertEqual(s["content"], STREAM_TEXT)
        self.assertEqual(s["deltas"], STREAM_WORDS)
        self.assertEqual(s["final_finish_reason"], "stop")
        self.assertEqual(s["roles"], ["user", "assistant", "tool", "assistant"])
        self.assertEqual(self.mock.stats()["by_key"].get("sk-an-1"), 4)
        # the last request carried the call and its result as Anthropic blocks
        path, sent = self.last_sent()
        self.assertEqual(path, "/v1/messages")
        self.assertEqual([m["role"] for m in sent["messages"]], ["user", "assistant", "user"])
        use = sent["messages"][1]["content"][-1]
        self.assertEqual((use["type"], use["name"], use["input"]),
                         ("tool_use", "get_weather", WEATHER))
        res = sent["messages"][2]["content"][0]
        self.assertEqual((res["type"], res["tool_use_id"]), ("tool_result", use["id"]))
        self.assertEqual(json.loads(res["content"]), {"temperature": 18, "unit": "celsius"})

    # ---- @anthropic-ai/sdk on an OpenAI-compatible provider --------------------------------

    def test_anthropic_sdk_tools_on_openai(self):
        out = self.run_node("anthropic_tools", self.gw.url(), "gpt", rid="xs-an-tools")
        c = out["create"]
        self.assertEqual((c["type"], c["role"], c["model"]), ("message", "assistant", "gpt"))
        self.assertEqual(c["stop_reason"], "tool_use")
        self.assertEqual(c["blocks"], ["tool_use"])
        self.assert_weather_call(c["tool_uses"], "create", args_key="input")
        self.assertEqual(c["usage"]["output_tokens"], TOOL_OUTPUT_TOKENS)
        line = self.line("xs-an-tools-create")
        self.assertEqual((line["api"], line["provider"]), ("messages", "oa"))
        self.assertEqual(line["prompt_tokens"], c["usage"]["input_tokens"])
        self.assertEqual(line["completion_tokens"], c["usage"]["output_tokens"])

        f = self.ok(out["followup"], "the turn with the tool_result")
        self.assertEqual(f["status"], 200)
        self.assertEqual(f["text"], TEXT)
        self.assertEqual(f["stop_reason"], "end_turn")

        s = out["stream"]
        self.assertEqual(s["final"]["stop_reason"], "tool_use")
        self.assert_weather_call(s["final"]["tool_uses"], "finalMessage", args_key="input")
        self.assertEqual(s["partials"], PIECES, "one inputJson event per argument piece")
        self.assertEqual(s["partial_json_parsed"], WEATHER)
        self.assertEqual(s["snapshot"], WEATHER, "the SDK's own partial-JSON parse")
        types = s["event_types"]
        self.assertEqual(types[0], "message_start", types)
        self.assertEqual(types[-2:], ["message_delta", "message_stop"], types)
        self.assertEqual(types.count("content_block_start"), 1, types)
        self.assertEqual(types.count("content_block_stop"), 1, types)
        self.assertEqual(s["final"]["usage"]["output_tokens"], TOOL_OUTPUT_TOKENS)
        line = self.line("xs-an-tools-stream")
        self.assertFalse(line["tokens_estimated"])
        self.assertEqual(line["completion_tokens"], s["final"]["usage"]["output_tokens"])
        p = out["parallel"]
        self.assertEqual(p["block_starts"], [[0, "text"], [1, "tool_use"], [2, "tool_use"],
                                             [3, "tool_use"]])
        for what in ("plain", "stream"):
            m = p[what]
            self.assertEqual(m["stop_reason"], "tool_use", what)
            self.assertEqual(m["blocks"], ["text", "tool_use", "tool_use", "tool_use"], what)
            self.assertEqual(m["text"], TEXT if what == "plain" else STREAM_TEXT, what)
            self.assertEqual([u["input"]["city"] for u in m["tool_uses"]],
                             ["Paris", "Rome", "Berlin"], what)
            self.assertEqual(len({u["id"] for u in m["tool_uses"]}), 3, what)
        path, sent = self.last_sent()
        self.assertEqual(path, "/v1/chat/completions")
        self.assertEqual(sent["tool_choice"],
                         {"type": "function", "function": {"name": "get_weather"}})

    def test_anthropic_sdk_errors_from_openai(self):
        out = self.run_node("anthropic_errors", self.gw.url(), "gpt-err")
        for what in ("plain", "stream"):
            r = out[what]
            self.assertFalse(r["ok"], f"{what}: {r}")
            e = r["err"]
            self.assertEqual(e["status"], 400, f"{what}: {e}")
            self.assertTrue(e["isBadRequest"], f"{what}: {e['class']}")
            self.assertEqual(e["error"], {"type": "error", "error": {
                "type": "invalid_request_error", "message": "bad thing"}}, what)

    # ---- the Vercel ai SDK, @ai-sdk/openai's chat-completions model -------------------------

    def test_vercel_chat_on_anthropic(self):
        out = self.run_node("vercel_chat", self.gw.url() + "/v1", "claude")
        self.assertEqual(out["errors"], [])
        g = out["generate"]
        self.assertEqual(g["text"], TEXT)
        self.assertEqual(g["finish_reason"], "stop")
        self.assertGreater(g["usage"]["inputTokens"], 0, g)
        self.assertEqual(g["usage"]["outputTokens"], 5, g)
        s = out["stream"]
        self.assertEqual(s["parts"], STREAM_WORDS, s)
        self.assertEqual(s["text"], STREAM_TEXT)
        self.assertEqual(s["final_text"], STREAM_TEXT)
        self.assertEqual(s["finish_reason"], "stop")
        self.assertGreater(s["usage"]["inputTokens"], 0, s)
        self.assertEqual(s["usage"]["outputTokens"], STREAM_WORDS, s)
        gt = out["generate_tool"]
        self.assertEqual(gt["finish_reason"], "tool-calls")
        self.assert_weather_call(gt["tool_calls"], "generateText", args_key="input")
        st = out["stream_tool"]
        self.assertEqual(st["finish_reason"], "tool-calls")
        self.assert_weather_call(st["tool_calls"], "streamText", args_key="input")
        self.assertEqual(st["input_deltas"], PIECES)
        self.assertEqual(st["usage"]["outputTokens"], TOOL_OUTPUT_TOKENS, st)
        path, sent = self.last_sent()
        self.assertEqual(path, "/v1/messages", "chat completions, translated")
        self.assertEqual(sent["tool_choice"], {"type": "tool", "name": "get_weather"})

    # ---- LangChain's ChatOpenAI -----------------------------------------------------------

    def test_langchain_chat_openai_on_anthropic(self):
        out = self.run_node("langchain", self.gw.url() + "/v1", "claude")
        i = out["invoke"]
        self.assertEqual(i["content"], TEXT)
        self.assertEqual(i["finish_reason"], "stop")
        self.assertEqual(i["tool_calls"], [])
        self.assertGreater(i["usage"]["input_tokens"], 0, i)
        self.assertEqual(i["usage"]["output_tokens"], 5, i)
        s = out["stream"]
        self.assertEqual(s["content"], STREAM_TEXT)
        self.assertGreaterEqual(s["chunks"], STREAM_WORDS, s)
        self.assertEqual(s["finish_reason"], "stop")
        self.assertEqual(s["usage"]["output_tokens"], STREAM_WORDS, "streamUsage: the usage chunk")
        for what in ("tools_invoke", "tools_stream"):
            t = out[what]
            self.assertEqual(t["invalid_tool_calls"], [], what)
            self.assert_weather_call(t["tool_calls"], what)
            self.assertEqual(t["finish_reason"], "tool_calls", what)
            self.assertEqual(t["usage"]["output_tokens"], TOOL_OUTPUT_TOKENS, what)
        path, sent = self.last_sent()
        self.assertEqual(path, "/v1/messages")
        self.assertEqual(sent["tool_choice"], {"type": "tool", "name": "get_weather"})
        self.assertTrue(sent["stream"])

    # ---- across formats -------------------------------------------------------------------

    def test_openai_sdk_fallback_across_formats(self):
        # each model's OpenAI-compatible tier answers 429 once: the Anthropic tier serves
        self.mock.script(key="sk-oa2-1", status=429, count=1)
        self.mock.script(key="sk-oa3-1", status=429, count=1)
        out = self.run_node("openai_fallback", self.gw.url() + "/v1", "cross", "cross-stream")
        p = out["plain"]
        self.assertEqual((p["provider"], p["attempts"]), ("an", "2"))
        self.assertEqual((p["object"], p["model"]), ("chat.completion", "cross"))
        self.assertEqual(p["content"], TEXT)
        self.assertEqual(p["finish_reason"], "stop")
        self.assertGreater(p["usage"]["prompt_tokens"], 0)
        s = out["stream"]
        self.assertEqual((s["provider"], s["attempts"]), ("an", "2"))
        self.assertTrue((s["content_type"] or "").startswith("text/event-stream"), s)
        self.assertEqual(s["text"], STREAM_TEXT)
        self.assertEqual(s["finish_reason"], "stop")
        self.assertEqual(s["usage"]["completion_tokens"], STREAM_WORDS)
        by_key = self.mock.stats()["by_key"]
        self.assertEqual((by_key.get("sk-oa2-1"), by_key.get("sk-oa3-1"), by_key.get("sk-an-1")),
                         (1, 1, 2), by_key)
        path, sent = self.last_sent()
        self.assertEqual((path, sent["model"]), ("/v1/messages", "claude-haiku-4-5"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
