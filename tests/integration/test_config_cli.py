"""llmgate --check-config and start-up errors: exit codes and messages a person can act on,
never a secret."""

import os
import subprocess
import tempfile
import unittest

from harness import LLMGATE_BIN

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run(args, env_extra=None):
    env = dict(os.environ)
    env.update(env_extra or {})
    p = subprocess.run([LLMGATE_BIN, *args], capture_output=True, text=True, env=env, timeout=30)
    return p.returncode, p.stdout + p.stderr


STATE = tempfile.mkdtemp(prefix="llmgate-cfgtest-")

VALID = """listen: ["127.0.0.1:0"]
allow_unauthenticated: true
state_dir: STATE/state
providers:
  - name: p
    base_url: http://127.0.0.1:9/v1
    keys:
      - name: k1
        secret_env: CFGTEST_KEY
        rpm: 10
models:
  - name: m
    deployments: [{provider: p, model: m}]
""".replace("STATE", STATE)


class ConfigCliTest(unittest.TestCase):
    def write(self, text):
        fd, path = tempfile.mkstemp(suffix=".yaml")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        self.addCleanup(os.unlink, path)
        return path

    def test_valid(self):
        rc, out = run(["--check-config", self.write(VALID)], {"CFGTEST_KEY": "sk-cfg-secret-1"})
        self.assertEqual(rc, 0, out)
        self.assertIn("valid", out)
        self.assertNotIn("sk-cfg-secret-1", out)

    def test_shipped_configs(self):
        env = {k: "sk-example-" + k.lower() for k in
               ("DEEPSEEK_KEY_1", "DEEPSEEK_KEY_2", "OPENAI_KEY_1", "OPENAI_KEY_2",
                "RELAY_KEY_1", "RELAY_KEY_2", "DEMO_KEY_A1", "DEMO_KEY_A2", "DEMO_KEY_B1")}
        rc, out = run(["--check-config", os.path.join(ROOT, "config/demo.yaml")], env)
        self.assertEqual(rc, 0, out)

    def test_bad_value_names_path_and_line(self):
        rc, out = run(["--check-config", self.write(VALID.replace("rpm: 10", "rpm: ten"))],
                      {"CFGTEST_KEY": "sk-x"})
        self.assertEqual(rc, 1)
        self.assertIn(":10: providers[0].keys[0].rpm", out)

    def test_unknown_key(self):
        rc, out = run(["--check-config", self.write(VALID.replace("rpm: 10", "rpn: 10"))],
                      {"CFGTEST_KEY": "sk-x"})
        self.assertEqual(rc, 1)
        self.assertIn("rpn", out)
        self.assertIn(":10:", out)

    def test_missing_env_names_variable(self):
        env = dict(os.environ)
        env.pop("CFGTEST_KEY", None)
        p = subprocess.run([LLMGATE_BIN, "--check-config", self.write(VALID)],
                           capture_output=True, text=True, env=env, timeout=30)
        self.assertEqual(p.returncode, 1)
        self.assertIn("CFGTEST_KEY", p.stderr)
        self.assertIn("k1", p.stderr)

    def test_secret_problems_never_show_the_value(self):
        for bad in ("Bearer sk-pasted-secret-1", "sk-trailing-secret-2\n", " sk-space-secret-3"):
            rc, out = run(["--check-config", self.write(VALID)], {"CFGTEST_KEY": bad})
            self.assertEqual(rc, 1, out)
            self.assertIn("k1", out)
            self.assertNotIn(bad.strip().split()[-1], out)

    def test_serve_refuses_invalid(self):
        rc, out = run(["--config", self.write("listen: []\n")])
        self.assertEqual(rc, 1)
        self.assertIn("listen", out)

    def test_listen_error_is_clear(self):
        import socket
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        try:
            cfg = VALID.replace('"127.0.0.1:0"', f'"127.0.0.1:{port}"')
            rc, out = run(["--config", self.write(cfg)], {"CFGTEST_KEY": "sk-x"})
            self.assertEqual(rc, 1)
            self.assertIn(f"cannot listen on 127.0.0.1:{port}", out)
        finally:
            s.close()

    def test_usage(self):
        rc, out = run([])
        self.assertEqual(rc, 1)
        self.assertIn("usage", out)
        rc, out = run(["--bogus"])
        self.assertEqual(rc, 1)


if __name__ == "__main__":
    try:
        unittest.main(verbosity=2)
    finally:
        import shutil
        shutil.rmtree(STATE, ignore_errors=True)
