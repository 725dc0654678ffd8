// The official openai SDK on a model served by a Gemini provider (api: gemini): llmgate
// translates the chat request to generateContent / streamGenerateContent and the answers
// back, and the SDK must take them as OpenAI's own.
// Usage: node sdk_gemini.mjs BASE_URL MODEL  (BASE_URL ends in /v1)
//   plain         create(): the text, the client's model name
//   stream        a stream with include_usage: the text and the usage chunk
//   tools         create() with a named tool (the mock answers a call): its name and arguments
//   tools_stream  the beta stream helper with the same tool: finalChatCompletion's call
//   final         a follow-up turn with the tool result: the text
// Prints one JSON object; test_translate_gemini.py asserts on it. Exits non-zero only when
// the script itself (or a request) breaks.
import OpenAI from "openai";
import { emit } from "./sdk_common.mjs";

const [baseURL, model] = process.argv.slice(2);
const client = new OpenAI({
  baseURL, apiKey: process.env.LLMGATE_CLIENT_KEY || "unused", maxRetries: 0, timeout: 20000,
});
const ASK = [{ role: "user", content: "What is the weather in Paris?" }];
const TOOLS = [{
  type: "function",
  function: {
    name: "get_weather", description: "The weather in a city",
    parameters: {
      type: "object", properties: { city: { type: "string" }, unit: { type: "string" } },
      required: ["city", "unit"], additionalProperties: false,
    },
  },
}];
const NAMED = { type: "function", function: { name: "get_weather" } };

const plain = await client.chat.completions.create({ model, messages: ASK });

const stream = await client.chat.completions.create({
  model, messages: ASK, stream: true, stream_options: { include_usage: true },
});
let text = "";
let usage = null;
for await (const chunk of stream) {
  if (chunk.choices.length > 0) text += chunk.choices[0].delta?.content ?? "";
  if (chunk.usage) usage = chunk.usage;
}

const withTool = await client.chat.completions.create({
  model, messages: ASK, tools: TOOLS, tool_choice: NAMED,
});
const call = withTool.choices[0].message.tool_calls[0];

const runner = client.beta.chat.completions.stream({
  model, messages: ASK, tools: TOOLS, tool_choice: NAMED,
});
const done = await runner.finalChatCompletion();
const scall = done.choices[0].message.tool_calls[0];

const final = await client.chat.completions.create({
  model, tools: TOOLS,
  messages: [...ASK, withTool.choices[0].message,
             { role: "tool", tool_call_id: call.id, content: JSON.stringify({ temp_c: 18 }) }],
});

emit({
  plain: { content: plain.choices[0].message.content, model: plain.model,
           finish: plain.choices[0].finish_reason },
  stream: { text, usage },
  tools: { id: call.id, name: call.function.name, arguments: JSON.parse(call.function.arguments),
           finish: withTool.choices[0].finish_reason },
  tools_stream: { name: scall.function.name, arguments: JSON.parse(scall.function.arguments),
                  finish: done.choices[0].finish_reason },
  final: { content: final.choices[0].message.content },
});
