#!/usr/bin/env python3
"""Development mock of the llmgate admin API + dashboard files.

Not used by the product. Python 3 standard library only.

    python3 devserver.py --port 8089 [--read-only] [--token dev-token] [--evil]

Serves /dashboard (and /) -> dashboard.html, /dashboard.css, /dashboard.js
(re-read from disk on every request) and fake /api/* documents with
slowly changing traffic. Actions accept "Authorization: Bearer <token>".
"""
import argparse
import hashlib
import json
import math
import os
import random
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; "
       "img-src 'self' data:; connect-src 'self'; base-uri 'none'; "
       "form-action 'none'; frame-ancestors 'none'")
FILES = {"/": "dashboard.html", "/dashboard": "dashboard.html",
         "/dashboard.html": "dashboard.html",
         "/dashboard.css": "dashboard.css", "/dashboard.js": "dashboard.js"}
CTYPES = {"html": "text/html; charset=utf-8", "css": "text/css; charset=utf-8",
          "js": "text/javascript; charset=utf-8"}
RANGES = {"1h": (3600, 60), "6h": (6 * 3600, 300), "24h": (86400, 900),
          "7d": (7 * 86400, 3600), "30d": (30 * 86400, 6 * 3600),
          "90d": (90 * 86400, 86400)}
OUTCOMES = ["success", "rate_limited", "server_error", "timeout", "connect",
            "auth", "other", "cancelled"]
# model -> (req/s, latency p50 ms, ttfb p50 ms, $/M prompt, $/M completion, age days)
MODELS = {"gpt-4o-mini": (2.4, 640, 230, 0.15, 0.60, 400),
          "claude-3-5-haiku": (0.9, 910, 380, 0.80, 4.00, 19)}
KEYMODEL = {"openai-main": "gpt-4o-mini", "openai-backup": "gpt-4o-mini",
            "anthropic-1": "claude-3-5-haiku"}

LOCK = threading.Lock()
STATE = {"keys": {}, "events": [], "last": 0.0}
ARGS = None


def now_ms():
    return int(time.time() * 1000)


def rnd(*parts):
    h = hashlib.md5(":".join(map(str, parts)).encode()).digest()
    return int.from_bytes(h[:4], "big") / 2 ** 32


def bucket(name, t0, step_s):
    """Fake aggregate for [t0, t0+step) seconds of model/key `name`."""
    model = KEYMODEL.get(name, name)
    rate, p50, ttfb, pin, pout, age = MODELS.get(model, MODELS["gpt-4o-mini"])
    if name in KEYMODEL:
        rate *= {"openai-main": 0.7, "openai-backup": 0.3}.get(name, 1.0)
    if t0 < time.time() - age * 86400:
        return None
    hour = (t0 % 86400) / 3600
    diurnal = 1 + 0.45 * math.sin((hour - 8) / 24 * 2 * math.pi)
    noise = 0.75 + 0.5 * rnd(name, step_s, t0)
    req = int(rate * step_s * diurnal * noise)
    spike = rnd("spike", name, step_s, t0) > 0.93
    erate = (0.08 + 0.1 * rnd("e", name, t0)) if spike else 0.004 + 0.02 * rnd("e", name, t0)
    err = int(round(req * erate))
    lat = int(p50 * (0.85 + 0.3 * rnd("l", name, step_s, t0)) * (1.4 if spike else 1))
    tt = int(ttfb * (0.85 + 0.3 * rnd("t", name, step_s, t0)))
    return dict(req=req, err=err, lat=lat, ttfb=tt, pin=pin, pout=pout)


