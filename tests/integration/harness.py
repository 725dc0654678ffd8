"""harness.py - start the real llmgate and mock-upstream binaries on loopback, talk HTTP.

Every process is started on port 0 and its bound port read from its ready line, so tests
never race for ports. Every wait is a condition with a deadline. Every process and state
directory is cleaned up by stop()/cleanup(), also when a test fails (use the context
managers or unittest's addCleanup).

Binaries and test certificates come from the environment that meson sets:
LLMGATE_BIN, MOCK_BIN, CERTS.
"""

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

_BUILD = os.environ.get("BUILD_DIR", os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "build"))
LLMGATE_BIN = os.environ.get("LLMGATE_BIN", os.path.join(_BUILD, "server/llmgate"))
MOCK_BIN = os.environ.get("MOCK_BIN", os.path.join(_BUILD, "bench/mock/mock-upstream"))
CERTS = os.environ.get("CERTS", os.path.join(_BUILD, "tests/certs"))


def wait_until(cond, timeout=10.0, interval=0.02, what="condition"):
    """Poll cond() until it returns a truthy value; raise AssertionError at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class Proc:
    """A child process whose output is collected by a thread, line by line."""

    def __init__(self, argv, env=None, name="proc"):
        self.name = name
        self.lines = []
        self.lock = threading.Lock()
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  env=env, stdin=subprocess.DEVNULL)
        self.t = threading.Thread(target=self._pump, daemon=True)
        self.t.start()

    def _pump(self):
        for raw in self.p.stdout:
            with self.lock:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def output(self):
        with self.lock:
            return "\n".join(self.lines)

    def wait_line(self, pattern, timeout=10.0):
        rx = re.compile(pattern)

        def find():
            if self.p.poll() is not None:
                self.t.join(1)
                m = [rx.search(l) for l in self.lines]
                m = [x for x in m if x]
                if m:
                    return m[0]
                raise AssertionError(f"{self.name} exited with {self.p.returncode} before "
                                     f"printing /{pattern}/:\n{self.output()}")
            with self.lock:
                for l in self.lines:
                    mm = rx.search(l)
                    if mm:
                        return mm
            return None

        return wait_until(find, timeout, what=f"{self.name} to print /{pattern}/")

    def send(self, sig):
        if self.p.poll() is None:
            self.p.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=15.0):
        """Stop the process; returns its exit code (kills it after the timeout)."""
        if self.p.poll() is None:
            self.p.send_signal(sig)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(5)
        self.t.join(2)
        if not self.t.is_alive() and self.p.stdout:
            self.p.stdout.close()
        return self.p.returncode

    def rss_kb(self):
        with open(f"/proc/{self.p.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0


class Mock:
    def __init__(self, threads=2, tls=None, extra=()):
        """tls: None, or the certificate base name in CERTS ("server", "wrongname", ...)."""
        argv = [MOCK_BIN, "--listen", "127.0.0.1:0", "--threads", str(threads), *extra]
        if tls:
            argv += ["--tls-cert", os.path.join(CERTS, tls + ".crt"),
                     "--tls-key", os.path.join(CERTS, tls + ".key")]
        self.proc = Proc(argv, name="mock-upstream")
        m = self.proc.wait_line(r"mock-upstream ready on [\d.]+:(\d+)")
        self.port = int(m.group(1))
        self.tls = bool(tls)

    def url(self):
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}/v1"

    def admin(self, method, path, body=None):
        if self.tls:
            import ssl
            ctx = ssl.create_default_context(cafile=os.path.join(CERTS, "ca.crt"))
            c = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=10, context=ctx)
        else:
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        data = json.dumps(body).encode() if body is not None else None
        c.request(method, path, body=data, headers={"Content-Type": "application/json"})
        r = c.getresponse()
        out = r.read()
        c.close()
        return json.loads(out) if out else None

    def stats(self):
        return self.admin("GET", "/_mock/stats")

    def last(self):
        return self.admin("GET", "/_mock/last")

    def script(self, **kw):
        return self.admin("POST", "/_mock/script", kw)

    def reset(self):
        return self.admin("POST", "/_mock/reset", {})

    def stop(self):
        return self.proc.stop()


def yaml_str(s):
    return json.dumps(s)  # JSON strings are valid YAML scalars


class Gateway:
    """llmgate on a generated config. providers: list of dicts
    {name, url, keys: [(name, secret, {limits})], auth, extra...}; models: list of dicts
    {name, aliases, deployments: [(provider, model, weight, priority)], fallbacks}."""

    def __init__(self, providers, models, workers=2, extra_yaml="", limits=None, policy=None,
                 env=None, state_dir=None, start=True, clients=None):
        self.tmp = tempfile.mkdtemp(prefix="llmgate-test-")
        self.state_dir = state_dir or os.path.join(self.tmp, "state")
        self.env = dict(os.environ)
        self.env.update(env or {})
        lines = ["listen: [\"127.0.0.1:0\"]", f"workers: {workers}",
                 "allow_unauthenticated: true" if not clients else "",
                 f"state_dir: {yaml_str(self.state_dir)}", "shutdown_timeout_ms: 5000"]
        if limits:
            lines.append("limits:")
            lines += [f"  {k}: {v}" for k, v in limits.items()]
        if policy:
            lines.append("policy:")
            lines += [f"  {k}: {v}" for k, v in policy.items()]
        lines.append("providers:")
        for p in providers:
            lines.append(f"  - name: {p['name']}")
            lines.append(f"    base_url: {yaml_str(p['url'])}")
            for k in ("api", "auth", "auth_header", "ca_file", "connect_timeout_ms",
                      "first_byte_timeout_ms", "idle_timeout_ms",
                      "first_byte_timeout_per_1k_tokens_ms", "first_byte_timeout_max_ms"):
                if k in p:
                    lines.append(f"    {k}: {yaml_str(p[k]) if isinstance(p[k], str) else p[k]}")
            lines.append("    keys:")
            for kname, secret, lim in p["keys"]:
                var = "LLMGATE_TEST_SECRET_" + re.sub(r"[^A-Za-z0-9]", "_", kname).upper()
                self.env[var] = secret
                lines.append(f"      - name: {kname}")
                lines.append(f"        secret_env: {var}")
                for k, v in (lim or {}).items():
                    lines.append(f"        {k}: {v}")
        lines.append("models:")
        for m in models:
            lines.append(f"  - name: {yaml_str(m['name'])}")
            if m.get("aliases"):
                lines.append(f"    aliases: {json.dumps(m['aliases'])}")
            lines.append("    deployments:")
            for d in m["deployments"]:
                prov, model = d[0], d[1]
                weight = d[2] if len(d) > 2 else 1
                prio = d[3] if len(d) > 3 else 1
                lines.append(f"      - {{provider: {prov}, model: {yaml_str(model)}, "
                             f"weight: {weight}, priority: {prio}}}")
            if m.get("fallbacks"):
                lines.append(f"    fallbacks: {json.dumps(m['fallbacks'])}")
        self.config_text = "\n".join(lines) + "\n" + extra_yaml
        self.config = os.path.join(self.tmp, "llmgate.yaml")
        with open(self.config, "w") as f:
            f.write(self.config_text)
        self.proc = None
        # Every secret this gateway was given (upstream keys, client keys in the env): at stop
        # its whole output and its store are searched for them - in every integration test.
        self.secrets = [v for k, v in self.env.items()
                        if k.startswith(("LLMGATE_TEST_SECRET_", "LLMGATE_TEST_CLIENT_")) and v]
        if start:
            self.start()

    def start(self):
        self.proc = Proc([LLMGATE_BIN, "--config", self.config], env=self.env, name="llmgate")
        m = self.proc.wait_line(r"listening on \S+ \(port (\d+)\)")
        self.port = int(m.group(1))
        self.proc.wait_line(r"ready:")
        return self

    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def conn(self, timeout=30):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def stop(self, sig=signal.SIGTERM):
        rc = self.proc.stop(sig) if self.proc else None
        self.check_no_secrets()
        return rc

    def check_no_secrets(self):
        """No secret in anything this gateway printed, nor in its store file."""
        blobs = [("its output", self.proc.output().encode() if self.proc else b"")]
        store = os.path.join(self.state_dir, "data.mdb")
        if os.path.exists(store):
            with open(store, "rb") as f:
                blobs.append(("its store " + store, f.read()))
        for s in self.secrets:
            for what, blob in blobs:
                if s.encode() in blob:
                    raise AssertionError(f"a configured secret appears in {what}")

    def cleanup(self):
        if self.proc and self.proc.p.poll() is None:
            self.proc.stop(signal.SIGKILL)
        try:
            self.check_no_secrets()
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)


def simple_gateway(mock, keys=(("k1", "sk-test-1"),), model="gpt-4o-mini",
                   upstream_model=None, **kw):
    """One provider on the mock with the given keys, one model (alias 'mini')."""
    prov = {"name": "mock", "url": mock.url(),
            "keys": [(n, s, None) for n, s in keys]}
    prov.update(kw.pop("provider_extra", {}))
    return Gateway([prov], [{"name": model, "aliases": ["mini"],
                             "deployments": [("mock", upstream_model or model)]}], **kw)


def post_json(port, path, obj, headers=None, timeout=30):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    body = json.dumps(obj).encode() if not isinstance(obj, (bytes, str)) else (
        obj.encode() if isinstance(obj, str) else obj)
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    c.request("POST", path, body=body, headers=h)
    r = c.getresponse()
    data = r.read()
    hdrs = {k.lower(): v for k, v in r.getheaders()}
    c.close()
    return r.status, hdrs, data


def request(port, method, path, body=None, headers=None, timeout=30):
    """(status, headers with lower-case names, body bytes) of one request; body (when not
    None) sent as JSON, after Content-Type: application/json and the headers given."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    c.request(method, path, body=json.dumps(body) if body is not None else None, headers=h)
    r = c.getresponse()
    data = r.read()
    hdrs = {k.lower(): v for k, v in r.getheaders()}
    c.close()
    return r.status, hdrs, data


