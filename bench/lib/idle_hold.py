#!/usr/bin/env python3
"""bench/lib/idle_hold.py - opens N keep-alive connections to a loopback port and holds them.

Each connection sends one request (by default the same POST chat request as wrk), reads the
whole response (Content-Length or chunked) and then stays open and idle: a keep-alive
client between two requests, which is what a gateway holds most of its connections in.

    idle_hold.py --port P [--count 10000] [--no-request] [--key K] [--concurrency 256]

Prints "HELD ok=N failed=M seconds=S" once every connection is set up, then waits for
SIGTERM or SIGINT and prints "DONE still_open=N closed_by_peer=M" before it exits.
Standard library only. Raises its own RLIMIT_NOFILE to the hard limit.
"""
import argparse
import asyncio
import resource
import signal
import sys
import time

BODY = (b'{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a helpful '
        b'assistant. Answer briefly."},{"role":"user","content":"Say hello to the benchmark '
        b'in one short sentence."}],"max_tokens":64,"temperature":0.2}')


def request(host, port, key):
    return (b"POST /v1/chat/completions HTTP/1.1\r\n"
            b"Host: %s:%d\r\nContent-Type: application/json\r\nAccept: application/json\r\n"
            b"Authorization: Bearer %s\r\nContent-Length: %d\r\n\r\n"
            % (host.encode(), port, key.encode(), len(BODY))) + BODY


async def read_response(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length, chunked = None, False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value.strip())
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass  # trailer fields, then the empty line
                break
            await reader.readexactly(size + 2)
    elif length:
        await reader.readexactly(length)
    return status


class Holder:
    def __init__(self, args):
        self.args = args
        self.conns = []
        self.failed = 0
        self.closed_by_peer = 0
        self.req = None if args.no_request else request(args.host, args.port, args.key)

    async def open_one(self, sem):
        async with sem:
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(self.args.host, self.args.port), 10)
                if self.req:
                    writer.write(self.req)
                    status = await asyncio.wait_for(read_response(reader), 10)
                    if status != 200:
                        raise RuntimeError("status %d" % status)
                self.conns.append((reader, writer))
            except Exception as e:  # noqa: BLE001 - counted, first one shown
                if self.failed == 0:
                    print("first failure: %r" % (e,), file=sys.stderr)
                self.failed += 1

    async def watch(self, reader):
        # An idle keep-alive connection gets nothing; EOF means the server closed it.
        try:
            data = await reader.read(1)
            if not data:
                self.closed_by_peer += 1
        except (ConnectionError, asyncio.CancelledError):
            self.closed_by_peer += 1

    async def main(self):
        t0 = time.monotonic()
        sem = asyncio.Semaphore(self.args.concurrency)
        await asyncio.gather(*(self.open_one(sem) for _ in range(self.args.count)))
        print("HELD ok=%d failed=%d seconds=%.2f"
              % (len(self.conns), self.failed, time.monotonic() - t0), flush=True)
        watchers = [asyncio.ensure_future(self.watch(r)) for r, _ in self.conns]
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for s in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(s, stop.set)
        await stop.wait()
        await asyncio.sleep(0)
        open_now = sum(1 for w in watchers if not w.done())
        print("DONE still_open=%d closed_by_peer=%d" % (open_now, self.closed_by_peer), flush=True)
        for w in watchers:
            w.cancel()
        for _, writer in self.conns:
            writer.transport.abort()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--concurrency", type=int, default=256)
    ap.add_argument("--key", default="sk-bench")
    ap.add_argument("--no-request", action="store_true", help="connect only, send nothing")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = args.count + 64
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(want, soft)), hard))
    asyncio.run(Holder(args).main())


if __name__ == "__main__":
    main()
