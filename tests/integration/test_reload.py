"""SIGHUP reloads the configuration without dropping connections or losing state: keys
added and removed, limits changed, requests in flight finish, an invalid file is refused
and the running configuration stays."""

import json
import signal
import threading
import unittest

from harness import Mock, Gateway, post_json

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


class ReloadTest(unittest.TestCase):
    def setUp(self):
        self.mock = Mock()
        self.g = Gateway([{"name": "p", "url": self.mock.url(),
                           "keys": [("a", "sk-a", {"rpm": 2})]}],
                         [{"name": "m", "deployments": [("p", "m")]}],
                         env={"LLMGATE_TEST_SECRET_B": "sk-b"})

    def tearDown(self):
        self.g.stop()
        self.g.cleanup()
        self.mock.stop()

    def rewrite(self, keys, models=None):
        """Write a new configuration over the running gateway's file."""
        other = Gateway([{"name": "p", "url": self.mock.url(), "keys": keys}],
                        models or [{"name": "m", "deployments": [("p", "m")]}],
                        state_dir=self.g.state_dir, start=False)
        text = other.config_text
        other.cleanup()
        with open(self.g.config, "w") as f:
            f.write(text)

    def reload(self, expect=r"reloaded \(generation"):
        n = len(self.g.proc.lines)
        self.g.proc.send(signal.SIGHUP)
        def seen():
            with self.g.proc.lock:
                new = "\n".join(self.g.proc.lines[n:])
            return expect in new or __import__("re").search(expect, new)
        from harness import wait_until
        wait_until(seen, 10, what=f"/{expect}/ after SIGHUP")

    def test_keys_and_limits_change_connections_survive(self):
        c = self.g.conn()
        def ask(headers=None):
            c.request("POST", "/v1/chat/completions", body=json.dumps(CHAT),
                      headers=headers or {})
            r = c.getresponse()
            return r.status, r.getheader("x-llmgate-key"), r.read()
        self.assertEqual(ask()[:2], (200, "a"))
        # a slow request in flight across the reload (takes a's second slot of rpm 2)
        slow = {}
        base = self.mock.stats()["requests"]
        t = threading.Thread(target=lambda: slow.setdefault(
            "r", post_json(self.g.port, "/v1/chat/completions", CHAT,
                           {"x-mock-delay-ms": "1500"})))
        t.start()
        from harness import wait_until
        wait_until(lambda: self.mock.stats()["requests"] > base, 5, what="the slow request")
        self.assertEqual(ask()[0], 429)  # rpm 2 spent

        self.rewrite([("a", "sk-a", {"rpm": 3}), ("b", "sk-b", None)])
        self.reload()
        keys = {ask()[1] for _ in range(6)}
        self.assertEqual(keys, {"a", "b"})  # b added; a's new limit 3 allows one more
        t.join(10)
        self.assertEqual(slow["r"][0], 200)

        # a removed: orphaned in the store, never used again
        self.rewrite([("b", "sk-b", None)])
        self.reload()
        reloads = [l for l in self.g.proc.output().splitlines() if "reloaded (generation" in l]
        self.assertIn("1 orphaned", reloads[-1])
        self.assertEqual({ask()[1] for _ in range(5)}, {"b"})
        c.close()

    def test_invalid_reload_refused(self):
        with open(self.g.config, "a") as f:
            f.write("bogus_key: 1\n")
        self.reload(expect="reload refused")
        self.assertIn("bogus_key", self.g.proc.output())
        st, h, _ = post_json(self.g.port, "/v1/chat/completions", CHAT)
        self.assertEqual((st, h["x-llmgate-key"]), (200, "a"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
