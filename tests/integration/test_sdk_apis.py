"""The real client SDKs from npm against llmgate and the mock upstream, on the Responses API
and Anthropic Messages: the openai SDK's client.responses (plain, streamed, previous_response_id
on a pool of keys, retrieve, delete), the Vercel AI SDK with @ai-sdk/openai's default
(Responses) provider, and @anthropic-ai/sdk (create, stream, countTokens, RateLimitError when
every key cools down, AuthenticationError for a wrong client key). Each node script prints one
JSON object (tests/integration/sdk/sdk_*.mjs); the assertions are here."""

import json
import os
import shutil
import subprocess
import unittest

from harness import Mock, Gateway

SDK_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sdk")
NODE_TIMEOUT = 60  # seconds, each node process
TEXT = "Hello from the mock upstream."
# Streamed, the mock sends 8 words by default (one event each), the text repeated as needed.
STREAM_TEXT = "Hello from the mock upstream. Hello from the"
STREAM_WORDS = 8
APP_KEY = "sk-client-sdk-app-0123456789"
OTHER_KEY = "sk-client-sdk-other-9876543210"
OA_KEYS = [("oa-1", "sk-oa-1"), ("oa-2", "sk-oa-2"), ("oa-3", "sk-oa-3")]
AN_KEYS = [("an-1", "sk-an-1"), ("an-2", "sk-an-2")]
COOL_KEYS = [("cool-1", "sk-cool-1"), ("cool-2", "sk-cool-2"), ("cool-3", "sk-cool-3")]
PACKAGES = ("openai", "ai", "@ai-sdk/openai", "@anthropic-ai/sdk")


