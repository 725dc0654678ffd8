// The real client SDKs on a model served in the other format: llmgate translates the request
// and its answer (JSON and stream), the SDK must take the result as its own provider's.
// Usage: node sdk_translate.mjs SCENARIO BASE_URL MODEL
//   openai_tools      openai SDK (BASE_URL ends in /v1), MODEL on an api: anthropic provider:
//                     create with a named tool (the mock answers a call), a follow-up turn with
//                     the tool result, the beta stream helper's finalChatCompletion, a raw stream
//                     and the mock's 3 parallel calls after text (x-mock-tool-calls, -text)
//   openai_run_tools  the same model, tool_choice "auto": runTools and its streaming runner
//                     call the tool and send its result back (the test scripts the mock so the
//                     first request of each loop is a tool call, the second text)
//   openai_fallback   MODEL [STREAM_MODEL] fall back from an OpenAI-compatible deployment (the
//                     test scripts a 429) to an Anthropic one: create().withResponse() on
//                     MODEL, a stream on STREAM_MODEL (default MODEL), with their headers
//   openai_errors     the openai SDK on MODEL (Anthropic-served): an upstream 400 and an
//                     error event mid-stream as the SDK's errors
//   anthropic_tools   @anthropic-ai/sdk (BASE_URL without /v1), MODEL on an OpenAI-compatible
//                     provider: create and stream with tool_choice {type:"tool"}, inputJson
//                     events, finalMessage, a follow-up turn with the tool_result, parallel calls
//   anthropic_errors  @anthropic-ai/sdk on MODEL (OpenAI-served): an upstream 400, plain and
//                     streamed, as the SDK's BadRequestError
//   vercel_chat       the ai SDK with @ai-sdk/openai's chat-completions model (openai.chat):
//                     generateText, streamText, and both with a zod tool
//   langchain         LangChain's ChatOpenAI: invoke, stream, bindTools + invoke and stream
// The client key is LLMGATE_CLIENT_KEY; with LLMGATE_RID set, the requests whose usage the test
// compares with the access log carry x-request-id LLMGATE_RID-<name>. Prints one JSON object;
// test_translate_sdk.py asserts on it. Exits non-zero only when the script itself breaks.
import { args, attempt, emit, headersOf } from "./sdk_common.mjs";

const { scenario, baseURL, rest, apiKey } = args("node sdk_translate.mjs SCENARIO BASE_URL MODEL");
const [model, streamModel = model] = rest;
const TIMEOUT_MS = 20000; // each request; the test's node timeout covers the whole process

// Request options naming the request for the access log (see LLMGATE_RID above).
function rid(name) {
  const p = process.env.LLMGATE_RID;
  return p ? { headers: { "x-request-id": `${p}-${name}` } } : {};
}

const WEATHER_PARAMS = {
  type: "object",
  properties: { city: { type: "string" }, unit: { type: "string" } },
  required: ["city", "unit"],
};
const CHAT_TOOLS = [{
  type: "function",
  function: {
    name: "get_weather", description: "The weather in a city", parameters: WEATHER_PARAMS,
  },
}];
const NAMED_CHOICE = { type: "function", function: { name: "get_weather" } };
// The mock answers 3 calls (Paris, Rome, Berlin) after its usual text.
const PARALLEL = { headers: { "x-mock-tool-calls": "3", "x-mock-tool-text": "1" } };
const ASK = [{ role: "user", content: "What is the weather in Paris?" }];

// A chat.completion's first choice as data, with each call's arguments parsed.
function chatChoice(c) {
  const ch = c.choices[0];
  return {
    id: c.id,
    object: c.object,
    model: c.model,
    finish_reason: ch.finish_reason,
    content: ch.message.content,
    tool_calls: (ch.message.tool_calls ?? []).map((t) => ({
      id: t.id,
      type: t.type,
      name: t.function.name,
      arguments: t.function.arguments,
      args: JSON.parse(t.function.arguments),
    })),
    usage: c.usage ?? null,
  };
}

async function openaiClient() {
  const { default: OpenAI } = await import("openai");
  return new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: TIMEOUT_MS });
}

