#!/usr/bin/env python3
"""dash_poll.py - what an open dashboard does to llmgate: every INTERVAL seconds, fetch the
documents the page polls (session, keys, providers, stats, events) from the admin listener,
each on its own connection, until killed. Prints POLLS n errors e on SIGTERM.
Usage: dash_poll.py --port P [--interval S]"""

import argparse
import http.client
import signal
import sys
import time

PATHS = ["/api/session", "/api/keys", "/api/providers", "/api/stats?range=1h&scope=model",
         "/api/events?limit=50"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--interval", type=float, default=1.0)
    a = ap.parse_args()
    polls = errors = 0

    def done(*_):
        print(f"POLLS {polls} errors {errors}", flush=True)
        sys.exit(0)
    signal.signal(signal.SIGTERM, done)
    signal.signal(signal.SIGINT, done)
    while True:
        t0 = time.monotonic()
        for p in PATHS:
            try:
                c = http.client.HTTPConnection("127.0.0.1", a.port, timeout=10)
                c.request("GET", p)
                r = c.getresponse()
                r.read()
                c.close()
                errors += r.status != 200
            except OSError:
                errors += 1
        polls += 1
        time.sleep(max(0.0, a.interval - (time.monotonic() - t0)))


if __name__ == "__main__":
    main()
