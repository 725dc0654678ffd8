// The Vercel AI SDK (`ai`) with @ai-sdk/openai's default provider, whose models speak the
// Responses API (POST /v1/responses), pointed at llmgate.
// Usage: node sdk_vercel.mjs SCENARIO BASE_URL MODEL   (BASE_URL ends in /v1)
//   generate   generateText, then a follow-up naming its response (previousResponseId)
//   stream     streamText: the text as it streams, usage and finish reason
// Prints one JSON object; exits non-zero only when the script itself breaks.
import { generateText, streamText } from "ai";
import { createOpenAI } from "@ai-sdk/openai";
import { args, attempt, emit, headersOf } from "./sdk_common.mjs";

const { scenario, baseURL, rest, apiKey } = args("node sdk_vercel.mjs SCENARIO BASE_URL MODEL");
const [modelName] = rest;
const openai = createOpenAI({ baseURL, apiKey });
const model = openai(modelName);

function summary(r) {
  const h = headersOf(r.response?.headers) ?? {};
  return {
    text: r.text,
    usage: r.usage,
    finish_reason: r.finishReason,
    response_id: r.providerMetadata?.openai?.responseId ?? null,
    response_model: r.response?.modelId ?? null,
    key: h["x-llmgate-key"] ?? null,
  };
}

async function generate() {
  const first = summary(await generateText({ model, prompt: "Say hello", maxRetries: 0 }));
  const followup = await attempt(async () => summary(await generateText({
    model,
    prompt: "And again",
    maxRetries: 0,
    providerOptions: { openai: { previousResponseId: first.response_id } },
  })));
  return { first, followup };
}

async function stream() {
  const errors = [];
  const result = streamText({
    model,
    prompt: "Say hello",
    maxRetries: 0,
    onError: ({ error }) => errors.push(String(error?.message ?? error)),
  });
  const parts = [];
  for await (const t of result.textStream) parts.push(t);
  const response = await result.response;
  const meta = await result.providerMetadata;
  return {
    parts: parts.length,
    text: parts.join(""),
    final_text: await result.text,
    usage: await result.usage,
    finish_reason: await result.finishReason,
    response_id: meta?.openai?.responseId ?? null,
    key: headersOf(response?.headers)?.["x-llmgate-key"] ?? null,
    errors,
  };
}

const scenarios = { generate, stream };
if (!scenarios[scenario]) throw new Error(`unknown scenario ${scenario}`);
emit(await scenarios[scenario]());