async function openai_tools() {
  const client = await openaiClient();
  const body = { model, messages: ASK, tools: CHAT_TOOLS, tool_choice: NAMED_CHOICE };

  const first = await client.chat.completions.create(body, rid("plain"));
  const plain = chatChoice(first);

  // The next turn: the assistant's calls and their results go back (Anthropic's tool_use
  // and tool_result blocks upstream); the mock answers text.
  const followup = await attempt(async () => {
    const { data, response } = await client.chat.completions.create({
      model,
      tools: CHAT_TOOLS,
      messages: [
        ...ASK,
        first.choices[0].message,
        ...first.choices[0].message.tool_calls.map((t) => ({
          role: "tool", tool_call_id: t.id, content: "18 degrees, sunny",
        })),
      ],
    }).withResponse();
    return { status: response.status, ...chatChoice(data) };
  });

  // The SDK's stream helper assembles the deltas itself; its events show each call done.
  const s = client.beta.chat.completions.stream({
    ...body, stream_options: { include_usage: true },
  }, rid("helper"));
  const argDeltas = [];
  const argsDone = [];
  s.on("tool_calls.function.arguments.delta", (e) => argDeltas.push(e.arguments_delta));
  s.on("tool_calls.function.arguments.done", (e) => argsDone.push({
    name: e.name, index: e.index, args: JSON.parse(e.arguments),
  }));
  const helper = {
    final: chatChoice(await s.finalChatCompletion()),
    arg_deltas: argDeltas,
    args_done: argsDone,
  };

  // A raw stream, assembled by hand the way most applications do it.
  const raw = await client.chat.completions.create({ ...body, stream: true });
  const calls = [];
  let finish = null;
  let role = null;
  for await (const chunk of raw) {
    for (const ch of chunk.choices) {
      role = ch.delta.role ?? role;
      for (const t of ch.delta.tool_calls ?? []) {
        const c = (calls[t.index] ??= { index: t.index, id: null, name: null, arguments: "" });
        c.id = t.id ?? c.id;
        c.name = t.function?.name ?? c.name;
        c.arguments += t.function?.arguments ?? "";
      }
      finish = ch.finish_reason ?? finish;
    }
  }
  const streamed = {
    role,
    finish_reason: finish,
    tool_calls: calls.map((c) => ({ ...c, args: JSON.parse(c.arguments) })),
  };

  const parallel = {
    plain: chatChoice(await client.chat.completions.create(body, PARALLEL)),
    stream: chatChoice(await client.beta.chat.completions.stream(body, PARALLEL)
      .finalChatCompletion()),
  };
  return { plain, followup, helper, streamed, parallel };
}

async function openai_run_tools() {
  const client = await openaiClient();
  const seen = [];
  const tools = [{
    type: "function",
    function: {
      name: "get_weather",
      description: "The weather in a city",
      parameters: WEATHER_PARAMS,
      parse: JSON.parse,
      function: (a) => {
        seen.push(a);
        return { temperature: 18, unit: a.unit };
      },
    },
  }];
  const runner = client.beta.chat.completions.runTools({ model, messages: ASK, tools });
  const plainFinal = await runner.finalChatCompletion();
  const plain = {
    content: await runner.finalContent(),
    final_finish_reason: plainFinal.choices[0].finish_reason,
    roles: runner.messages.map((m) => m.role),
    completions: (await runner.allChatCompletions()).length,
  };
  const sr = client.beta.chat.completions.runTools({
    model, messages: ASK, tools, stream: true, stream_options: { include_usage: true },
  });
  const text = [];
  sr.on("content", (d) => text.push(d));
  const streamFinal = await sr.finalChatCompletion();
  const streamed = {
    content: await sr.finalContent(),
    deltas: text.length,
    final_finish_reason: streamFinal.choices[0].finish_reason,
    roles: sr.messages.map((m) => m.role),
  };
  return { plain, streamed, tool_args: seen };
}

async function openai_errors() {
  const { default: OpenAI } = await import("openai");
  const client = await openaiClient();
  const classes = { BadRequest: OpenAI.BadRequestError, API: OpenAI.APIError };
  const body = { model, messages: ASK };
  const bad = { headers: { "x-mock-status": "400", "x-mock-error-message": "bad thing" } };
  // Anthropic fails mid-stream with an error event (overloaded_error) after the text
  const failed = { headers: { "x-mock-response-status": "failed" } };
  let text = "";
  const midStream = await attempt(async () => {
    const s = await client.chat.completions.create({ ...body, stream: true }, failed);
    for await (const chunk of s) text += chunk.choices[0]?.delta?.content ?? "";
    return { text };
  }, classes);
  return {
    plain: await attempt(() => client.chat.completions.create(body, bad), classes),
    stream: await attempt(() => client.beta.chat.completions.stream(body, bad)
      .finalChatCompletion(), classes),
    mid_stream: { ...midStream, text_before: text },
  };
}

