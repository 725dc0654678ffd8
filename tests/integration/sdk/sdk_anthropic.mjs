// The official Anthropic SDK (@anthropic-ai/sdk), pointed at llmgate: the Messages API.
// Usage: node sdk_anthropic.mjs SCENARIO BASE_URL MODEL   (BASE_URL without /v1)
//   basic     messages.create, messages.stream, messages.countTokens
//   cooling   MODEL's keys all answer 429: the SDK's RateLimitError, twice (the upstream's
//             429, then the gateway's own while every key cools down), plain and streamed
//   beta      client.beta.messages (POST /v1/messages?beta=true, anthropic-beta), as Claude
//             Code sends them: create and countTokens
//   auth      the client key as apiKey (x-api-key) works; a wrong one is refused
// The client key is LLMGATE_CLIENT_KEY. Prints one JSON object; exits non-zero only when
// the script itself breaks.
import Anthropic from "@anthropic-ai/sdk";
import { args, attempt, emit } from "./sdk_common.mjs";

const { scenario, baseURL, rest, apiKey } = args("node sdk_anthropic.mjs SCENARIO BASE_URL MODEL");
const [model] = rest;
const client = new Anthropic({ baseURL, apiKey, maxRetries: 0, timeout: 20000 });
const classes = {
  RateLimit: Anthropic.RateLimitError,
  Authentication: Anthropic.AuthenticationError,
  API: Anthropic.APIError,
};
const messages = [{ role: "user", content: "Say hello" }];

async function create(c) {
  const { data, response } = await c.messages.create({ model, max_tokens: 64, messages })
    .withResponse();
  return {
    id: data.id,
    type: data.type,
    role: data.role,
    model: data.model,
    text: data.content.filter((b) => b.type === "text").map((b) => b.text).join(""),
    stop_reason: data.stop_reason,
    usage: data.usage,
    key: response.headers.get("x-llmgate-key"),
  };
}

async function stream(c) {
  const s = c.messages.stream({ model, max_tokens: 64, messages });
  const textEvents = [];
  const eventTypes = [];
  s.on("text", (delta) => textEvents.push(delta));
  s.on("streamEvent", (ev) => eventTypes.push(ev.type));
  const final = await s.finalMessage();
  return {
    text_events: textEvents.length,
    text: textEvents.join(""),
    event_types: eventTypes,
    final_text: final.content.filter((b) => b.type === "text").map((b) => b.text).join(""),
    final_stop_reason: final.stop_reason,
    usage: final.usage,
  };
}

async function basic() {
  return {
    create: await create(client),
    stream: await stream(client),
    count: await client.messages.countTokens({ model, messages }),
  };
}

async function cooling() {
  return {
    first: await attempt(() => create(client), classes),
    second: await attempt(() => create(client), classes),
    streamed: await attempt(() => stream(client), classes),
  };
}

async function beta() {
  const data = await client.beta.messages.create({
    model, max_tokens: 64, messages, betas: ["token-efficient-tools-2025-02-19"],
  });
  return {
    create: {
      type: data.type,
      text: data.content.filter((b) => b.type === "text").map((b) => b.text).join(""),
      usage: data.usage,
    },
    count: await client.beta.messages.countTokens({ model, messages }),
  };
}

async function auth() {
  const wrong = new Anthropic({ baseURL, apiKey: "sk-not-a-client-key-1234", maxRetries: 0,
                                timeout: 20000 });
  return {
    good: await attempt(() => create(client), classes),
    wrong: await attempt(() => create(wrong), classes),
    wrong_stream: await attempt(() => stream(wrong), classes),
    wrong_count: await attempt(() => wrong.messages.countTokens({ model, messages }), classes),
  };
}

const scenarios = { basic, cooling, beta, auth };
if (!scenarios[scenario]) throw new Error(`unknown scenario ${scenario}`);
emit(await scenarios[scenario]());
