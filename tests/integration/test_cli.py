"""llmgatectl against running servers: the table and the JSON show the numbers the server
produced for the traffic this test sent; disable, enable and cooldown are obeyed at once by
every worker and by a second server on the same store; every exit code; a store whose server
was killed with kill -9; `watch` in tmux (one refresh, clean quit on q and on Ctrl-C).

The CLI runs without the keys' secret variables in its environment (it must not need them)
and no output may contain a secret. Binaries: LLMGATE_BIN, MOCK_BIN, LLMGATECTL_BIN."""

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import unittest
from concurrent.futures import ThreadPoolExecutor

from harness import Gateway, Mock, post_json, wait_until

LLMGATECTL_BIN = os.environ.get("LLMGATECTL_BIN", "build/cli/llmgatectl")

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello from test_cli"}]}
SECRETS = {"k1": "sk-cli-secret-one", "k2": "sk-cli-secret-two", "k3": "sk-cli-secret-three",
           "o1": "sk-cli-secret-other"}


def ctl_env():
    """The operator's shell: no secret variables, no store variables, no colour."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("LLMGATE_TEST_SECRET_") and k not in ("LLMGATE_STATE_DIR",
                                                                     "LLMGATE_CONFIG")}
    env["NO_COLOR"] = "1"
    return env


def ctl(*args, env=None):
    p = subprocess.run([LLMGATECTL_BIN, *args], capture_output=True, text=True,
                       env=env or ctl_env(), timeout=30)
    for s in SECRETS.values():
        assert s not in p.stdout + p.stderr, f"a secret in the output of {args}"
    return p.returncode, p.stdout, p.stderr


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


def used(u, limit):
    assert u < 100000 and limit < 100000  # exact range of the table
    return f"{u}/{limit if limit else '-'}"


def fmt_ms(v):
    if v is None:
        return "-"
    if v < 1000:
        return f"{v}ms"
    return f"{v / 1000:.2f}s" if v < 9995 else f"{v / 1000:.1f}s"


def fmt_rate(r):
    if r is None:
        return "-"
    pct = r * 100
    return "0%" if pct <= 0 else (f"{pct:.1f}%" if pct < 9.95 else f"{pct:.0f}%")


def chat(port, headers=None, model="gpt-4o-mini"):
    st, h, body = post_json(port, "/v1/chat/completions", dict(CHAT, model=model), headers)
    usage = json.loads(body).get("usage", {}) if st == 200 else {}
    return st, h.get("x-llmgate-key"), usage.get("prompt_tokens", 0) + usage.get(
        "completion_tokens", 0)


def make_gateway(mock, state_dir=None, keys=("k1", "k2", "k3"), workers=2):
    provs = [{"name": "mock", "url": mock.url(),
              "keys": [(k, SECRETS[k], {"rpm": 1000, "rpd": 50000}) for k in keys]},
             {"name": "other", "url": mock.url(), "keys": [("o1", SECRETS["o1"], None)]}]
    models = [{"name": "gpt-4o-mini", "deployments": [("mock", "gpt-4o-mini")]},
              {"name": "other-model", "deployments": [("other", "gpt-4o-mini")]}]
    return Gateway(provs, models, workers=workers, state_dir=state_dir,
                   policy={"strategy": "round_robin"})


class CliTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.mock = Mock(threads=2)
        cls.gw = make_gateway(cls.mock)

    @classmethod
    def tearDownClass(cls):
        cls.gw.stop()
        cls.gw.cleanup()
        cls.mock.stop()

    def keys_json(self, *extra):
        rc, out, err = ctl("--config", self.gw.config, "keys", "--json", *extra)
        self.assertEqual(rc, 0, err)
        j = json.loads(out)
        self.assertEqual(j["schema"], 1)
        return {k["name"]: k for k in j["keys"]}

    def send(self, n, port=None, conc=8):
        """n requests in parallel; returns {key: [count, tokens]} from the responses."""
        seen = {}
        with ThreadPoolExecutor(conc) as ex:
            for st, key, tokens in ex.map(lambda _: chat(port or self.gw.port), range(n)):
                self.assertEqual(st, 200)
                c = seen.setdefault(key, [0, 0])
                c[0] += 1
                c[1] += tokens
        return seen

    def settled(self):
        """Waits until nothing is in flight and two reads agree on every count."""
        def counts():
            return {n: (k["requests"], k["outcomes_total"], k["tokens"], k["inflight"])
                    for n, k in self.keys_json().items()}

        def same():
            a = counts()
            return all(c[3] == 0 for c in a.values()) and a == counts()

        wait_until(same, 10, 0.05, "the store to settle")

    def ensure_enabled(self):
        for k in ("k1", "k2", "k3"):
            ctl("--config", self.gw.config, "enable", k)

    # ---- reads ------------------------------------------------------------------------

    def test_table_shows_what_the_server_did(self):
        before = self.keys_json()
        # the CLI reads while the server is under load
        stop = threading.Event()
        errors = []

        def reader():
            while not stop.is_set():
                rc, _, err = ctl("--config", self.gw.config, "keys")
                if rc != 0:
                    errors.append(err)

        t = threading.Thread(target=reader)
        t.start()
        try:
            sent = self.send(60)
        finally:
            stop.set()
            t.join()
        self.assertEqual(errors, [])
        self.assertEqual(sum(c[0] for c in sent.values()), 60)

        def settled():
            now = self.keys_json()
            return now if all(now[k]["requests"] - before[k]["requests"] == c[0]
                              and now[k]["outcomes"]["success"]
                              - before[k]["outcomes"]["success"] == c[0]
                              and now[k]["inflight"] == 0 for k, c in sent.items()) else None

        now = wait_until(settled, 10, 0.1, "the store to show every request")
        rc, out, _ = ctl("--config", self.gw.config, "keys", "--provider", "mock")
        rows = parse_table(out)
        for k, (count, tokens) in sent.items():
            self.assertEqual(now[k]["tokens"] - before[k]["tokens"], tokens, k)
            self.assertEqual(int(rows[k]["REQS"]), now[k]["requests"])
            self.assertEqual(int(rows[k]["TOKENS"]), now[k]["tokens"])
            self.assertGreaterEqual(now[k]["rpm_used"], count)
            self.assertNotEqual(rows[k]["P50"], "-")
            self.assertGreater(now[k]["latency_ms"]["samples"], 0)
            self.assertEqual(rows[k]["ERR"], fmt_rate(now[k]["error_rate"]))
        self.assertNotIn("o1", rows)  # --provider mock
        self.assertEqual(set(parse_table(ctl("--config", self.gw.config, "keys", "--model",
                                             "other-model")[1])), {"o1"})

    def test_json_matches_table(self):
        self.send(9)
        self.settled()  # recording done: the two reads below see one state
        rc, out, _ = ctl("--config", self.gw.config, "keys")
        self.assertEqual(rc, 0)
        rows = parse_table(out)
        j = self.keys_json()
        self.assertEqual(set(rows), set(j))
        for name, k in j.items():
            r = rows[name]
            self.assertEqual(r["PROVIDER"], k["provider"])
            self.assertEqual(r["STATUS"].split()[0], k["status_text"].split()[0])
            self.assertEqual(r["RPD"], used(k["rpd_used"], k["rpd_limit"]))
            self.assertEqual(r["INFL"], used(k["inflight"], k["max_inflight"]))
            self.assertEqual(r["P50"], fmt_ms(k["latency_ms"]["p50"]))
            self.assertEqual(r["P99"], fmt_ms(k["latency_ms"]["p99"]))
            self.assertEqual(r["ERR"], fmt_rate(k["error_rate"]))
            self.assertEqual(r["REQS"], str(k["requests"]))
            self.assertEqual(r["TOKENS"], str(k["tokens"]))
            self.assertEqual(r["COST"], f"${k['cost_usd']:.4f}")
        rc, out, _ = ctl("--config", self.gw.config, "key", "k1", "--json")
        d = json.loads(out)
        self.assertEqual((d["schema"], d["command"], d["key"]["name"]), (1, "key", "k1"))
        self.assertEqual(sum(b["count"] for b in d["key"]["histogram"]),
                         d["key"]["latency_ms"]["samples"])
        self.assertEqual(d["key"]["fingerprint"], j["k1"]["fingerprint"])
        self.assertRegex(d["key"]["fingerprint"], r"^[0-9a-f]{12}$")
        rc, out, _ = ctl("--config", self.gw.config, "providers", "--json")
        p = {x["name"]: x for x in json.loads(out)["providers"]}
        self.assertEqual(p["mock"]["circuit"], "closed")
        self.assertEqual(p["mock"]["keys"], 3)
        rc, out, _ = ctl("--config", self.gw.config, "providers")
        self.assertEqual(parse_table(out)["mock"]["CIRCUIT"], "closed")

    def test_key_detail(self):
        self.send(4)
        rc, out, _ = ctl("--config", self.gw.config, "key", "k1")
        self.assertEqual(rc, 0)
        for s in ("fingerprint ", "latency histogram", "history", "outcomes     success"):
            self.assertIn(s, out)

    def test_upstream_errors_are_counted(self):
        self.ensure_enabled()
        # k3's next upstream answer is a 429: the server cools it down and retries elsewhere
        self.mock.script(key=SECRETS["k3"], status=429, count=1)
        before = self.keys_json()["k3"]
        for _ in range(12):
            self.assertEqual(chat(self.gw.port)[0], 200)
        k3 = wait_until(lambda: (lambda k: k if k["outcomes"]["rate_limited"] >
                                 before["outcomes"]["rate_limited"] else None)(
            self.keys_json()["k3"]), 10, 0.1, "the 429 to be recorded")
        self.assertEqual(k3["last_error_code"], 429)
        self.assertGreater(k3["errors"], before["errors"])
        self.assertEqual(k3["state"], "cooling")
        rc, out, _ = ctl("--config", self.gw.config, "keys", "--status", "cooling")
        self.assertRegex(parse_table(out)["k3"]["STATUS"], r"^cooling \d")
        rc, out, _ = ctl("--config", self.gw.config, "key", "k3")
        self.assertIn("last error   429 at", out)
        self.assertIn("rate_limited", out)
        rc, out, _ = ctl("--config", self.gw.config, "enable", "k3")
        self.assertEqual(rc, 0)
        self.assertRegex(out, r"k3: cooling \S+ -> active")

    # ---- actions ----------------------------------------------------------------------

    def test_disable_and_enable(self):
        self.ensure_enabled()
        rc, out, _ = ctl("--config", self.gw.config, "disable", "k2")
        self.assertEqual(rc, 0)
        self.assertEqual(out, "k2: active -> disabled\n")
        by_key = self.mock.stats()["by_key"].get(SECRETS["k2"], 0)
        for _ in range(12):  # from the very next request on
            st, key, _ = chat(self.gw.port)
            self.assertEqual(st, 200)
            self.assertNotEqual(key, "k2")
        self.assertEqual(self.mock.stats()["by_key"].get(SECRETS["k2"], 0), by_key)
        d = json.loads(ctl("--config", self.gw.config, "key", "k2", "--json")[1])["key"]
        self.assertEqual(d["state"], "disabled")
        self.assertEqual(d["history"][-1]["event"], "disable")
        self.assertTrue(d["history"][-1]["text"].startswith("llmgatectl uid "))
        rc, out, _ = ctl("--config", self.gw.config, "enable", "k2")
        self.assertEqual((rc, out), (0, "k2: disabled -> active\n"))
        wait_until(lambda: chat(self.gw.port)[1] == "k2", 10, 0, "k2 to serve again")

    def test_cooldown_obeyed_by_every_worker_and_a_second_server(self):
        self.ensure_enabled()
        gw2 = make_gateway(self.mock, state_dir=self.gw.state_dir)
        try:
            rc, out, _ = ctl("--config", self.gw.config, "cooldown", "k1", "5m")
            self.assertEqual(rc, 0)
            self.assertRegex(out, r"^k1: active -> cooling 5m \(until .*Z\)\n$")
            for port in (self.gw.port, gw2.port):
                # a new connection per request: SO_REUSEPORT spreads them over the workers
                served = self.send(24, port, conc=8)
                self.assertNotIn("k1", served)
            rc, out, _ = ctl("--state", self.gw.state_dir, "enable", "k1")
            self.assertRegex(out, r"^k1: cooling \S+ -> active\n$")
            wait_until(lambda: chat(gw2.port)[1] == "k1", 10, 0, "k1 to serve again")
        finally:
            gw2.stop()
            gw2.cleanup()

    def test_reset(self):
        self.ensure_enabled()
        self.send(6)
        rc, out, _ = ctl("--config", self.gw.config, "reset", "k1", "--rpm")
        self.assertEqual(rc, 0)
        self.assertRegex(out, r"^k1: reset rpm \d+/1000 -> 0/1000; status active\n$")
        self.assertEqual(self.keys_json()["k1"]["rpm_used"], 0)

    # ---- exit codes -------------------------------------------------------------------

    def test_exit_codes(self):
        cfg = self.gw.config
        self.assertEqual(ctl("--config", cfg, "keys")[0], 0)
        for args in (["--config", cfg, "frobnicate"], ["--config", cfg, "cooldown", "k1", "5x"],
                     ["--config", cfg, "keys", "--sort", "nope"], ["keys"],
                     ["--state", self.gw.state_dir, "keys", "--model", "gpt-4o-mini"]):
            rc, out, err = ctl(*args)
            self.assertEqual(rc, 1, (args, err))
            self.assertTrue(err.startswith("llmgatectl: "), err)
        rc, _, err = ctl("--state", "/nonexistent/state", "keys")
        self.assertEqual(rc, 2)
        self.assertIn("no store in /nonexistent/state", err)
        self.assertIn("start it once", err)
        tmp = tempfile.mkdtemp(prefix="llmgatectl-test-")
        try:
            os.chmod(tmp, 0o700)
            with open(os.path.join(tmp, "data.mdb"), "wb") as f:
                f.write(os.urandom(16384))
            rc, _, err = ctl("--state", tmp, "keys")
            self.assertEqual(rc, 2, err)
            self.assertIn(tmp, err)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        rc, _, err = ctl("--config", cfg, "key", "no-such-key")
        self.assertEqual(rc, 3)
        self.assertIn('no key "no-such-key"', err)
        self.assertEqual(ctl("--config", cfg, "disable", "no-such-key")[0], 3)
        env = ctl_env()
        env["LLMGATE_CONFIG"] = cfg
        self.assertEqual(ctl("keys", env=env)[0], 0)
        env = ctl_env()
        env["LLMGATE_STATE_DIR"] = self.gw.state_dir
        self.assertEqual(ctl("providers", env=env)[0], 0)

    # ---- watch ------------------------------------------------------------------------

    def test_watch_in_tmux(self):
        if not shutil.which("tmux"):
            self.skipTest("tmux is not installed (apt-get install tmux): watch not tested")
        tmp = tempfile.mkdtemp(prefix="llmgatectl-watch-")
        socks = []

        def tmux(sock, *a):
            return subprocess.run(["tmux", "-L", sock, *a], capture_output=True, text=True,
                                  timeout=10)

        try:
            for key, quit_keys in (("q", ["q"]), ("ctrl-c", ["C-c"])):
                sock = f"llmgatectl-test-{os.getpid()}-{key}"  # a tmux server per case
                socks.append(sock)
                pane = lambda: tmux(sock, "capture-pane", "-p", "-t", "w").stdout
                before, after = os.path.join(tmp, key + ".before"), os.path.join(tmp, key + ".after")
                script = (f"stty -a > {before}; {LLMGATECTL_BIN} --config "
                          f"{self.gw.config} watch --interval 500ms; echo WATCH-EXIT=$?; "
                          f"stty -a > {after}; sleep 60")
                r = tmux(sock, "new-session", "-d", "-s", "w", "-x", "160", "-y", "30", script)
                self.assertEqual(r.returncode, 0, r.stderr)
                first = wait_until(lambda: re.search(r"llmgatectl watch .* (\d\d:\d\d:\d\dZ)",
                                                     pane()), 10, 0.05, "watch to draw")
                self.assertIn("NAME", pane())
                self.assertRegex(pane(), r"\nk1 +mock +")
                wait_until(lambda: (lambda m: m and m.group(1) != first.group(1))(
                    re.search(r"llmgatectl watch .* (\d\d:\d\d:\d\dZ)", pane())), 5, 0.05,
                    "one refresh")
                tmux(sock, "send-keys", "-t", "w", *quit_keys)
                wait_until(lambda: "WATCH-EXIT=0" in pane(), 5, 0.05, f"watch to quit on {key}")
                wait_until(lambda: os.path.exists(after) and os.path.getsize(after) > 0, 5)
                text = pane()
                self.assertNotIn("NAME", text)  # the alternate screen is gone
                for s in SECRETS.values():
                    self.assertNotIn(s, text)
                with open(before) as f1, open(after) as f2:
                    self.assertEqual(f1.read(), f2.read(), "terminal modes restored")
        finally:
            for sock in socks:
                tmux(sock, "kill-server")
            shutil.rmtree(tmp, ignore_errors=True)


class KilledServerTest(unittest.TestCase):
    """The CLI on a store whose server died with kill -9, then on the restarted server."""

    def test_after_kill_9(self):
        mock = Mock(threads=2)
        gw = make_gateway(mock, keys=("k1", "k2"))
        try:
            sent = {}
            for _ in range(6):
                st, key, _ = chat(gw.port)
                sent[key] = sent.get(key, 0) + 1
            # requests in flight at the moment of the kill
            def slow_request():
                try:
                    post_json(gw.port, "/v1/chat/completions", CHAT,
                              {"x-mock-delay-ms": "20000"}, timeout=30)
                except OSError:
                    pass  # the server is killed under it

            slow = [threading.Thread(target=slow_request) for _ in range(2)]
            for t in slow:
                t.daemon = True
                t.start()
            wait_until(lambda: sum(k["inflight"] for k in json.loads(
                ctl("--config", gw.config, "keys", "--json")[1])["keys"]) == 2, 10, 0.05,
                "two requests in flight")
            gw.proc.send(signal.SIGKILL)
            gw.proc.p.wait(10)
            gw.proc.stop()  # collects the output thread of the dead process
            rc, out, err = ctl("--config", gw.config, "keys", "--json")
            self.assertEqual(rc, 0, err)
            keys = {k["name"]: k for k in json.loads(out)["keys"]}
            for k, n in sent.items():
                self.assertGreaterEqual(keys[k]["outcomes"]["success"], n)
            rc, out, err = ctl("--config", gw.config, "keys")
            self.assertEqual(rc, 0, err)
            rc, out, err = ctl("--config", gw.config, "disable", "k2")
            self.assertEqual((rc, out), (0, "k2: active -> disabled\n"), err)
            gw.start()  # the same state dir
            # the dead owner's reservations are reclaimed; the disable survived the restart
            wait_until(lambda: all(k["inflight"] == 0 for k in json.loads(
                ctl("--config", gw.config, "keys", "--json")[1])["keys"]), 10, 0.1,
                "the in-flight count of the killed server to be reclaimed")
            for _ in range(4):
                self.assertEqual(chat(gw.port)[1], "k1")
            self.assertEqual(self_state(gw, "k2"), "disabled")
        finally:
            gw.stop()
            gw.cleanup()
            mock.stop()

    def test_prune_orphans(self):
        mock = Mock(threads=1)
        gw = make_gateway(mock, keys=("k1", "k2"))
        try:
            gw.stop()
            gw2 = make_gateway(mock, state_dir=gw.state_dir, keys=("k1",))
            try:
                self.assertEqual(self_state(gw2, "k2"), "orphaned")
                rc, out, _ = ctl("--config", gw2.config, "prune")
                self.assertEqual((rc, out), (0, "pruned 1 orphaned key: k2\n"))
                self.assertEqual(ctl("--config", gw2.config, "key", "k2")[0], 3)
            finally:
                gw2.stop()
                gw2.cleanup()
        finally:
            gw.cleanup()
            mock.stop()


def self_state(gw, name):
    rc, out, err = ctl("--config", gw.config, "key", name, "--json")
    assert rc == 0, err
    return json.loads(out)["key"]["state"]


if __name__ == "__main__":
    unittest.main(verbosity=2)