async function openai_fallback() {
  const client = await openaiClient();
  const { data, response } = await client.chat.completions.create({ model, messages: ASK })
    .withResponse();
  const h = headersOf(response.headers);
  const plain = {
    ...chatChoice(data),
    provider: h["x-llmgate-provider"] ?? null,
    attempts: h["x-llmgate-attempts"] ?? null,
  };
  const { data: stream, response: sresp } = await client.chat.completions.create({
    model: streamModel, messages: ASK, stream: true, stream_options: { include_usage: true },
  }).withResponse();
  let text = "";
  let finish = null;
  let usage = null;
  for await (const chunk of stream) {
    for (const ch of chunk.choices) {
      text += ch.delta.content ?? "";
      finish = ch.finish_reason ?? finish;
    }
    usage = chunk.usage ?? usage;
  }
  const sh = headersOf(sresp.headers);
  return {
    plain,
    stream: {
      text, finish_reason: finish, usage,
      provider: sh["x-llmgate-provider"] ?? null,
      attempts: sh["x-llmgate-attempts"] ?? null,
      content_type: sh["content-type"] ?? null,
    },
  };
}

async function anthropic_tools() {
  const { default: Anthropic } = await import("@anthropic-ai/sdk");
  const client = new Anthropic({ baseURL, apiKey, maxRetries: 0, timeout: TIMEOUT_MS });
  const tools = [{ name: "get_weather", description: "The weather in a city",
                   input_schema: WEATHER_PARAMS }];
  const body = { model, max_tokens: 256, messages: ASK, tools,
                 tool_choice: { type: "tool", name: "get_weather" } };
  const summary = (m) => ({
    id: m.id,
    type: m.type,
    role: m.role,
    model: m.model,
    stop_reason: m.stop_reason,
    blocks: m.content.map((b) => b.type),
    tool_uses: m.content.filter((b) => b.type === "tool_use")
      .map((b) => ({ id: b.id, name: b.name, input: b.input })),
    text: m.content.filter((b) => b.type === "text").map((b) => b.text).join(""),
    usage: m.usage,
  });

  const first = await client.messages.create(body, rid("create"));
  const create = summary(first);

  const followup = await attempt(async () => {
    const { data, response } = await client.messages.create({
      model, max_tokens: 256, tools,
      messages: [
        ...ASK,
        { role: "assistant", content: first.content },
        { role: "user", content: first.content.filter((b) => b.type === "tool_use").map((b) => ({
          type: "tool_result", tool_use_id: b.id, content: "18 degrees, sunny",
        })) },
      ],
    }).withResponse();
    return { status: response.status, ...summary(data) };
  });

  const s = client.messages.stream(body, rid("stream"));
  const partials = [];
  let snapshot = null;
  const eventTypes = [];
  s.on("inputJson", (partial, snap) => {
    partials.push(partial);
    snapshot = snap;
  });
  s.on("streamEvent", (ev) => eventTypes.push(ev.type));
  const final = await s.finalMessage();
  const stream = {
    final: summary(final),
    partials,
    partial_json_parsed: partials.length ? JSON.parse(partials.join("")) : null,
    snapshot,
    event_types: eventTypes,
  };

  const ps = client.messages.stream(body, PARALLEL);
  const blockStarts = [];
  ps.on("streamEvent", (ev) => {
    if (ev.type === "content_block_start") blockStarts.push([ev.index, ev.content_block.type]);
  });
  const parallel = {
    plain: summary(await client.messages.create(body, PARALLEL)),
    stream: summary(await ps.finalMessage()),
    block_starts: blockStarts,
  };
  return { create, followup, stream, parallel };
}