def point(name, t0, step_s, frac=1.0):
    b = bucket(name, t0, step_s)
    if b and frac < 1:
        b["req"] = int(b["req"] * frac)
        b["err"] = min(b["err"], b["req"])
    req = b["req"] if b else 0
    err = b["err"] if b else 0
    oc = dict.fromkeys(OUTCOMES, 0)
    oc["rate_limited"] = err // 2
    oc["server_error"] = err - err // 2 - err // 5
    oc["timeout"] = err // 5
    oc["cancelled"] = req // 200
    oc["success"] = req - err - oc["cancelled"]
    succ = oc["success"]
    pt = succ * 820
    ct = succ * 260
    cost = int(pt * b["pin"] + ct * b["pout"]) if b else 0
    lat = ({"p50": b["lat"], "p95": int(b["lat"] * 1.9), "p99": int(b["lat"] * 2.7)}
           if succ else {"p50": None, "p95": None, "p99": None})
    tt = ({"p50": b["ttfb"], "p95": int(b["ttfb"] * 1.7), "p99": int(b["ttfb"] * 2.4)}
          if succ else {"p50": None, "p95": None, "p99": None})
    return {"requests": req, "errors": err, "outcomes": oc,
            "error_rate": (err / req) if req else None,
            "prompt_tokens": pt, "completion_tokens": ct, "tokens": pt + ct,
            "cost_micro_usd": cost, "cost_usd": cost / 1e6, "samples": succ,
            "latency_ms": lat, "ttfb_ms": tt}


def spend(name, start, days):
    """Sum of daily buckets [start, start+days) (dates, UTC)."""
    s = {"start": start.isoformat(), "requests": 0, "prompt_tokens": 0,
         "completion_tokens": 0, "tokens": 0, "cost_micro_usd": 0}
    now = time.time()
    for i in range(days):
        d = start + timedelta(days=i)
        t0 = int(datetime(d.year, d.month, d.day, tzinfo=timezone.utc).timestamp())
        if t0 > now:
            break
        frac = min(1.0, (now - t0) / 86400)
        p = point(name, t0, 86400, frac)
        for k in ("requests", "prompt_tokens", "completion_tokens", "tokens", "cost_micro_usd"):
            s[k] += p[k]
    s["cost_usd"] = s["cost_micro_usd"] / 1e6
    return s


def series(name, scope, rng):
    span, step = RANGES[rng]
    now = time.time()
    to = (int(now) // step + 1) * step
    frm = to - span
    pts, tot = [], None
    for t0 in range(frm, to, step):
        frac = min(1.0, max(0.0, (now - t0) / step))
        p = point(name, t0, step, frac)
        pts.append(dict({"t_ms": t0 * 1000}, **p))
    # total: sums; percentiles of the total approximated by request-weighted mean
    tot = {k: sum(p[k] for p in pts) for k in
           ("requests", "errors", "prompt_tokens", "completion_tokens", "tokens",
            "cost_micro_usd", "samples")}
    tot["outcomes"] = {o: sum(p["outcomes"][o] for p in pts) for o in OUTCOMES}
    tot["error_rate"] = tot["errors"] / tot["requests"] if tot["requests"] else None
    tot["cost_usd"] = tot["cost_micro_usd"] / 1e6
    for f in ("latency_ms", "ttfb_ms"):
        w = [(p[f], p["samples"]) for p in pts if p["samples"]]
        n = sum(s for _, s in w)
        tot[f] = {q: (int(sum(v[q] * s for v, s in w) / n) if n else None)
                  for q in ("p50", "p95", "p99")}
    today = datetime.now(timezone.utc).date()
    days = [spend(name, today - timedelta(days=30 - i), 1) for i in range(31)]
    monday = today - timedelta(days=today.weekday())
    weeks = [spend(name, monday - timedelta(weeks=11 - i), 7) for i in range(12)]
    months = []
    y, m = today.year, today.month
    firsts = []
    for _ in range(12):
        firsts.append(datetime(y, m, 1).date())
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)
    for f in reversed(firsts):
        nxt = (f.replace(day=28) + timedelta(days=4)).replace(day=1)
        months.append(spend(name, f, (nxt - f).days))
    return {"scope": scope, "name": name, "points": pts, "total": tot,
            "days": days, "weeks": weeks, "months": months}, frm * 1000, to * 1000, step * 1000


# ---------------------------------------------------------------- key state

def add_event(key, event, status="", reason="none", arg=0, text=""):
    STATE["events"].insert(0, {"key": key, "ts_ms": now_ms(), "event": event,
                               "status": status, "reason": reason, "arg": arg,
                               "pid": os.getpid(), "text": text})
    del STATE["events"][200:]


