"""llmgate under a service manager: the sd_notify(3) protocol of Type=notify, spoken to a
unix datagram socket this test listens on (as systemd does with NOTIFY_SOCKET), and
--version of both binaries.

READY=1 must come only once the store is open and the port accepts connections;
SIGHUP gives RELOADING=1 then READY=1 (also for a file the reload refuses); SIGTERM gives
STOPPING=1; WATCHDOG_USEC makes WATCHDOG=1 arrive at half that interval."""

import os
import re
import signal
import socket
import subprocess
import time
import unittest

from harness import LLMGATE_BIN, Mock, Proc, get, simple_gateway

LLMGATECTL_BIN = os.environ.get("LLMGATECTL_BIN", os.path.join(
    os.path.dirname(os.path.dirname(LLMGATE_BIN)), "cli", "llmgatectl"))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def version_of(binary):
    return subprocess.run([binary, "--version"], capture_output=True, text=True,
                          timeout=30, check=True).stdout


def project_version():
    with open(os.path.join(ROOT, "meson.build")) as f:
        return re.search(r"version:\s*'([^']+)'", f.read()).group(1)


class Notifications:
    """A unix datagram socket standing in for systemd's notification socket."""

    def __init__(self, tmp):
        self.path = os.path.join(tmp, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.got = []

    def next(self, timeout=15.0):
        """The next message as a dict of its VAR=value lines; AssertionError at the deadline."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(4096).decode()
        except socket.timeout:
            raise AssertionError(f"no notification within {timeout}s (got so far: {self.got})")
        msg = dict(line.split("=", 1) for line in data.split("\n") if "=" in line)
        self.got.append(msg)
        return msg

    def next_state(self, timeout=15.0):
        """The next message that is not a WATCHDOG=1."""
        while True:
            m = self.next(timeout)
            if "WATCHDOG" not in m:
                return m

    def close(self):
        self.sock.close()


class NotifyTest(unittest.TestCase):
    def setUp(self):
        if "systemd=yes" not in version_of(LLMGATE_BIN):
            self.skipTest("llmgate built without libsystemd (-Dsystemd=disabled): no sd_notify")
        self.mock = Mock()
        self.addCleanup(self.mock.stop)

    def start(self, extra_env):
        gw = simple_gateway(self.mock, start=False)
        self.addCleanup(gw.cleanup)
        n = Notifications(gw.tmp)
        self.addCleanup(n.close)
        gw.env.update(extra_env(n))
        gw.proc = Proc([LLMGATE_BIN, "--config", gw.config], env=gw.env, name="llmgate")
        return gw, n

    def test_ready_reload_stopping(self):
        gw, n = self.start(lambda n: {"NOTIFY_SOCKET": n.path})
        m = n.next_state()
        self.assertEqual(m.get("READY"), "1", m)
        self.assertIn("serving", m.get("STATUS", ""))
        # READY=1 came: the listener is bound (its line was printed before) and answers at
        # once, and the store is open
        port = int(gw.proc.wait_line(r"listening on \S+ \(port (\d+)\)", 5).group(1))
        gw.port = port
        st, _, _ = get(port, "/v1/models", timeout=5)
        self.assertEqual(st, 200)
        self.assertTrue(os.path.exists(os.path.join(gw.state_dir, "data.mdb")))

        gw.proc.send(signal.SIGHUP)
        m = n.next_state()
        self.assertEqual(m.get("RELOADING"), "1", m)
        self.assertRegex(m.get("MONOTONIC_USEC", ""), r"^\d+$")
        m = n.next_state()
        self.assertEqual(m.get("READY"), "1", m)
        gw.proc.wait_line(r"reloaded \(generation 2\)")

        # a file the reload refuses: still RELOADING=1 then READY=1, still serving
        with open(gw.config, "a") as f:
            f.write("bogus_key: 1\n")
        gw.proc.send(signal.SIGHUP)
        self.assertEqual(n.next_state().get("RELOADING"), "1")
        self.assertEqual(n.next_state().get("READY"), "1")
        gw.proc.wait_line(r"reload refused")
        self.assertEqual(get(port, "/v1/models", timeout=5)[0], 200)

        gw.proc.send(signal.SIGTERM)
        m = n.next_state()
        self.assertEqual(m.get("STOPPING"), "1", m)
        self.assertEqual(gw.proc.p.wait(15), 0)

    def test_watchdog(self):
        gw, n = self.start(lambda n: {"NOTIFY_SOCKET": n.path, "WATCHDOG_USEC": "400000"})
        self.assertEqual(n.next_state().get("READY"), "1")
        t0 = time.monotonic()
        for _ in range(3):
            self.assertEqual(n.next(timeout=2).get("WATCHDOG"), "1")
        # three at half of 400 ms: about 0.6 s, certainly under the 1.2 s of the interval
        self.assertLess(time.monotonic() - t0, 1.2 * 2)
        gw.proc.send(signal.SIGTERM)
        self.assertEqual(gw.proc.p.wait(15), 0)

    def test_nothing_without_notify_socket(self):
        # the harness's gateways run without NOTIFY_SOCKET: they start and stop as always
        gw = simple_gateway(self.mock)
        self.addCleanup(gw.cleanup)
        self.assertEqual(gw.stop(), 0)


class VersionTest(unittest.TestCase):
    LINE2 = (r"build: tls=mbedtls sanitize=(none|address|thread) systemd=(yes|no) "
             r"buildtype=\w+")

    def test_llmgate_version(self):
        out = version_of(LLMGATE_BIN)
        v = re.escape(project_version())
        self.assertRegex(out, rf"^llmgate {v}( \(git [0-9a-f]+\S*\))?\n{self.LINE2}\n$")

    def test_llmgatectl_version(self):
        out = version_of(LLMGATECTL_BIN)
        v = re.escape(project_version())
        self.assertRegex(out, rf"^llmgatectl {v}( \(git [0-9a-f]+\S*\))? \(store schema \d+\)\n"
                              rf"{self.LINE2}\n$")

    def test_same_build(self):
        # both binaries come from one build: the same version line and options
        a = version_of(LLMGATE_BIN).splitlines()
        b = version_of(LLMGATECTL_BIN).splitlines()
        self.assertEqual(a[1], b[1])
        self.assertEqual(a[0].split()[1:], b[0].split()[1:-3])


if __name__ == "__main__":
    unittest.main()
