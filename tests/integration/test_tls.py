"""HTTPS to providers: verification against the configured CA bundle, host name checked,
sessions resumed; an untrusted CA or a wrong host name fails with 502, never silently."""

import os
import unittest

from harness import Mock, Gateway, CERTS, post_json, assert_openai_error

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def gw_for(mock, ca="ca.crt", host="localhost"):
    return Gateway([{"name": "tlsprov", "url": f"https://{host}:{mock.port}/v1",
                     "ca_file": os.path.join(CERTS, ca), "keys": [("kt", "sk-tls-secret", None)]}],
                   [{"name": "m", "deployments": [("tlsprov", "m")]}], workers=1)


class TlsTest(unittest.TestCase):
    def run_case(self, cert, ca="ca.crt", host="localhost"):
        mock = Mock(tls=cert)
        gw = gw_for(mock, ca, host)
        try:
            return post_json(gw.port, "/v1/chat/completions", CHAT), mock, gw
        finally:
            gw.stop()
            gw.cleanup()
            mock.stop()

    def test_verified_https(self):
        mock = Mock(tls="server")
        gw = gw_for(mock)
        try:
            for _ in range(3):
                st, h, body = post_json(gw.port, "/v1/chat/completions", CHAT)
                self.assertEqual(st, 200, body)
            st, h, body = post_json(gw.port, "/v1/chat/completions", dict(CHAT, stream=True))
            self.assertEqual(st, 200)
            self.assertIn(b"[DONE]", body)
            auth = [v for n, v in mock.last()["headers"] if n.lower() == "authorization"]
            self.assertEqual(auth, ["Bearer sk-tls-secret"])
        finally:
            gw.stop()
            gw.cleanup()
            mock.stop()

    def test_ip_literal_in_san(self):
        (st, _, body), _, _ = self.run_case("server", host="127.0.0.1")
        self.assertEqual(st, 200, body)

    def test_wrong_hostname_502(self):
        (st, _, body), _, _ = self.run_case("wrongname")
        j = assert_openai_error(self, st, body, 502)
        self.assertIn("certificate", j["error"]["message"].lower())

    def test_untrusted_ca_502(self):
        (st, _, body), _, _ = self.run_case("untrusted")
        j = assert_openai_error(self, st, body, 502)
        self.assertIn("certificate", j["error"]["message"].lower())

    def test_system_bundle_does_not_trust_test_ca(self):
        mock = Mock(tls="server")
        gw = Gateway([{"name": "tlsprov", "url": f"https://localhost:{mock.port}/v1",
                       "keys": [("kt", "sk-tls-secret", None)]}],
                     [{"name": "m", "deployments": [("tlsprov", "m")]}], workers=1)
        try:
            st, _, body = post_json(gw.port, "/v1/chat/completions", CHAT)
            assert_openai_error(self, st, body, 502)
        finally:
            gw.stop()
            gw.cleanup()
            mock.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
