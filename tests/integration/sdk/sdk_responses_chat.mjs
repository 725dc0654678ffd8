// The real SDKs speaking the Responses API to a model served by an api: openai-chat provider
// (llmgate translates to chat completions and back, statelessly).
// Usage: node sdk_responses_chat.mjs SCENARIO BASE_URL MODEL   (BASE_URL ends in /v1)
//   openai        the openai SDK: client.responses.create plain (output_text, usage), streamed
//                 (the event types, the deltas, the final usage), with a function tool named by
//                 tool_choice (the mock answers a call) and a follow-up turn with its
//                 function_call_output, a streamed tool call, and a stream the provider cuts
//                 (MODEL-cut, x-mock-truncate) as an APIError
//   vercel        the ai SDK's default provider openai(MODEL), which uses the Responses API:
//                 generateText and streamText
//   vercel_tool   the same with a tool and stopWhen: 2 steps (the test scripts the mock so the
//                 first request is a tool call, the second text)
// The client key is LLMGATE_CLIENT_KEY. Prints one JSON object (each part { ok, value } or
// { ok: false, err }); test_translate_responses.py asserts on it.
import { args, attempt, emit } from "./sdk_common.mjs";

const { scenario, baseURL, rest, apiKey } = args("node sdk_responses_chat.mjs SCENARIO BASE_URL MODEL");
const [model] = rest;
const TIMEOUT_MS = 20000;

const WEATHER_PARAMS = {
  type: "object",
  properties: { city: { type: "string" }, unit: { type: "string" } },
  required: ["city", "unit"],
};
const TOOLS = [{ type: "function", name: "get_weather", description: "The weather in a city",
                 parameters: WEATHER_PARAMS, strict: false }];
const NAMED = { type: "function", name: "get_weather" };

async function openai() {
  const { default: OpenAI, APIError } = await import("openai");
  const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: TIMEOUT_MS });

  const plain = await attempt(async () => {
    const r = await client.responses.create({ model, instructions: "Be brief.",
                                              input: "Say hello", store: false });
    return { id: r.id, status: r.status, model: r.model, output_text: r.output_text,
             usage: r.usage };
  });

  const stream = await attempt(async () => {
    const s = await client.responses.create({ model, input: "Say hello", stream: true });
    const types = [];
    let text = "";
    let usage = null;
    for await (const ev of s) {
      types.push(ev.type);
      if (ev.type === "response.output_text.delta") text += ev.delta;
      if (ev.type === "response.completed") usage = ev.response.usage;
    }
    return { types, text, usage };
  });

  const tool = await attempt(async () => {
    const input = [{ role: "user", content: "What is the weather in Paris?" }];
    const r = await client.responses.create({ model, input, tools: TOOLS, tool_choice: NAMED });
    const calls = r.output.filter((o) => o.type === "function_call");
    // the next turn, stateless: the whole conversation with the call and its output
    const next = [...input, ...calls,
                  ...calls.map((c) => ({ type: "function_call_output", call_id: c.call_id,
                                         output: "18 degrees" }))];
    const r2 = await client.responses.create({ model, input: next, tools: TOOLS });
    return { calls: calls.map((c) => ({ name: c.name, call_id: c.call_id,
                                        args: JSON.parse(c.arguments) })),
             follow_up: r2.output_text };
  });

  const stream_tool = await attempt(async () => {
    const s = await client.responses.create({ model, input: "Weather?", tools: TOOLS,
                                              tool_choice: NAMED, stream: true });
    let args = "";
    let done = null;
    for await (const ev of s) {
      if (ev.type === "response.function_call_arguments.delta") args += ev.delta;
      if (ev.type === "response.output_item.done" && ev.item.type === "function_call")
        done = ev.item.arguments;
    }
    if (done !== args) throw new Error(`output_item.done ${done} != the deltas ${args}`);
    return { args: JSON.parse(args) };
  });

  const cut = await attempt(async () => {
    const s = await client.responses.create({ model: `${model}-cut`, input: "Say hello",
                                              stream: true },
                                            { headers: { "x-mock-truncate": "1" } });
    const types = [];
    for await (const ev of s) types.push(ev.type);
    return { types };
  }, { APIError });
  return { plain, stream, tool, stream_tool, cut };
}

async function provider() {
  const { createOpenAI } = await import("@ai-sdk/openai");
  return createOpenAI({ baseURL, apiKey });
}

async function vercel() {
  const { generateText, streamText } = await import("ai");
  const openai = await provider();
  const m = openai(model); // the default: the Responses API

  const generate = await attempt(async () => {
    const g = await generateText({ model: m, prompt: "Say hello", maxRetries: 0 });
    return { text: g.text, finishReason: g.finishReason, usage: g.usage,
             modelId: g.response?.modelId ?? null };
  });
  const stream = await attempt(async () => {
    const errors = [];
    const st = streamText({ model: m, prompt: "Say hello", maxRetries: 0,
                            onError: ({ error }) => errors.push(String(error?.message ?? error)) });
    const parts = [];
    for await (const t of st.textStream) parts.push(t);
    if (errors.length) throw new Error(errors.join("; "));
    return { text: parts.join(""), usage: await st.usage, finishReason: await st.finishReason };
  });
  return { generate, stream };
}

async function vercel_tool() {
  const { generateText, tool, stepCountIs } = await import("ai");
  const { z } = await import("zod");
  const openai = await provider();
  const m = openai(model);
  const weather = tool({
    description: "The weather in a city",
    inputSchema: z.object({ city: z.string(), unit: z.string() }),
    execute: async () => ({ temperature: 18 }),
  });
  const t = await attempt(async () => {
    const g = await generateText({ model: m, prompt: "Weather in Paris?", maxRetries: 0,
                                   tools: { get_weather: weather }, stopWhen: stepCountIs(2) });
    return { text: g.text, steps: g.steps.length,
             toolCalls: g.steps.flatMap((s) => s.toolCalls)
               .map((c) => ({ toolName: c.toolName, input: c.input })) };
  });
  return { tool: t };
}

const scenarios = { openai, vercel, vercel_tool };
if (!scenarios[scenario]) throw new Error(`unknown scenario ${scenario}`);
emit(await scenarios[scenario]());
