#!/usr/bin/env python3
"""bench/report.py - turns the raw figures of bench/run.sh into a report.

    report.py --raw bench/results/raw-TS --out bench/results/report-TS

Reads RAW/runs.csv (one row per wrk run), RAW/idle.csv (connection scaling) and
RAW/meta.env; writes OUT.md, OUT.csv (medians per mode and target), OUT-idle.csv and, when
gnuplot is installed, OUT.png (req/s and p99 per target). Prints the Markdown on stdout.
Standard library only. It reports; it asserts nothing (the exit status is 0 unless the
input is missing).
"""
import argparse
import csv
import os
import shutil
import statistics
import subprocess
import sys

TARGETS = ["direct", "llmgate", "nginx"]
MODES = ["chat", "stream", "responses-stream", "messages-stream", "xlate-chat-stream",
         "xlate-messages-stream"]
MODE_NAME = {"chat": "non-streaming", "stream": "streaming (SSE)",
             "responses-stream": "Responses API, streaming (SSE)",
             "messages-stream": "Anthropic Messages, streaming (SSE)",
             "xlate-chat-stream": "chat SSE translated from Anthropic Messages",
             "xlate-messages-stream": "Anthropic Messages SSE translated from chat"}
MODE_REQUEST = {"chat": "POST /v1/chat/completions",
                "stream": "POST /v1/chat/completions, stream: true; ends with data: [DONE]",
                "responses-stream": "POST /v1/responses, stream: true (store left to its "
                                    "default, true: llmgate records each response's key); "
                                    "response.created ... response.completed, no [DONE]",
                "messages-stream": "POST /v1/messages, stream: true, x-api-key, to a model "
                                   "on api: anthropic providers; message_start ... "
                                   "message_stop",
                "xlate-chat-stream": "llmgate: the `stream` request to claude-bench-x, a model "
                                     "on api: anthropic providers: llmgate sends Anthropic "
                                     "Messages upstream and translates its events back into "
                                     "chat.completion.chunks, data: [DONE]. nginx and direct "
                                     "cannot translate: they run the `stream` request "
                                     "(nginx proxying chat SSE)",
                "xlate-messages-stream": "llmgate: the `messages-stream` request to gpt-bench-x, "
                                         "a model on OpenAI-compatible providers: llmgate "
                                         "sends chat completions upstream and translates the "
                                         "chunks into Anthropic events, message_start ... "
                                         "message_stop. nginx and direct cannot translate: "
                                         "they run the `messages-stream` request"}

# A translated mode and the passthrough mode of the same client it is compared with: the
# same request to a model whose providers speak the client's API, in the same run.
XLATE = {"xlate-chat-stream": "stream", "xlate-messages-stream": "messages-stream"}

# The standing targets, as ratios llmgate / nginx per mode: (metric, goal, higher_is_better).
# Plain chat: at least nginx's req/s at no more CPU; chat SSE: 1.1 x its req/s; the Responses
# and Messages streams: at least nginx's req/s at no more CPU (issue 13). p99: no worse.
GOALS = {
    "chat": [("rps", 1.0, True), ("cpu", 1.0, False), ("p99", 1.0, False)],
    "stream": [("rps", 1.1, True), ("cpu", 1.0, False), ("p99", 1.0, False)],
    "responses-stream": [("rps", 1.0, True), ("cpu", 1.0, False), ("p99", 1.0, False)],
    "messages-stream": [("rps", 1.0, True), ("cpu", 1.0, False), ("p99", 1.0, False)],
    # translated against nginx's passthrough: shown, no goal (nginx does not translate)
    "xlate-chat-stream": [("rps", None, True), ("cpu", None, False), ("p99", None, False)],
    "xlate-messages-stream": [("rps", None, True), ("cpu", None, False), ("p99", None, False)],
}
# Translated / passthrough, llmgate both (issue 14): CPU per request at most 1.5 x; req/s
# and p99 shown.
XLATE_GOALS = [("rps", None, True), ("cpu", 1.5, False), ("p99", None, False)]
LABEL = {"rps": "req/s", "cpu": "CPU per request", "p99": "p99"}