def new_key(name, provider, rpm, rpd, tpm):
    t = now_ms() - 40 * 86400000
    k = {"name": name, "fingerprint": hashlib.sha256(name.encode()).hexdigest()[:12],
         "provider": provider, "state": "active", "status": "active", "reason": "none",
         "status_text": "active", "orphaned": False, "status_since_ms": t,
         "cooldown_until_ms": 0, "cooldown_left_ms": 0, "limited_by": [],
         "rpm_used": 0, "rpm_limit": rpm, "rpd_used": 0, "rpd_limit": rpd,
         "rpd_resets_at_ms": 0, "tpm_used": 0, "tpm_limit": tpm, "inflight": 0,
         "max_inflight": 16, "weight": 1, "day_offset_s": 0,
         "latency_ms": {"samples": 0, "p50": None, "p95": None, "p99": None},
         "ttfb_ms": {"p50": None, "p95": None, "p99": None},
         "ewma_total_ms": None, "ewma_ttfb_ms": None, "requests": 0,
         "outcomes": dict.fromkeys(OUTCOMES, 0), "outcomes_total": 0, "errors": 0,
         "error_rate": None, "consecutive_failures": 0, "consecutive_successes": 0,
         "last_error_code": 0, "last_error_ms": 0, "prompt_tokens": 0,
         "completion_tokens": 0, "tokens": 0, "cost_usd": 0.0, "cost_micro_usd": 0,
         "last_admit_ms": 0, "created_ms": t, "updated_ms": t}
    STATE["keys"][name] = k
    add_event(name, "created", "active", text="key created from config")


def set_status(k, state, reason, text, until=0):
    k["state"] = k["status"] = state
    k["reason"] = reason
    k["status_since_ms"] = now_ms()
    k["cooldown_until_ms"] = until
    add_event(k["name"], "status" if reason not in ("admin",) else
              {"cooling": "cooldown", "disabled": "disable", "active": "enable"}[state],
              state, reason, until, text)


def simulate():
    now = time.time()
    dt = min(30.0, now - STATE["last"]) if STATE["last"] else 1.0
    STATE["last"] = now
    nm = now_ms()
    for name, k in STATE["keys"].items():
        model = KEYMODEL.get(name, "gpt-4o-mini")
        rate, p50, ttfb, pin, pout, _ = MODELS[model]
        share = {"openai-main": 0.7, "openai-backup": 0.3}.get(name, 1.0)
        st = k["state"]
        if st == "cooling" and nm >= k["cooldown_until_ms"]:
            set_status(k, "half_open", "probe", "cooldown over, probing")
        elif st == "half_open" and nm - k["status_since_ms"] > 4000:
            set_status(k, "active", "none", "probe succeeded")
        elif st == "active" and name == "openai-backup" and random.random() < dt / 90:
            k["last_error_code"], k["last_error_ms"] = 429, nm
            set_status(k, "cooling", "rate_limited", "upstream 429, retry-after 60s",
                       nm + 60000)
        live = k["state"] in ("active", "half_open")
        n = int(rate * share * dt * random.uniform(0.6, 1.4)) if live else 0
        e = sum(1 for _ in range(n) if random.random() < 0.015)
        oc = k["outcomes"]
        oc["success"] += n - e
        oc["server_error"] += e - e // 2
        oc["timeout"] += e // 2
        k["requests"] += n
        k["errors"] += e
        k["outcomes_total"] = sum(oc.values())
        k["error_rate"] = k["errors"] / k["outcomes_total"] if k["outcomes_total"] else None
        pt, ct = (n - e) * random.randint(700, 900), (n - e) * random.randint(200, 300)
        k["prompt_tokens"] += pt
        k["completion_tokens"] += ct
        k["tokens"] = k["prompt_tokens"] + k["completion_tokens"]
        k["cost_micro_usd"] += int(pt * pin + ct * pout)
        k["cost_usd"] = k["cost_micro_usd"] / 1e6
        k["rpm_used"] = int(rate * share * 60 * random.uniform(0.8, 1.2)) if live else 0
        k["rpd_used"] = min(k["rpd_limit"] or 10 ** 9, int(k["requests"] % 100000))
        k["tpm_used"] = k["rpm_used"] * 1080
        k["inflight"] = random.randint(0, 5) if live else 0
        k["limited_by"] = []
        if k["rpm_limit"] and k["rpm_used"] >= k["rpm_limit"]:
            k["limited_by"].append("rpm")
        if k["requests"]:
            l = int(p50 * random.uniform(0.9, 1.1))
            k["latency_ms"] = {"samples": min(4096, k["outcomes"]["success"]),
                               "p50": l, "p95": int(l * 1.9), "p99": int(l * 2.7)}
            t = int(ttfb * random.uniform(0.9, 1.1))
            k["ttfb_ms"] = {"p50": t, "p95": int(t * 1.7), "p99": int(t * 2.4)}
            k["ewma_total_ms"], k["ewma_ttfb_ms"] = int(l * 1.1), int(t * 1.05)
        if n:
            k["last_admit_ms"] = nm
        left = max(0, k["cooldown_until_ms"] - nm) if k["state"] == "cooling" else 0
        k["cooldown_left_ms"] = left
        k["status_text"] = {
            "cooling": "cooling %ds" % math.ceil(left / 1000),
            "disabled": "disabled (%s)" % k["reason"],
            "half_open": "half_open (probing)"}.get(k["state"], k["state"])
        tomorrow = (datetime.now(timezone.utc).date() + timedelta(days=1))
        k["rpd_resets_at_ms"] = int(datetime(tomorrow.year, tomorrow.month, tomorrow.day,
                                             tzinfo=timezone.utc).timestamp() * 1000)
        k["updated_ms"] = nm


