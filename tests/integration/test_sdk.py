"""The official openai npm SDK as a real client: plain and streaming chat and the model
list through llmgate."""

import json
import os
import shutil
import subprocess
import unittest

from harness import Mock, simple_gateway

SDK_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sdk")


class SdkTest(unittest.TestCase):
    def test_openai_sdk(self):
        node = shutil.which("node")
        self.assertIsNotNone(node, "node is installed by ./dev.sh test")
        self.assertTrue(os.path.isdir(os.path.join(SDK_DIR, "node_modules", "openai")),
                        "run `npm install` in tests/integration/sdk (./dev.sh test does)")
        mock = Mock()
        gw = simple_gateway(mock)
        try:
            p = subprocess.run([node, "sdk_chat.mjs", gw.url() + "/v1", "mini"], cwd=SDK_DIR,
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(p.returncode, 0, p.stderr)
            out = json.loads(p.stdout)
            self.assertEqual(out["plain"]["model"], "gpt-4o-mini")
            self.assertEqual(out["plain"]["content"], "Hello from the mock upstream.")
            self.assertGreater(out["plain"]["usage"]["total_tokens"], 0)
            self.assertGreaterEqual(out["stream"]["chunks"], 3)
            self.assertTrue(out["stream"]["text"].startswith("Hello from the mock upstream."),
                            out["stream"]["text"])
            self.assertIsNotNone(out["stream"]["usage"])
            self.assertIn("mini", out["models"])
        finally:
            gw.stop()
            gw.cleanup()
            mock.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