def goal_of(mode, metric):
    return next(g for m, g, _ in GOALS[mode] if m == metric)


def with_goal(r, goal, higher):
    """A ratio with its goal in brackets, or alone when there is none."""
    if goal is None:
        return "%.2f" % r
    return "%.2f (%s %.1f)" % (r, "≥" if higher else "≤", goal)


def ratio_rows(prefix, a, b, goals):
    """Rows of the ratio table: a / b per metric, the goal and whether it is met."""
    rows = []
    for metric, goal, higher in goals:
        r = ratio(a[metric], b[metric])
        met = "" if goal is None else ("yes" if (r >= goal if higher else r <= goal) else "no")
        rows.append([prefix + " " + LABEL[metric], "%.2f" % r,
                     "" if goal is None else ("≥ " if higher else "≤ ") + "%.1f" % goal, met])
    return rows


def read_meta(path):
    meta = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                k, sep, v = line.rstrip("\n").partition("=")
                if sep:
                    meta[k] = v
    return meta


def per_run(row):
    n = int(row["requests"])
    secs = int(row["duration_us"]) / 1e6
    hz = int(row["clk_tck"])
    k = n / 1000.0 if n else float("nan")
    return {
        "rps": n / secs if secs else 0.0,
        "p50": int(row["p50_us"]) / 1000.0,
        "p99": int(row["p99_us"]) / 1000.0,
        "cpu": int(row["cpu_ticks"]) * 1000.0 / hz / k,  # ms of CPU per 1,000 requests
        "mock_cpu": int(row["mock_cpu_ticks"]) * 1000.0 / hz / k,
        "wrk_cpu": int(row["wrk_cpu_ticks"]) * 1000.0 / hz / k,
        # CPU used during the run by everything else on the machine (other jobs, the shell):
        # the noise gauge, in % of all CPUs
        "others": max(0.0, 100.0 * (int(row["busy_ticks"]) - int(row["cpu_ticks"]) -
                                    (0 if row["target"] == "direct" else
                                     int(row["mock_cpu_ticks"])) - int(row["wrk_cpu_ticks"]))
                      / (hz * int(row["ncpu"]) * int(row["wall_us"]) / 1e6)),
        "hwm": int(row["hwm_kb"]) / 1024.0,
        "errors": int(row["errors"]),
        "requests": n,
    }


def summarize(rows):
    """Medians per (mode, target) over the rounds."""
    groups = {}
    for row in rows:
        groups.setdefault((row["mode"], row["target"]), []).append(per_run(row))
    out = {}
    for key, runs in groups.items():
        med = {m: statistics.median(r[m] for r in runs)
               for m in ("rps", "p50", "p99", "cpu", "mock_cpu", "wrk_cpu", "others", "hwm")}
        rps = [r["rps"] for r in runs]
        med["rps_spread"] = 100.0 * (max(rps) - min(rps)) / med["rps"] if med["rps"] else 0
        med["errors"] = sum(r["errors"] for r in runs)
        med["requests"] = sum(r["requests"] for r in runs)
        med["rounds"] = len(runs)
        out[key] = med
    return out


def ratio(a, b):
    return a / b if b else float("nan")