def init_state(evil):
    new_key("openai-main", "openai", 500, 0, 200000)
    new_key("openai-backup", "openai", 60, 10000, 100000)
    new_key("anthropic-1", "anthropic", 0, 0, 0)
    if evil:
        new_key('<img src=x onerror=alert(1)>"&/x', "<b>prov</b>", 10, 10, 10)
    # warm counters up with some history
    for _ in range(120):
        STATE["last"] = time.time() - 30
        simulate()
    k = STATE["keys"]["openai-backup"]
    k["last_error_code"], k["last_error_ms"] = 429, now_ms()
    set_status(k, "cooling", "rate_limited", "upstream 429, retry-after 75s",
               now_ms() + 75000)
    simulate()


def providers():
    out = {}
    for k in STATE["keys"].values():
        p = out.setdefault(k["provider"], {
            "name": k["provider"], "circuit": "closed", "circuit_reason": "none",
            "circuit_since_ms": now_ms() - 3600000, "open_until_ms": 0, "open_left_ms": 0,
            "consecutive_failures": 0, "failures": 0, "updated_ms": now_ms(),
            "circuit_text": "closed", "keys": 0, "keys_available": 0, "requests": 0,
            "outcomes_total": 0, "errors": 0, "error_rate": None})
        p["keys"] += 1
        p["keys_available"] += k["state"] in ("active", "half_open")
        p["requests"] += k["requests"]
        p["outcomes_total"] += k["outcomes_total"]
        p["errors"] += k["errors"]
    for p in out.values():
        p["failures"] = p["errors"]
        p["error_rate"] = p["errors"] / p["outcomes_total"] if p["outcomes_total"] else None
        if not p["keys_available"]:
            p["circuit"], p["circuit_reason"] = "open", "server_error"
            p["open_until_ms"], p["open_left_ms"] = now_ms() + 20000, 20000
            p["circuit_text"] = "open 20s"
    return list(out.values())


# ---------------------------------------------------------------- HTTP

