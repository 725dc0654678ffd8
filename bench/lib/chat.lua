-- bench/lib/chat.lua - wrk script: one small, realistic request per mode.
--   wrk ... -s chat.lua URL/PATH -- MODE CLIENT_KEY
-- MODE (bench/lib/common.sh's mode_path gives the PATH of each):
--   chat              POST /v1/chat/completions
--   stream            POST /v1/chat/completions, "stream":true (SSE, data: [DONE])
--   responses-stream  POST /v1/responses, "stream":true (semantic events, no [DONE])
--   messages-stream   POST /v1/messages, "stream":true (Anthropic events), the key in
--                     x-api-key and an anthropic-version header, as Claude Code sends them
--   xlate-chat-stream the stream request to claude-bench-x, a model on api: anthropic
--                     providers: llmgate translates (Anthropic events -> chat chunks)
--   xlate-messages-stream  the messages-stream request to gpt-bench-x, a model on
--                     OpenAI-compatible providers: llmgate translates (chat chunks ->
--                     Anthropic events)
-- run.sh sends the xlate modes only to llmgate; nginx and direct, which cannot translate,
-- get the passthrough request of the same client (stream, messages-stream).
-- The request is built once per thread (no request() function: wrk stays at full speed).
-- done() prints one machine-readable line that bench/run.sh keeps:
--   WRK_RESULT requests= duration_us= bytes= p50_us= p90_us= p99_us= max_us= mean_us=
--              err_connect= err_read= err_write= err_status= err_timeout=

local system = "You are a helpful assistant. Answer briefly."
local user = "Say hello to the benchmark in one short sentence."

-- The same bodies for the passthrough and the translated modes: only the model differs.
local function body_chat(model)
    return '{"model":"' .. model .. '","messages":[' ..
        '{"role":"system","content":"' .. system .. '"},' ..
        '{"role":"user","content":"' .. user .. '"}],' ..
        '"max_tokens":64,"temperature":0.2'
end

-- "store" is left out, as the SDKs do: the upstream stores the response (the API's default)
-- and llmgate records which key created it (object affinity), on every request.
local body_responses = '{"model":"gpt-4o-mini","instructions":"' .. system .. '",' ..
    '"input":"' .. user .. '","max_output_tokens":64,"temperature":0.2,"stream":true}'

local function body_messages(model)
    return '{"model":"' .. model .. '","max_tokens":64,"system":"' .. system .. '",' ..
        '"messages":[{"role":"user","content":"' .. user .. '"}],"temperature":0.2,' ..
        '"stream":true}'
end

function init(args)
    local mode = args[1] or "chat"
    local key = args[2] or "sk-bench"
    wrk.method = "POST"
    wrk.headers["Content-Type"] = "application/json"
    wrk.headers["User-Agent"] = "wrk-llmgate-bench/1"
    if mode == "messages-stream" or mode == "xlate-messages-stream" then
        wrk.headers["x-api-key"] = key
        wrk.headers["anthropic-version"] = "2023-06-01"
    else
        wrk.headers["Authorization"] = "Bearer " .. key
    end
    local stream_tail = ',"stream":true,"stream_options":{"include_usage":true}}'
    if mode == "stream" then
        wrk.headers["Accept"] = "text/event-stream"
        wrk.body = body_chat("gpt-4o-mini") .. stream_tail
    elseif mode == "xlate-chat-stream" then
        wrk.headers["Accept"] = "text/event-stream"
        wrk.body = body_chat("claude-bench-x") .. stream_tail
    elseif mode == "responses-stream" then
        wrk.headers["Accept"] = "text/event-stream"
        wrk.body = body_responses
    elseif mode == "messages-stream" then
        wrk.headers["Accept"] = "text/event-stream"
        wrk.body = body_messages("claude-bench")
    elseif mode == "xlate-messages-stream" then
        wrk.headers["Accept"] = "text/event-stream"
        wrk.body = body_messages("gpt-bench-x")
    elseif mode == "chat" then
        wrk.headers["Accept"] = "application/json"
        wrk.body = body_chat("gpt-4o-mini") .. '}'
    else
        io.stderr:write("chat.lua: unknown mode \"" .. mode .. "\"\n")
        os.exit(1)
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