class SdkApisTest(unittest.TestCase):
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
        try:
            cls.gw = Gateway(
                [{"name": "oa", "url": cls.mock.url(), "keys": [(n, s, None) for n, s in OA_KEYS]},
                 {"name": "an", "url": cls.mock.url(), "keys": [(n, s, None) for n, s in AN_KEYS]},
                 {"name": "cool", "url": cls.mock.url(),
                  "keys": [(n, s, None) for n, s in COOL_KEYS]}],
                [{"name": "gpt", "deployments": [("oa", "gpt-4o")]},
                 {"name": "claude", "deployments": [("an", "claude-sonnet-4-5")]},
                 {"name": "claude-cool", "deployments": [("cool", "claude-haiku-4-5")]}],
                clients=True, start=False,
                # no active probes: the cooling test counts each key's upstream requests
                policy={"probe_interval_ms": 0},
                extra_yaml=("client_keys:\n"
                            "  - {name: app, secret_env: LLMGATE_TEST_CLIENT_APP}\n"
                            "  - {name: other, secret_env: LLMGATE_TEST_CLIENT_OTHER}\n"),
                env={"LLMGATE_TEST_CLIENT_APP": APP_KEY, "LLMGATE_TEST_CLIENT_OTHER": OTHER_KEY})
            # Both Anthropic providers speak Anthropic's native API (x-api-key upstream).
            text = cls.gw.config_text
            for name in ("an", "cool"):
                line = f"  - name: {name}\n"
                assert text.count(line) == 1, text
                text = text.replace(line, line + "    api: anthropic\n")
            with open(cls.gw.config, "w") as f:
                f.write(text)
            cls.gw.start()
        except BaseException:
            cls.mock.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.gw.stop()
            cls.gw.cleanup()
        finally:
            cls.mock.stop()

    def node_json(self, script, scenario, base, model, key=APP_KEY, env=None):
        e = dict(os.environ, LLMGATE_CLIENT_KEY=key)
        e.update(env or {})
        p = subprocess.run([self.node, script, scenario, base, model], cwd=SDK_DIR, env=e,
                           capture_output=True, text=True, timeout=NODE_TIMEOUT)
        self.assertEqual(p.returncode, 0, f"{script} {scenario}: {p.stderr}")
        try:
            return json.loads(p.stdout)
        except ValueError:
            self.fail(f"{script} {scenario} printed no JSON: {p.stdout!r} {p.stderr!r}")

    def ok(self, r, what):
        self.assertTrue(r["ok"], f"{what}: {json.dumps(r.get('err'))}")
        return r["value"]

    def failed(self, r, what):
        self.assertFalse(r["ok"], f"{what}: expected an error, got {json.dumps(r.get('value'))}")
        return r["err"]

    def assert_usage(self, u, what):
        self.assertGreater(u["input_tokens"], 0, f"{what}: {u}")
        self.assertGreater(u["output_tokens"], 0, f"{what}: {u}")

    # ---- the openai SDK: client.responses -------------------------------------------------

    def responses(self, scenario, **kw):
        return self.node_json("sdk_responses.mjs", scenario, self.gw.url() + "/v1", "gpt", **kw)

    def test_openai_responses_plain_and_stream(self):
        out = self.responses("basic")
        plain = out["plain"]
        self.assertTrue(plain["id"].startswith("resp_"), plain)
        self.assertEqual(plain["status"], "completed")
        self.assertEqual(plain["output_text"], TEXT)
        self.assertEqual(plain["model"], "gpt-4o", "the upstream model name was spliced in")
        self.assert_usage(plain["usage"], "plain usage")
        self.assertEqual(plain["usage"]["total_tokens"],
                         plain["usage"]["input_tokens"] + plain["usage"]["output_tokens"])
        self.assertIn(plain["key"], [n for n, _ in OA_KEYS])

        st = out["stream"]
        types = st["types"]
        self.assertEqual(types[0], "response.created", types)
        self.assertEqual(types[1], "response.in_progress", types)
        self.assertEqual(types[-1], "response.completed", types)
        self.assertEqual(st["sequence_numbers"], list(range(st["events"])),
                         "every event arrived, in order")
        self.assertEqual(st["delta_count"], STREAM_WORDS, types)
        self.assertEqual(st["delta_text"], STREAM_TEXT, "the deltas assemble into the text")
        self.assertEqual(st["final_text"], STREAM_TEXT)
        self.assertEqual(st["created_id"], st["final_id"])
        self.assertEqual(st["final_status"], "completed")
        self.assert_usage(st["usage"], "stream usage")

    def test_openai_previous_response_id_affinity(self):
        out = self.responses("affinity")
        roots = out["roots"]
        self.assertEqual(sorted(r["key"] for r in roots), [n for n, _ in OA_KEYS],
                         "round robin spreads the three responses over the pool")
        # The mock knows a response only under the key that created it: a follow-up sent to
        # another key of the pool would be a 400 previous_response_not_found.
        self.assertEqual(len(out["followups"]), 9)
        for f in out["followups"]:
            v = self.ok(f, f"follow-up of {f['root']} (created with {f['root_key']})")
            self.assertEqual(v["key"], f["root_key"], f)
            self.assertEqual(v["previous_response_id"], f["root"])
            self.assertEqual(v["output_text"], TEXT)
        chain = out["chain"]
        self.assertEqual(len(chain), 4, chain)
        for prev, turn in zip(chain, chain[1:]):
            self.assertNotIn("error", turn, turn)
            self.assertEqual(turn["previous_response_id"], prev["id"])
            self.assertEqual(turn["key"], roots[0]["key"], "a conversation stays on its key")
        sf = self.ok(out["streamed_followup"], "streamed follow-up")
        self.assertEqual(sf["key"], roots[1]["key"])
        self.assertEqual(sf["final_previous_response_id"], roots[1]["id"])
        self.assertEqual(sf["delta_text"], STREAM_TEXT)
        # A response created by a stream is remembered from its response.created event.
        sr = out["streamed_root"]
        self.assertTrue(sr["final_id"] and sr["final_id"] == sr["created_id"], sr)
        for a in out["after_streamed"]:
            v = self.ok(a, f"follow-up of the streamed response {sr['final_id']}")
            self.assertEqual(v["key"], sr["key"])
        for root, r in zip(roots, out["retrieved"]):
            v = self.ok(r, f"retrieve {root['id']}")
            self.assertEqual(v["id"], root["id"])
            self.assertEqual(v["text"], TEXT)
            self.assertEqual(v["key"], root["key"])
        d = self.ok(out["deleted"], f"delete {roots[2]['id']}")
        self.assertEqual(d["status"], 200)
        self.assertEqual(d["key"], roots[2]["key"])
        gone = self.failed(out["after_delete"], "retrieve after delete")
        self.assertEqual(gone["status"], 404, gone)
        self.assertTrue(gone["isNotFound"], gone)

    def test_openai_response_of_another_client_key_is_unknown(self):
        out = self.responses("foreign", env={"LLMGATE_OTHER_KEY": OTHER_KEY})
        mine = out["mine"]
        e = self.failed(out["other_followup"], "another client key names my response")
        self.assertEqual(e["status"], 400, e)
        self.assertTrue(e["isBadRequest"], e)
        body = json.dumps(e["error"])
        self.assertIn("previous_response_not_found", body)
        self.assertNotIn(APP_KEY, body)
        self.assertNotIn(OTHER_KEY, body)
        e = self.failed(out["other_retrieve"], "another client key retrieves my response")
        self.assertEqual(e["status"], 404, e)
        v = self.ok(out["own_followup"], "my own follow-up")
        self.assertEqual(v["key"], mine["key"])

    def test_openai_input_items_order_limit_paging(self):
        out = self.responses("items")
        # The mock answers ?order=asc&limit=2 with the first two items, oldest first, and
        # has_more; without the query (desc, 20) it would be all three, newest first.
        self.assertEqual(out["first_page"], ["one", "two"], out)
        self.assertTrue(out["first_page_has_more"], out)
        self.assertEqual(out["all"], ["one", "two", "three"], out)
        self.assertEqual(out["pages"], 2, out)

    # ---- the Vercel AI SDK, @ai-sdk/openai's default provider (Responses API) --------------

    def vercel(self, scenario):
        return self.node_json("sdk_vercel.mjs", scenario, self.gw.url() + "/v1", "gpt")

    def test_vercel_generate_text(self):
        out = self.vercel("generate")
        first = out["first"]
        self.assertEqual(first["text"], TEXT)
        self.assertGreater(first["usage"]["inputTokens"], 0, first)
        self.assertGreater(first["usage"]["outputTokens"], 0, first)
        self.assertEqual(first["finish_reason"], "stop")
        self.assertTrue((first["response_id"] or "").startswith("resp_"), first)
        f = self.ok(out["followup"], "generateText with previousResponseId")
        self.assertEqual(f["text"], TEXT)
        self.assertEqual(f["key"], first["key"], "the follow-up went to the creating key")

    def test_vercel_stream_text(self):
        out = self.vercel("stream")
        self.assertEqual(out["errors"], [])
        self.assertEqual(out["parts"], STREAM_WORDS, out)
        self.assertEqual(out["text"], STREAM_TEXT)
        self.assertEqual(out["final_text"], STREAM_TEXT)
        self.assertGreater(out["usage"]["inputTokens"], 0, out)
        self.assertGreater(out["usage"]["outputTokens"], 0, out)
        self.assertEqual(out["finish_reason"], "stop")
        self.assertTrue((out["response_id"] or "").startswith("resp_"), out)

    # ---- @anthropic-ai/sdk: Messages ------------------------------------------------------

    def anthropic(self, scenario, model="claude", **kw):
        return self.node_json("sdk_anthropic.mjs", scenario, self.gw.url(), model, **kw)

    def test_anthropic_create_stream_count(self):
        out = self.anthropic("basic")
        c = out["create"]
        self.assertEqual((c["type"], c["role"]), ("message", "assistant"))
        self.assertEqual(c["text"], TEXT)
        self.assertEqual(c["model"], "claude-sonnet-4-5")
        self.assertEqual(c["stop_reason"], "end_turn")
        self.assert_usage(c["usage"], "create usage")
        self.assertIn(c["key"], [n for n, _ in AN_KEYS])
        s = out["stream"]
        self.assertEqual(s["text_events"], STREAM_WORDS, s)
        self.assertEqual(s["text"], STREAM_TEXT)
        self.assertEqual(s["final_text"], STREAM_TEXT)
        self.assertEqual(s["final_stop_reason"], "end_turn")
        self.assertEqual(s["event_types"][0], "message_start", s)
        self.assertEqual(s["event_types"][-1], "message_stop", s)
        self.assert_usage(s["usage"], "finalMessage usage")
        self.assertGreater(out["count"]["input_tokens"], 0, out["count"])
        # The last request (countTokens) went upstream with the provider's key, not the client's.
        last = self.mock.last()
        hdrs = {n.lower(): v for n, v in last["headers"]}
        self.assertEqual(last["path"], "/v1/messages/count_tokens")
        self.assertIn(hdrs.get("x-api-key"), [secret for _, secret in AN_KEYS])
        self.assertNotIn(APP_KEY, json.dumps(last))

    def test_anthropic_beta_messages(self):
        out = self.anthropic("beta")
        self.assertEqual(out["create"]["type"], "message")
        self.assertEqual(out["create"]["text"], TEXT)
        self.assert_usage(out["create"]["usage"], "beta create usage")
        self.assertGreater(out["count"]["input_tokens"], 0, out["count"])
        last = self.mock.last()
        self.assertTrue(last["path"].startswith("/v1/messages/count_tokens"), last["path"])
        hdrs = {n.lower(): v for n, v in last["headers"]}
        self.assertIn("token-counting-2024-11-01", hdrs.get("anthropic-beta", ""),
                      "the client's anthropic-beta header goes upstream")

    def test_anthropic_every_key_cooling_is_rate_limit_error(self):
        for _, secret in COOL_KEYS:
            self.mock.script(key=secret, status=429, retry_after=30)
        before = self.mock.stats()["by_key"]
        out = self.anthropic("cooling", model="claude-cool")
        after = self.mock.stats()["by_key"]
        for what in ("first", "second", "streamed"):
            e = self.failed(out[what], what)
            self.assertEqual(e["status"], 429, f"{what}: {e}")
            self.assertTrue(e["isRateLimit"], f"{what}: {e['class']} is not RateLimitError")
            ra = (e["headers"] or {}).get("retry-after")
            self.assertIsNotNone(ra, f"{what}: no retry-after in {e['headers']}")
            self.assertGreater(int(ra), 0, f"{what}: retry-after {ra}")
            self.assertLessEqual(int(ra), 30, f"{what}: retry-after {ra}")
            self.assertEqual(e["error"]["type"], "error", f"{what}: {e['error']}")
            self.assertEqual(e["error"]["error"]["type"], "rate_limit_error", f"{what}: {e}")
            for _, secret in COOL_KEYS:
                self.assertNotIn(secret, json.dumps(e))
        # The first request tried each key once; then every key cooled down and the gateway
        # answered itself, without going upstream.
        for _, secret in COOL_KEYS:
            self.assertEqual(after.get(secret, 0) - before.get(secret, 0), 1,
                             f"{secret}: {before} -> {after}")

    def test_anthropic_client_key_auth(self):
        out = self.anthropic("auth")
        good = self.ok(out["good"], "the client key as x-api-key")
        self.assertEqual(good["text"], TEXT)
        for what in ("wrong", "wrong_stream", "wrong_count"):
            e = self.failed(out[what], what)
            self.assertEqual(e["status"], 401, f"{what}: {e}")
            self.assertTrue(e["isAuthentication"], f"{what}: {e['class']}")
            self.assertEqual(e["error"]["type"], "error", f"{what}: {e['error']}")
            self.assertEqual(e["error"]["error"]["type"], "authentication_error", e)
            self.assertTrue(e["error"]["error"]["message"], e)
            self.assertNotIn("sk-not-a-client-key", json.dumps(e))


if __name__ == "__main__":
    unittest.main(verbosity=2)
