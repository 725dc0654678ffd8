"""Streaming: chunks reach the client as the upstream sends them (no buffering),
a slow client pauses the upstream instead of growing memory, and a client that goes away
aborts the upstream request."""

import json
import socket
import time
import unittest

from harness import Mock, simple_gateway, wait_until

CHAT = {"model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "hi"}]}


def send_request(port, obj, headers=b""):
    body = json.dumps(obj).encode()
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              + headers + b"Content-Length: %d\r\n\r\n" % len(body) + body)
    return s


class StreamingTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.mock = Mock()
        cls.gw = simple_gateway(cls.mock, workers=1)

    @classmethod
    def tearDownClass(cls):
        cls.gw.stop()
        cls.gw.cleanup()
        cls.mock.stop()

    def test_chunks_arrive_as_sent(self):
        # 5 chunks, 400 ms apart: the first must arrive long before the last is sent.
        s = send_request(self.gw.port, CHAT, b"x-mock-chunks: 5\r\nx-mock-chunk-delay-ms: 400\r\n")
        t0 = time.monotonic()
        got = b""
        first_data = None
        while b"[DONE]" not in got:
            c = s.recv(65536)
            if not c:
                break
            got += c
            if first_data is None and b"data: {" in got:
                first_data = time.monotonic() - t0
        total = time.monotonic() - t0
        s.close()
        self.assertIn(b"[DONE]", got)
        self.assertIsNotNone(first_data)
        # The upstream needs >= 1.6 s for all chunks; the first chunk must not wait for them.
        self.assertGreater(total, 1.5)
        self.assertLess(first_data, total - 1.0, (first_data, total))

    def test_stream_include_usage(self):
        mock = Mock(threads=1)
        gw = simple_gateway(mock, workers=1, extra_yaml="stream_include_usage: true\n")
        self.addCleanup(mock.stop)
        self.addCleanup(gw.cleanup)
        self.addCleanup(gw.stop)
        from harness import post_json
        st, _, data = post_json(gw.port, "/v1/chat/completions", CHAT)
        self.assertEqual(st, 200)
        sent = json.loads(mock.last()["body"])
        self.assertEqual(sent["stream_options"], {"include_usage": True}, "asked upstream")
        self.assertEqual(sent["messages"], CHAT["messages"])
        events = [l for l in data.decode().splitlines() if l.startswith("data: ")]
        self.assertEqual(events[-1], "data: [DONE]")
        self.assertFalse([e for e in events if '"usage"' in e],
                         "the client did not ask for usage: it does not get the chunk")
        self.assertGreater(len(events), 3)
        # a client that asks gets it, and its body goes upstream as it sent it
        asked = dict(CHAT, stream_options={"include_usage": True})
        st, _, data = post_json(gw.port, "/v1/chat/completions", asked)
        self.assertEqual(json.loads(mock.last()["body"]), asked)
        self.assertTrue([l for l in data.decode().splitlines() if '"usage"' in l])

    def test_client_disconnect_aborts_upstream(self):
        # A fresh pair, so that no pooled connection hides the one this request opens.
        mock = Mock(threads=1)
        gw = simple_gateway(mock, workers=1)
        self.addCleanup(mock.stop)
        self.addCleanup(gw.cleanup)
        self.addCleanup(gw.stop)
        self.assertEqual(mock.stats()["active_connections"], 1)  # the stats request itself
        s = send_request(gw.port, CHAT, b"x-mock-chunks: 50\r\nx-mock-chunk-delay-ms: 200\r\n")
        got = b""
        while b"data: {" not in got:
            got += s.recv(4096)
        self.assertEqual(mock.stats()["active_connections"], 2)  # stats + the gateway's
        s.close()
        # The gateway must drop the upstream connection (not pool it mid-response).
        wait_until(lambda: mock.stats()["active_connections"] == 1, 5,
                   what="the upstream connection to be closed after the client left")
        self.assertLess(mock.stats()["requests"], 60, "the stream was not read to its end")
        self.assertIsNone(gw.proc.p.poll(), "gateway still running")

    def test_slow_client_backpressure(self):
        # ~120 MB of streamed content to a client that reads nothing for a while. With
        # backpressure the gateway stops reading the upstream: what the upstream has sent
        # stays within the socket buffers and the gateway's high-water mark, far below the
        # response size. Without it the gateway would read (and hold) all of it.
        sent0 = self.mock.stats()["bytes_sent"]
        s = send_request(self.gw.port, CHAT,
                         b"x-mock-chunks: 2000\r\nx-mock-content-bytes: 60000\r\n")

        def stalled():
            a = self.mock.stats()["bytes_sent"]
            time.sleep(0.3)
            b = self.mock.stats()["bytes_sent"]
            # (each stats answer itself adds a few hundred bytes)
            return b > sent0 and b - a < 4096 and b
        held = wait_until(stalled, 10, interval=0, what="the upstream to stall") - sent0
        self.assertLess(held, 16 << 20, f"upstream sent {held} bytes to a client reading nothing")
        total = 0
        tail = b""
        while True:
            c = s.recv(1 << 20)
            if not c:
                break
            total += len(c)
            tail = (tail + c)[-64:]
            if b"[DONE]" in tail:
                break
        s.close()
        self.assertGreater(total, 100_000_000)
        self.assertIn(b"[DONE]", tail)


if __name__ == "__main__":
    unittest.main(verbosity=2)