def md_table(header, rows):
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def write_chart(out, summary, modes):
    gp = shutil.which("gnuplot")
    if not gp:
        return None
    dat = out + ".dat"
    with open(dat, "w") as f:
        f.write("# target " + " ".join("%s_rps %s_p99" % (m, m) for m in modes) + "\n")
        for t in TARGETS:
            vals = []
            for m in modes:
                s = summary.get((m, t))
                vals += ["%.1f" % s["rps"], "%.3f" % s["p99"]] if s else ["0", "0"]
            f.write(t + " " + " ".join(vals) + "\n")
    png = out + ".png"
    rps_cols = ", ".join("'%s' using %d:xtic(1) title '%s'" % (dat, 2 + 2 * i, m)
                         for i, m in enumerate(modes))
    p99_cols = ", ".join("'%s' using %d:xtic(1) title '%s'" % (dat, 3 + 2 * i, m)
                         for i, m in enumerate(modes))
    script = f"""
set terminal pngcairo size {550 * max(2, len(modes))},450 font ',10' noenhanced
set output '{png}'
set multiplot layout 1,2
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set key top right
set grid ytics
set yrange [0:*]
set title 'requests/s (median, higher is better)'
plot {rps_cols}
set title 'p99 latency, ms (median, lower is better)'
plot {p99_cols}
unset multiplot
"""
    try:
        subprocess.run([gp], input=script, text=True, check=True, capture_output=True)
    except (subprocess.CalledProcessError, OSError) as e:
        err = getattr(e, "stderr", "") or str(e)
        print("report: gnuplot failed: %s" % err.strip()[:300], file=sys.stderr)
        return None
    finally:
        os.remove(dat)
    return png


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--raw", required=True)
    ap.add_argument("--out", required=True, help="path prefix of the report files")
    args = ap.parse_args()

    runs_path = os.path.join(args.raw, "runs.csv")
    if not os.path.exists(runs_path):
        sys.exit("report: %s is missing" % runs_path)
    with open(runs_path) as f:
        rows = list(csv.DictReader(f))
    meta = read_meta(os.path.join(args.raw, "meta.env"))
    idle = []
    if os.path.exists(os.path.join(args.raw, "idle.csv")):
        with open(os.path.join(args.raw, "idle.csv")) as f:
            idle = list(csv.DictReader(f))

    dash = []
    if os.path.exists(os.path.join(args.raw, "dashboard.csv")):
        with open(os.path.join(args.raw, "dashboard.csv")) as f:
            dash = list(csv.DictReader(f))

    summary = summarize(rows)
    modes = [m for m in MODES if any(k[0] == m for k in summary)]

    # ---- CSV ----
    with open(args.out + ".csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["mode", "target", "rounds", "requests", "rps_median", "rps_spread_pct",
                    "p50_ms", "p99_ms", "cpu_ms_per_1k_req", "mock_cpu_ms_per_1k_req",
                    "wrk_cpu_ms_per_1k_req", "peak_rss_mb", "errors", "others_cpu_pct"])
        for m in modes:
            for t in TARGETS:
                s = summary.get((m, t))
                if s:
                    w.writerow([m, t, s["rounds"], s["requests"], "%.0f" % s["rps"],
                                "%.1f" % s["rps_spread"], "%.3f" % s["p50"], "%.3f" % s["p99"],
                                "%.2f" % s["cpu"], "%.2f" % s["mock_cpu"], "%.2f" % s["wrk_cpu"],
                                "%.1f" % s["hwm"], s["errors"], "%.0f" % s["others"]])
    if idle:
        with open(args.out + "-idle.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(idle[0].keys()))
            w.writeheader()
            w.writerows(idle)

    png = write_chart(args.out, summary, modes)

    # ---- Markdown ----
    md = ["# llmgate benchmark %s" % meta.get("date", ""), ""]
    md.append("git %s, kernel %s, %s CPU(s) (%s); load average at start %s, at end %s."
              % (meta.get("git", "?"), meta.get("kernel", "?"), meta.get("ncpu", "?"),
                 meta.get("cpu", "?"), meta.get("loadavg_start", "?"),
                 meta.get("loadavg_end", "?")))
    md.append("")
    pin = ("servers (mock + target) pinned to CPU %s, wrk to CPU %s"
           % (meta.get("server_cpus"), meta.get("client_cpus"))) if meta.get("pin") == "1" \
        else "nothing pinned"
    md.append("%s rounds of %s s per target and mode, alternating direct -> llmgate -> nginx; "
              "wrk %s; %s; mock-upstream --threads %s; llmgate workers = nginx "
              "worker_processes = %s; nginx %s." % (
                  meta.get("rounds"), meta.get("seconds"), meta.get("wrk"), pin,
                  meta.get("mock_threads"), meta.get("workers"), meta.get("nginx")))
    md.append("")
    md.append("llmgate: 2 providers x 10 keys (rpm 10,000,000) on the mock for gpt-4o-mini "
              "(chat, stream, responses-stream) and gpt-bench-x (xlate-messages-stream)%s; "
              "auth: %s; "
              "metrics and access log configured: %s (metrics served: %s, access-log lines "
              "written: %s); nginx access log: %s." % (
                  ", 2 more with api: anthropic for claude-bench (messages-stream) and "
                  "claude-bench-x (xlate-chat-stream)"
                  if meta.get("llmgate_anthropic") == "1" else "",
                  meta.get("llmgate_auth"),
                  "yes" if meta.get("llmgate_obs_configured") == "1" else "no",
                  "yes" if meta.get("llmgate_metrics_served_after_warmup") == "1" else "no",
                  meta.get("llmgate_access_log_lines_end",
                           meta.get("llmgate_access_log_lines_after_warmup", "0")),
                  "on" if meta.get("nginx_access_log") == "1" else "off"))
    md.append("")
    md.append("Medians over the rounds. CPU = user+system time of the target's own processes "
              "(nginx: master and workers; direct: the mock) per 1,000 requests; mock CPU = "
              "the upstream's share of the same runs; peak RSS = VmHWM; spread = (max-min) / "
              "median of req/s over the rounds; others = CPU used meanwhile by everything but the "
              "target, the mock and wrk, in % of all CPUs (the noise gauge: should be ~0).")

    # one row per mode: the ratios against nginx side by side
    over = []
    for m in modes:
        g, n, d = (summary.get((m, "llmgate")), summary.get((m, "nginx")),
                   summary.get((m, "direct")))
        if not (g and n):
            continue
        over.append([m, "%.0f" % g["rps"], "%.0f" % n["rps"], "%.0f" % d["rps"] if d else "",
                     with_goal(ratio(g["rps"], n["rps"]), goal_of(m, "rps"), True),
                     "%.1f" % g["cpu"], "%.1f" % n["cpu"],
                     with_goal(ratio(g["cpu"], n["cpu"]), goal_of(m, "cpu"), False),
                     with_goal(ratio(g["p99"], n["p99"]), goal_of(m, "p99"), False),
                     g["errors"] + n["errors"] + (d["errors"] if d else 0)])
    if over:
        md += ["", "## Summary: llmgate against nginx, per mode", ""]
        md.append(md_table(["mode", "llmgate req/s", "nginx req/s", "direct req/s",
                            "req/s ratio (goal)", "llmgate CPU ms/1k", "nginx CPU ms/1k",
                            "CPU/req ratio (goal)", "p99 ratio (goal)", "errors"], over))
        if any(m in XLATE for m in modes):
            md.append("")
            md.append("In the xlate-* rows llmgate translates; nginx and direct, which cannot, "
                      "run the passthrough request of the same client (`stream`, "
                      "`messages-stream`): no goal against them.")

    # the translated modes against the passthrough path of the same run (issue 14)
    xl, notes = [], []
    for m in modes:
        if m not in XLATE:
            continue
        pm = XLATE[m]
        g, p, n = (summary.get((m, "llmgate")), summary.get((pm, "llmgate")),
                   summary.get((m, "nginx")))
        if not g:
            continue
        if not p:
            notes.append("%s: no `%s` run in this report, no translated/passthrough ratio "
                         "(run both modes: `--modes %s,%s`)." % (m, pm, pm, m))
            continue
        cpu_goal = next(goal for metric, goal, _ in XLATE_GOALS if metric == "cpu")
        r_cpu = ratio(g["cpu"], p["cpu"])
        xl.append([m, pm, "%.0f" % g["rps"], "%.0f" % p["rps"],
                   "%.2f" % ratio(g["rps"], p["rps"]), "%.1f" % g["cpu"], "%.1f" % p["cpu"],
                   with_goal(r_cpu, cpu_goal, False), "%.2f" % ratio(g["p99"], p["p99"]),
                   "%.2f" % ratio(g["rps"], n["rps"]) if n else "",
                   "%.2f" % ratio(g["cpu"], n["cpu"]) if n else "",
                   g["errors"] + p["errors"]])
        notes.append("%s: llmgate's CPU per request %.1f ms/1k, %.2f x its passthrough `%s` "
                     "(%.1f ms/1k; goal ≤ %.1f: %s)%s." % (
                         m, g["cpu"], r_cpu, pm, p["cpu"], cpu_goal,
                         "met" if r_cpu <= cpu_goal else "not met",
                         ", %.2f x nginx's passthrough (%.1f ms/1k)"
                         % (ratio(g["cpu"], n["cpu"]), n["cpu"]) if n else ""))
    if xl or notes:
        md += ["", "## Summary: llmgate translating against llmgate passing through", ""]
    if xl:
        md.append(md_table(["mode", "passthrough mode", "translated req/s",
                            "passthrough req/s", "req/s ratio", "translated CPU ms/1k",
                            "passthrough CPU ms/1k", "CPU/req ratio (goal)", "p99 ratio",
                            "translated/nginx req/s", "translated/nginx CPU/req",
                            "errors"], xl))
        md.append("")
    md += ["- " + n for n in notes]
    for m in modes:
        md += ["", "## %s (`%s`)" % (MODE_NAME[m], m), ""]
        md.append(MODE_REQUEST[m] + ".")
        md.append("")
        tab = []
        for t in TARGETS:
            s = summary.get((m, t))
            if not s:
                continue
            label = t if m not in XLATE or t == "llmgate" else "%s (`%s` request)" % (t, XLATE[m])
            tab.append([label, "%.0f" % s["rps"], "%.1f%%" % s["rps_spread"], "%.2f" % s["p50"],
                        "%.2f" % s["p99"], "%.1f" % s["cpu"], "%.1f" % s["mock_cpu"],
                        "%.1f" % s["hwm"], s["errors"], "%.0f%%" % s["others"]])
        md.append(md_table(["target", "req/s", "spread", "p50 ms", "p99 ms",
                            "CPU ms/1k req", "mock CPU ms/1k", "peak RSS MB", "errors",
                            "others"], tab))
        g, n, d = (summary.get((m, "llmgate")), summary.get((m, "nginx")),
                   summary.get((m, "direct")))
        if g and n:
            md.append("")
            rows_r = ratio_rows("llmgate/nginx", g, n, GOALS[m])
            rows_r.append(["llmgate/nginx peak RSS", "%.2f" % ratio(g["hwm"], n["hwm"]), "", ""])
            if d:
                rows_r.append(["llmgate/direct req/s", "%.2f" % ratio(g["rps"], d["rps"]), "",
                               ""])
                rows_r.append(["nginx/direct req/s", "%.2f" % ratio(n["rps"], d["rps"]), "",
                               ""])
            p = summary.get((XLATE[m], "llmgate")) if m in XLATE else None
            if p:
                rows_r += ratio_rows("llmgate translated/passthrough (`%s`)" % XLATE[m], g, p,
                                     XLATE_GOALS)
            md.append(md_table(["ratio", "value", "goal", "met"], rows_r))

    if idle:
        md += ["", "## %s idle keep-alive connections" % idle[0]["idle_requested"], ""]
        md.append("Each idle connection made one chat request, read the answer and stayed "
                  "open. RSS is VmRSS of the target's processes before and while they are "
                  "held; req/s from the %s-connection wrk run just before and during the hold."
                  % meta.get("wrk", "").split("-c ")[-1])
        md.append("")
        tab = []
        for r in idle:
            rb, rh = float(r["rss_before_kb"]) / 1024, float(r["rss_held_kb"]) / 1024
            held = int(r["idle_held"] or 0)
            per = (rh - rb) * 1024 / held if held else float("nan")
            tab.append([r["target"], "%s (%s failed)" % (r["idle_held"], r["idle_failed"]),
                        "%.1f" % rb, "%.1f" % rh, "%.2f" % per,
                        r["rps_before"], r["rps_held"],
                        "%.2f" % ratio(float(r["rps_held"] or 0), float(r["rps_before"] or 0)),
                        "%.2f / %.2f" % (int(r["p99_before_us"] or 0) / 1000,
                                         int(r["p99_held_us"] or 0) / 1000),
                        r["still_open"]])
        md.append(md_table(["target", "held", "RSS before MB", "RSS held MB", "KB per conn",
                            "req/s before", "req/s held", "held/before", "p99 ms before/held",
                            "still open at end"], tab))
        g = next((r for r in idle if r["target"] == "llmgate"), None)
        if g and g["rss_held_kb"]:
            md.append("")
            md.append("Goal (issue 8): %s idle connections in ≤ 100 MB RSS: %.1f MB (%s); "
                      "no loss of throughput for active clients: held/before %.2f."
                      % (g["idle_requested"], float(g["rss_held_kb"]) / 1024,
                         "met" if float(g["rss_held_kb"]) / 1024 <= 100 else "not met",
                         ratio(float(g["rps_held"] or 0), float(g["rps_before"] or 0))))
    if dash:
        def rps(r):
            return int(r["requests"]) / (int(r["duration_us"]) / 1e6)
        def cpu(r):  # ms per 1k requests
            hz = float(meta.get("clk_tck", 100) or 100)
            return int(r["cpu_ticks"]) * 1000 / hz / (int(r["requests"]) / 1000)
        closed = [rps(r) for r in dash if r["state"] == "closed"]
        opened = [rps(r) for r in dash if r["state"] == "open"]
        ccpu = [cpu(r) for r in dash if r["state"] == "closed"]
        ocpu = [cpu(r) for r in dash if r["state"] == "open"]
        polls = sum(int(r["polls"]) for r in dash if r["state"] == "open")
        perr = sum(int(r["poll_errors"]) for r in dash if r["state"] == "open")
        if closed and opened:
            c, o = statistics.median(closed), statistics.median(opened)
            md += ["", "## Dashboard open vs closed", ""]
            md.append("llmgate chat, rounds alternating: closed, then open (a poller fetching the "
                      "page's five API documents - session, keys, providers, stats 1h, events - "
                      "every second, the page itself polls every two).")
            md.append("")
            md.append(md_table(["state", "req/s (median)", "each round", "CPU ms/1k req (median)"],
                               [["closed", "%.0f" % c, " ".join("%.0f" % x for x in closed),
                                 "%.1f" % statistics.median(ccpu)],
                                ["open", "%.0f" % o, " ".join("%.0f" % x for x in opened),
                                 "%.1f" % statistics.median(ocpu)]]))
            md.append("")
            md.append("open/closed req/s %.3f (%+.1f %%), CPU per request %.3f; %d polls, %d "
                      "failed. Goal (issue 16): req/s within 2 %%: %s." % (
                          o / c, (o / c - 1) * 100,
                          statistics.median(ocpu) / statistics.median(ccpu), polls, perr,
                          "met" if abs(o / c - 1) <= 0.02 else "not met"))
    if png:
        md += ["", "![req/s and p99 per target](%s)" % os.path.basename(png)]
    md += ["", "Raw figures: `%s/`." % os.path.relpath(args.raw, os.path.dirname(args.out))]
    text = "\n".join(md) + "\n"
    with open(args.out + ".md", "w") as f:
        f.write(text)
    print(text)
    print("report: %s.md, %s.csv%s" % (args.out, args.out, ", " + png if png else ""),
          file=sys.stderr)


if __name__ == "__main__":
    main()
