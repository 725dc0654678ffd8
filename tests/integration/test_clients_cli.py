"""llmgatectl's client commands (issue 19) against a running llmgate whose configuration has
no client keys and does not allow anonymous use, so that it serves only the store's clients:

- `client add` prints a key (lgk-...) once, and that key authenticates a real request through
  the gateway at once (also with --json, where it is the "key" field);
- `clients` and `client NAME` (text and --json) show the client with its limits and the usage
  of the requests sent, and never the key;
- `client set --rpm 2` is obeyed at the next request (the third is answered 429), and
  `--rpm 0` lifts the limit again;
- `client rotate` prints a new key; the old one works within the grace, and after a
  `--grace 0` rotation the key it replaced is refused (401);
- `client revoke`: 401 whose body says revoked and holds no key; a second revoke is an error;
- an expired key is refused and shown as expired;
- `client add` of a name of a configuration's client_keys is refused naming the file, an
  unknown --models name is refused listing the models; usage errors and a missing client
  have the documented exit codes;
- no generated key appears in any other output of llmgatectl, in the gateway's output or in
  its store (every key is registered in Gateway.secrets, which cleanup() checks).

Binaries: LLMGATE_BIN, MOCK_BIN, LLMGATECTL_BIN."""

import json
import os
import re
import subprocess
import unittest

from harness import Gateway, Mock, post_json, wait_until

LLMGATECTL_BIN = os.environ.get("LLMGATECTL_BIN", "build/cli/llmgatectl")
KEY_RE = re.compile(r"lgk-[A-Za-z0-9_-]{43}")