class Handler(BaseHTTPRequestHandler):
    server_version = "llmgate-devserver"

    def log_message(self, fmt, *a):
        if ARGS.verbose:
            super().log_message(fmt, *a)

    def send(self, code, body, ctype="application/json"):
        if isinstance(body, (dict, list)):
            body = json.dumps(body, separators=(",", ":")) + "\n"
        if isinstance(body, str):
            body = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def err(self, code, msg, typ="invalid_request_error", ecode="bad_request"):
        self.send(code, {"error": {"message": msg, "type": typ, "param": None, "code": ecode}})

    def doc(self, command, **kw):
        return dict({"schema": 1, "command": command, "generated_ms": now_ms(),
                     "state_dir": "/var/lib/llmgate"}, **kw)

    def do_GET(self):
        u = urlsplit(self.path)
        q = {k: v[-1] for k, v in parse_qs(u.query).items()}
        if u.path in FILES:
            fn = FILES[u.path]
            try:
                with open(os.path.join(HERE, fn), "rb") as f:
                    data = f.read()
            except OSError:
                return self.err(404, "missing " + fn, ecode="not_found")
            return self.send(200, data, CTYPES[fn.rsplit(".", 1)[1]])
        if ARGS.delay:
            time.sleep(ARGS.delay)
        with LOCK:
            simulate()
            if u.path == "/api/session":
                return self.send(200, self.doc("session", version="0.9.0-dev",
                                               actions=not ARGS.read_only))
            if u.path == "/api/keys":
                return self.send(200, self.doc("keys", keys=list(STATE["keys"].values())))
            if u.path == "/api/providers":
                return self.send(200, self.doc("providers", providers=providers()))
            if u.path == "/api/events":
                try:
                    lim = max(1, min(1000, int(q.get("limit", "50"))))
                except ValueError:
                    return self.err(400, "bad limit")
                return self.send(200, self.doc("events", events=STATE["events"][:lim]))
        if u.path == "/api/stats":
            rng, scope = q.get("range", "1h"), q.get("scope", "model")
            if rng not in RANGES:
                return self.err(400, "range must be one of " + ",".join(RANGES))
            if scope not in ("model", "key"):
                return self.err(400, "scope must be model or key")
            names = list(MODELS) if scope == "model" else list(STATE["keys"])
            if "name" in q:
                names = [n for n in names if n == q["name"]]
            ser, frm, to, step = [], 0, 0, RANGES[rng][1] * 1000
            for n in names:
                s, frm, to, step = series(n, scope, rng)
                ser.append(s)
            return self.send(200, self.doc("stats", range=rng, scope=scope, step_ms=step,
                                           from_ms=frm, to_ms=to, series=ser))
        self.err(404, "no such endpoint", ecode="not_found")

    do_HEAD = do_GET

    def do_POST(self):
        u = urlsplit(self.path)
        q = {k: v[-1] for k, v in parse_qs(u.query).items()}
        parts = u.path.split("/")
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        if len(parts) != 5 or parts[1:3] != ["api", "keys"] or \
                parts[4] not in ("cooldown", "disable", "enable"):
            return self.err(404, "no such endpoint", ecode="not_found")
        if ARGS.read_only:
            return self.err(403, "actions are disabled: no admin token configured",
                            "permission_error", "actions_disabled")
        if self.headers.get("Authorization", "") != "Bearer " + ARGS.token:
            return self.err(401, "missing or wrong admin token", "authentication_error",
                            "invalid_token")
        name, action = unquote(parts[3]), parts[4]
        with LOCK:
            simulate()
            k = STATE["keys"].get(name)
            if not k:
                return self.err(404, "no such key: " + name, ecode="key_not_found")
            if action == "cooldown":
                try:
                    d = int(q.get("duration_ms", ""))
                    assert 1000 <= d <= 7 * 86400000
                except (ValueError, AssertionError):
                    return self.err(400, "duration_ms must be 1000..604800000")
                set_status(k, "cooling", "admin", "cooldown by admin", now_ms() + d)
            elif action == "disable":
                set_status(k, "disabled", "admin", "disabled by admin")
            else:
                set_status(k, "active", "admin", "enabled by admin")
                k["reason"] = "none"
            simulate()
            return self.send(200, self.doc("action", action=action, key=k))


def main():
    global ARGS
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8089)
    ap.add_argument("--token", default="dev-token")
    ap.add_argument("--read-only", action="store_true", help='session says "actions": false')
    ap.add_argument("--evil", action="store_true", help="add a key with an HTML-ish name")
    ap.add_argument("--delay", type=float, default=0, help="seconds to delay API answers")
    ap.add_argument("-v", "--verbose", action="store_true")
    ARGS = ap.parse_args()
    init_state(ARGS.evil)
    srv = ThreadingHTTPServer((ARGS.host, ARGS.port), Handler)
    print("llmgate dashboard devserver on http://%s:%d/dashboard" % (ARGS.host, ARGS.port))
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
