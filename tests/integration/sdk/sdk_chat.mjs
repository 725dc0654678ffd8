// The official openai SDK, pointed at llmgate: one plain and one streaming chat.
// Usage: node sdk_chat.mjs BASE_URL MODEL  (prints a JSON summary, exits non-zero on failure)
import OpenAI from "openai";

const [baseURL, model] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey: process.env.LLMGATE_CLIENT_KEY || "unused", maxRetries: 0 });

const plain = await client.chat.completions.create({
  model,
  messages: [{ role: "user", content: "Say hello" }],
});

const stream = await client.chat.completions.create({
  model,
  stream: true,
  messages: [{ role: "user", content: "Say hello" }],
});
let text = "";
let chunks = 0;
let usage = null;
for await (const chunk of stream) {
  chunks++;
  if (chunk.choices.length > 0) text += chunk.choices[0].delta?.content ?? "";
  if (chunk.usage) usage = chunk.usage;
}

const models = await client.models.list();
const ids = [];
for await (const m of models) ids.push(m.id);

console.log(JSON.stringify({
  plain: { model: plain.model, content: plain.choices[0].message.content, usage: plain.usage },
  stream: { chunks, text, usage },
  models: ids,
}));