def ctl_env():
    """The operator's shell: no secret variables, no store variables, no colour."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LLMGATE_TEST_SECRET_", "LLMGATE_TEST_CLIENT_"))
           and k not in ("LLMGATE_STATE_DIR", "LLMGATE_CONFIG")}
    env["NO_COLOR"] = "1"
    return env


def parse_table(text):
    """{first cell: {header: cell}}; cells are separated by two or more spaces."""
    lines = [l for l in text.splitlines() if l.strip()]
    head = re.split(r"\s{2,}", lines[0].strip())
    rows = {}
    for l in lines[1:]:
        cells = re.split(r"\s{2,}", l.strip())
        assert len(cells) == len(head), f"row {l!r} does not fit header {head}"
        rows[cells[0]] = dict(zip(head, cells))
    return rows


class ClientsCliTest(unittest.TestCase):
    def setUp(self):
        self.mock = Mock()
        self.addCleanup(self.mock.stop)
        prov = {"name": "mock", "url": self.mock.url(),
                "keys": [("up1", "sk-clients-cli-upstream", None)]}
        gw = Gateway([prov], [{"name": "m", "aliases": ["mini"],
                               "deployments": [("mock", "gpt-x")]},
                              {"name": "other", "deployments": [("mock", "gpt-y")]}],
                     workers=2, start=False)
        # no client_keys and no allow_unauthenticated: only the store's clients are served
        gw.config_text = gw.config_text.replace("allow_unauthenticated: true\n", "")
        with open(gw.config, "w") as f:
            f.write(gw.config_text)
        gw.start()
        self.addCleanup(gw.cleanup)
        self.gw = gw
        self.keys = []  # every key generated, to be found nowhere else

    # -- helpers ----------------------------------------------------------------------------

    def ctl(self, *args, rc=0, config=False):
        """Runs llmgatectl on the gateway's store (--config with config=True, else --state);
        returns the completed process. No key it knows may be in the output."""
        where = ["--config", self.gw.config] if config is True else (
            ["--config", config] if config else ["--state", self.gw.state_dir])
        p = subprocess.run([LLMGATECTL_BIN, *where, *args], capture_output=True, text=True,
                           env=ctl_env(), timeout=30)
        for k in self.keys:
            self.assertNotIn(k, p.stdout + p.stderr, f"a key in the output of {args}")
        if rc is not None:
            self.assertEqual(p.returncode, rc, f"llmgatectl {' '.join(args)}: "
                                               f"{p.stdout}{p.stderr}")
        return p

    def new_key(self, *args, json_out=False):
        """client add / rotate: the one key printed, on stdout only, registered as a secret."""
        p = self.ctl("client", *args, *(["--json"] if json_out else []))
        found = KEY_RE.findall(p.stdout)
        self.assertEqual(len(found), 1, f"one key in the output of client {args}: {p.stdout!r}")
        self.assertNotIn(found[0], p.stderr, "the key never goes to stderr")
        if json_out:
            doc = json.loads(p.stdout)
            self.assertEqual(doc["schema"], 1)
            self.assertEqual(doc["command"], "client_" + args[0])
            self.assertEqual(doc["key"], found[0])
            self.assertEqual(doc["client"]["name"], args[1])
            self.assertNotIn(found[0], json.dumps(doc["client"]))
        else:
            self.assertIn("shown only now", p.stdout)
            self.assertEqual(p.stdout.strip().splitlines()[-1], found[0],
                             "the key alone on the last line")
        key = found[0]
        self.assertEqual(len(key), 47)
        self.keys.append(key)
        self.gw.secrets.append(key)
        return key

    def chat(self, key, model="m"):
        st, _, body = post_json(self.gw.port, "/v1/chat/completions",
                                {"model": model,
                                 "messages": [{"role": "user", "content": "hi"}]},
                                headers={"Authorization": "Bearer " + key})
        text = body.decode(errors="replace")
        for k in self.keys:
            self.assertNotIn(k, text, "no key in a response")
        return st, text

    def clients_json(self):
        doc = json.loads(self.ctl("clients", "--json").stdout)
        self.assertEqual((doc["schema"], doc["command"]), (1, "clients"))
        return {c["name"]: c for c in doc["clients"]}

    # -- tests ------------------------------------------------------------------------------

    def test_add_authenticates_and_shows_usage(self):
        key = self.new_key("add", "acme", "--models", "m,other", "--rpm", "100", "--rpd", "1000",
                           "--tokens-per-day", "100000", "--cost-per-day-usd", "5",
                           "--cost-per-month-usd", "50.5", "--expires", "30d")
        self.assertTrue(key.startswith("lgk-"))
        for _ in range(3):
            st, body = self.chat(key)
            self.assertEqual(st, 200, body)
        st, body = self.chat(key, model="mini")  # an alias of an allowed model
        self.assertEqual(st, 200, body)
        st, body = self.chat("lgk-" + "A" * 43)
        self.assertEqual(st, 401, "an unknown key is refused")
        jkey = self.new_key("add", "json-client", json_out=True)
        st, body = self.chat(jkey)
        self.assertEqual(st, 200, "the key of add --json authenticates too")

        # the budget record counts at admission; tokens land when the outcome is recorded
        c = wait_until(lambda: (lambda c: c if c["prompt_tokens"] > 0 and c["requests"] == 4
                                else None)(self.clients_json()["acme"]),
                       what="acme's usage in clients --json")
        self.assertEqual((c["source"], c["state"]), ("store", "active"))
        self.assertEqual((c["rpm_used"], c["rpm_limit"]), (4, 100))
        self.assertEqual((c["rpd_used"], c["rpd_limit"]), (4, 1000))
        self.assertEqual(c["tokens_day_limit"], 100000)
        self.assertEqual(c["tokens_day_used"], c["prompt_tokens"] + c["completion_tokens"])
        self.assertEqual(c["cost_day_limit_micro_usd"], 5000000)
        self.assertEqual(c["cost_month_limit_micro_usd"], 50500000)
        self.assertEqual(c["models"], ["m", "other"])
        self.assertGreater(c["expires_ms"], c["created_ms"] + 29 * 86400000)
        self.assertGreater(c["last_admit_ms"], 0)
        self.assertRegex(c["fingerprint"], r"^[0-9a-f]{8}$")
        self.assertEqual(c["created_by"], f"llmgatectl uid {os.getuid()}")

        rows = parse_table(self.ctl("clients").stdout)
        self.assertEqual(list(rows), ["acme", "json-client"], "sorted by name")
        r = rows["acme"]
        self.assertEqual((r["SOURCE"], r["STATUS"], r["RPM"], r["RPD"], r["REQS"]),
                         ("store", "active", "4/100", "4/1000", "4"))
        self.assertEqual(r["TOK/D"], f"{c['tokens_day_used']}/100k",
                         "counts from 100000 in three digits")
        self.assertTrue(r["COST/D"].endswith("/$5.0000"), r)
        self.assertTrue(r["COST/M"].endswith("/$50.5000"), r)
        self.assertRegex(r["LAST SEEN"], r"^\d+\.\ds ago$")
        self.assertEqual(rows["json-client"]["RPM"], "1/-", "unlimited shows -")

        text = self.ctl("client", "acme").stdout
        for want in ("client       acme  (store)", "status       active",
                     f"key          fingerprint {c['fingerprint']}", "models       m, other",
                     "rpm          4/100 in the last 60 s", "requests     4 admitted",
                     f"by llmgatectl uid {os.getuid()}", "history (last 1 event"):
            self.assertIn(want, text)
        self.assertRegex(text, r"\n  \S+ \S+Z  added ")
        self.assertEqual(self.ctl("client", "show", "acme").stdout.splitlines()[0],
                         text.splitlines()[0], "client show NAME is client NAME")
        doc = json.loads(self.ctl("client", "acme", "--json").stdout)
        self.assertEqual((doc["schema"], doc["command"]), (1, "client"))
        one = doc["client"]
        self.assertEqual((one["name"], one["requests"], one["rpm_limit"]), ("acme", 4, 100))
        self.assertEqual([e["event"] for e in one["history"]], ["added"])
        self.assertEqual(one["history"][0]["text"], f"llmgatectl uid {os.getuid()}")
        self.assertNotIn("key", one, "the client object has no key field")

    def test_set_is_obeyed_at_the_next_request(self):
        key = self.new_key("add", "metered")
        for _ in range(2):
            self.assertEqual(self.chat(key)[0], 200)
        p = self.ctl("client", "set", "metered", "--rpm", "2")
        self.assertIn("metered: rpm - -> 2", p.stdout)
        st, body = self.chat(key)
        self.assertEqual(st, 429, f"rpm 2 with 2 used: the third is refused: {body}")
        self.assertEqual(self.clients_json()["metered"]["rpm_limit"], 2)
        self.ctl("client", "set", "metered", "--rpm", "0")
        self.assertEqual(self.chat(key)[0], 200, "--rpm 0: unlimited again")
        # --models: only what is listed; '' = all again
        self.ctl("client", "set", "metered", "--models", "other")
        self.assertNotEqual(self.chat(key, model="m")[0], 200, "m is not allowed any more")
        self.assertEqual(self.chat(key, model="other")[0], 200)
        self.ctl("client", "set", "metered", "--models", "")
        self.assertEqual(self.chat(key, model="m")[0], 200, "--models '': all models")
        hist = json.loads(self.ctl("client", "metered", "--json").stdout)["client"]["history"]
        self.assertEqual([e["event"] for e in hist], ["added"] + ["changed"] * 4)
        self.assertEqual(hist[1]["fields"], ["rpm"])
        self.assertEqual(hist[3]["fields"], ["models"])
        p = self.ctl("client", "set", "metered", rc=1)
        self.assertIn("at least one option", p.stderr)

    def test_rotate(self):
        k1 = self.new_key("add", "rot")
        self.assertEqual(self.chat(k1)[0], 200)
        k2 = self.new_key("rotate", "rot")
        self.assertNotEqual(k1, k2)
        self.assertEqual(self.chat(k2)[0], 200, "the new key works at once")
        self.assertEqual(self.chat(k1)[0], 200, "the old key works within the grace")
        c = self.clients_json()["rot"]
        self.assertRegex(c["prev_fingerprint"], r"^[0-9a-f]{8}$")
        self.assertGreater(c["prev_until_ms"], c["rotated_ms"] + 3500 * 1000)
        self.assertIn("the previous key (fingerprint " + c["prev_fingerprint"],
                      self.ctl("client", "rot").stdout)
        k3 = self.new_key("rotate", "rot", "--grace", "0", json_out=True)
        st, body = self.chat(k2)
        self.assertEqual(st, 401, "--grace 0: the replaced key stops at once")
        self.assertIn("replaced", body)
        self.assertEqual(self.chat(k1)[0], 401, "a key replaced before is unknown")
        self.assertEqual(self.chat(k3)[0], 200)
        c = self.clients_json()["rot"]
        self.assertEqual((c["prev_fingerprint"], c["prev_until_ms"]), ("", 0))
        hist = json.loads(self.ctl("client", "rot", "--json").stdout)["client"]["history"]
        self.assertEqual([e["event"] for e in hist], ["added", "rotated", "rotated"])

    def test_revoke_and_expiry(self):
        key = self.new_key("add", "leaky")
        self.assertEqual(self.chat(key)[0], 200)
        p = self.ctl("client", "revoke", "leaky")
        self.assertIn("leaky: active -> revoked", p.stdout)
        st, body = self.chat(key)
        self.assertEqual(st, 401)
        self.assertIn("revoked", body)
        self.assertNotIn(key, body)
        p = self.ctl("client", "revoke", "leaky", rc=1)
        self.assertIn("revoked already", p.stderr)
        self.ctl("client", "rotate", "leaky", rc=1)
        self.ctl("client", "set", "leaky", "--rpm", "5", rc=1)
        p = self.ctl("client", "add", "leaky", rc=1)
        self.assertIn("revoked", p.stderr)
        self.assertEqual(parse_table(self.ctl("clients").stdout)["leaky"]["STATUS"], "revoked")
        self.assertEqual(self.clients_json()["leaky"]["state"], "revoked")

        temp = self.new_key("add", "temp", "--expires", "2s")
        self.assertEqual(self.chat(temp)[0], 200, "valid before its expiry")
        st, body = wait_until(lambda: (lambda r: r if r[0] == 401 else None)(self.chat(temp)),
                              timeout=10, interval=0.2, what="the key expires")
        self.assertIn("expired", body)
        self.assertEqual(self.clients_json()["temp"]["state"], "expired")
        self.ctl("client", "set", "temp", "--expires", "never")
        self.assertEqual(self.chat(temp)[0], 200, "--expires never lifts the expiry")

    def test_refusals_and_exit_codes(self):
        # a configuration with client_keys on the same store: add of one of its names
        other = os.path.join(self.gw.tmp, "with-clients.yaml")
        with open(other, "w") as f:
            f.write(self.gw.config_text + "client_keys:\n  - name: team-a\n    sha256: " +
                    "ab" * 32 + "\n")
        p = self.ctl("client", "add", "team-a", rc=1, config=other)
        self.assertIn(other, p.stderr)
        self.assertIn("client_keys[0]", p.stderr)
        self.assertEqual(p.stdout, "", "nothing on stdout: no key was made")
        p = self.ctl("client", "add", "x", "--models", "m,nope", rc=1, config=True)
        self.assertIn('"nope"', p.stderr)
        self.assertIn("m (aliases mini), other", p.stderr)
        self.assertEqual(p.stdout, "")
        key = self.new_key("add", "ok-models", "--models", "mini")  # an alias is a model
        self.assertEqual(self.chat(key)[0], 200)
        p = self.ctl("client", "add", "ok-models", rc=1)
        self.assertIn("already", p.stderr)
        self.assertEqual(p.stdout, "")
        p = self.ctl("client", "nope", rc=3)
        self.assertIn('no client "nope"', p.stderr)
        self.ctl("client", "revoke", "nope", rc=3)
        self.ctl("client", "add", "bad name", rc=1)
        self.ctl("client", "add", rc=1)
        self.ctl("client", "add", "x", "--rpm", "ten", rc=1)
        self.ctl("client", "add", "x", "--cost-per-day-usd", "-1", rc=1)
        self.ctl("client", "add", "x", "--expires", "soon", rc=1)
        self.ctl("client", "rotate", "ok-models", "--grace", "5x", rc=1)
        self.ctl("client", "revoke", "ok-models", "--rpm", "5", rc=1)
        self.ctl("keys", "--models", "m", rc=1)
        self.assertNotIn("x", self.clients_json(), "no usage error wrote anything")
        # allow_unauthenticated: add works but warns that the store is not consulted
        anon = os.path.join(self.gw.tmp, "anon.yaml")
        with open(anon, "w") as f:
            f.write(self.gw.config_text + "allow_unauthenticated: true\n")
        p = subprocess.run([LLMGATECTL_BIN, "--config", anon, "client", "add", "anon-c"],
                           capture_output=True, text=True, env=ctl_env(), timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        found = KEY_RE.findall(p.stdout)
        self.keys += found
        self.gw.secrets += found
        self.assertIn("allow_unauthenticated", p.stderr)
        self.assertEqual(KEY_RE.findall(p.stderr), [])

    def tearDown(self):
        # the gateway's output and store hold no key (check_no_secrets at stop)
        self.gw.stop()


if __name__ == "__main__":
    unittest.main()