def sse_data(raw):
    """The data lines of an SSE body, parsed ([DONE] as the string)."""
    out = []
    for line in raw.decode().splitlines():
        if line.startswith("data: "):
            v = line[6:]
            out.append(v if v == "[DONE]" else json.loads(v))
    return out


def access_log_line(path, rid, timeout=10):
    """The first line of the access log at path that holds rid, parsed (waits for it)."""
    def find():
        try:
            with open(path) as f:
                return [json.loads(l) for l in f if rid in l]
        except FileNotFoundError:
            return []
    return wait_until(find, timeout, what=f"the access log line of {rid}")[0]


def get(port, path, timeout=30):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    c.request("GET", path)
    r = c.getresponse()
    data = r.read()
    hdrs = {k.lower(): v for k, v in r.getheaders()}
    c.close()
    return r.status, hdrs, data


def raw_exchange(port, data, timeout=10, read_until_close=True):
    """Send raw bytes, return everything received until the peer closes (or timeout)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            out += chunk
            if not read_until_close:
                break
        return out
    finally:
        s.close()


def assert_openai_error(tc, status_got, body, status, code=None):
    tc.assertEqual(status_got, status, body)
    j = json.loads(body)
    tc.assertIn("error", j)
    for k in ("message", "type", "param", "code"):
        tc.assertIn(k, j["error"])
    if code is not None:
        tc.assertEqual(j["error"]["code"], code, body)
    return j
