-- bench/lib/chat.lua - wrk script: POST /v1/chat/completions with a small, realistic body.
--   wrk ... -s chat.lua URL -- chat|stream CLIENT_KEY
-- The request is built once per thread (no request() function: wrk stays at full speed).
-- done() prints one machine-readable line that bench/run.sh keeps:
--   WRK_RESULT requests= duration_us= bytes= p50_us= p90_us= p99_us= max_us= mean_us=
--              err_connect= err_read= err_write= err_status= err_timeout=

local body_chat = '{"model":"gpt-4o-mini","messages":[' ..
    '{"role":"system","content":"You are a helpful assistant. Answer briefly."},' ..
    '{"role":"user","content":"Say hello to the benchmark in one short sentence."}],' ..
    '"max_tokens":64,"temperature":0.2'

function init(args)
    local mode = args[1] or "chat"
    local key = args[2] or "sk-bench"
    wrk.method = "POST"
    wrk.headers["Content-Type"] = "application/json"
    wrk.headers["Authorization"] = "Bearer " .. key
    wrk.headers["User-Agent"] = "wrk-llmgate-bench/1"
    if mode == "stream" then
        wrk.headers["Accept"] = "text/event-stream"
        wrk.body = body_chat .. ',"stream":true,"stream_options":{"include_usage":true}}'
    else
        wrk.headers["Accept"] = "application/json"
        wrk.body = body_chat .. '}'
    end
end

function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        "WRK_RESULT requests=%d duration_us=%d bytes=%d p50_us=%d p90_us=%d p99_us=%d " ..
        "max_us=%d mean_us=%d err_connect=%d err_read=%d err_write=%d err_status=%d " ..
        "err_timeout=%d\n",
        summary.requests, summary.duration, summary.bytes,
        latency:percentile(50), latency:percentile(90), latency:percentile(99),
        latency.max, latency.mean, e.connect, e.read, e.write, e.status, e.timeout))
end