async function anthropic_errors() {
  const { default: Anthropic } = await import("@anthropic-ai/sdk");
  const client = new Anthropic({ baseURL, apiKey, maxRetries: 0, timeout: TIMEOUT_MS });
  const classes = { BadRequest: Anthropic.BadRequestError, API: Anthropic.APIError };
  const body = { model, max_tokens: 64, messages: ASK };
  const bad = { headers: { "x-mock-status": "400", "x-mock-error-message": "bad thing" } };
  return {
    plain: await attempt(() => client.messages.create(body, bad), classes),
    stream: await attempt(() => client.messages.stream(body, bad).finalMessage(), classes),
  };
}

async function vercel_chat() {
  const { generateText, streamText, tool } = await import("ai");
  const { createOpenAI } = await import("@ai-sdk/openai");
  const { z } = await import("zod");
  const openai = createOpenAI({ baseURL, apiKey });
  const m = openai.chat(model);
  const weather = tool({
    description: "The weather in a city",
    inputSchema: z.object({ city: z.string(), unit: z.string() }),
  });
  const toolChoice = { type: "tool", toolName: "get_weather" };
  const calls = (r) => r.map((c) => ({ id: c.toolCallId, name: c.toolName, input: c.input }));

  const g = await generateText({ model: m, prompt: "Say hello", maxRetries: 0 });
  const generate = { text: g.text, usage: g.usage, finish_reason: g.finishReason,
                     model_id: g.response?.modelId ?? null };

  const errors = [];
  const st = streamText({ model: m, prompt: "Say hello", maxRetries: 0,
                          onError: ({ error }) => errors.push(String(error?.message ?? error)) });
  const parts = [];
  for await (const t of st.textStream) parts.push(t);
  const stream = { parts: parts.length, text: parts.join(""), final_text: await st.text,
                   usage: await st.usage, finish_reason: await st.finishReason };

  const gt = await generateText({ model: m, prompt: "Weather in Paris?", maxRetries: 0,
                                  tools: { get_weather: weather }, toolChoice });
  const generate_tool = { tool_calls: calls(gt.toolCalls), finish_reason: gt.finishReason,
                          usage: gt.usage };

  const stt = streamText({ model: m, prompt: "Weather in Paris?", maxRetries: 0,
                           tools: { get_weather: weather }, toolChoice,
                           onError: ({ error }) => errors.push(String(error?.message ?? error)) });
  const deltas = [];
  for await (const p of stt.fullStream) {
    if (p.type === "tool-input-delta") deltas.push(p.delta);
  }
  const stream_tool = { tool_calls: calls(await stt.toolCalls), input_deltas: deltas,
                        finish_reason: await stt.finishReason, usage: await stt.usage };
  return { generate, stream, generate_tool, stream_tool, errors };
}

async function langchain() {
  const { ChatOpenAI } = await import("@langchain/openai");
  const { z } = await import("zod");
  const chat = new ChatOpenAI({ model, apiKey, maxRetries: 0, timeout: TIMEOUT_MS,
                                configuration: { baseURL } });
  const msg = (m) => ({
    content: m.content,
    tool_calls: (m.tool_calls ?? []).map((t) => ({ id: t.id, name: t.name, args: t.args })),
    invalid_tool_calls: m.invalid_tool_calls ?? [],
    usage: m.usage_metadata ?? null,
    finish_reason: m.response_metadata?.finish_reason ?? null,
  });

  const invoke = msg(await chat.invoke("Say hello"));

  let acc = null;
  let chunks = 0;
  for await (const c of await chat.stream("Say hello")) {
    chunks++;
    acc = acc ? acc.concat(c) : c;
  }
  const stream = { chunks, ...msg(acc) };

  const weather = {
    name: "get_weather",
    description: "The weather in a city",
    schema: z.object({ city: z.string(), unit: z.string() }),
  };
  const bound = chat.bindTools([weather], { tool_choice: "get_weather" });
  const tools_invoke = msg(await bound.invoke("What is the weather in Paris?"));
  let tacc = null;
  for await (const c of await bound.stream("What is the weather in Paris?")) {
    tacc = tacc ? tacc.concat(c) : c;
  }
  const tools_stream = msg(tacc);
  return { invoke, stream, tools_invoke, tools_stream };
}

const scenarios = { openai_tools, openai_run_tools, openai_errors, openai_fallback,
                    anthropic_tools, anthropic_errors, vercel_chat, langchain };
if (!scenarios[scenario]) throw new Error(`unknown scenario ${scenario}`);
emit(await scenarios[scenario]());
