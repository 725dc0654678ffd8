// The official openai SDK's Responses API (client.responses), pointed at llmgate.
// Usage: node sdk_responses.mjs SCENARIO BASE_URL MODEL   (BASE_URL ends in /v1)
//   basic      responses.create, plain and streamed (stream: true)
//   affinity   responses created on a pool of keys, then followed up with
//              previous_response_id (plain and streamed), retrieved and deleted
//   foreign    a response created with LLMGATE_CLIENT_KEY, named by LLMGATE_OTHER_KEY
//   items      responses.inputItems.list with order, limit and the SDK's cursor paging
// Prints one JSON object; exits non-zero only when the script itself breaks.
import OpenAI from "openai";
import { args, attempt, emit } from "./sdk_common.mjs";

const { scenario, baseURL, rest, apiKey } = args("node sdk_responses.mjs SCENARIO BASE_URL MODEL");
const [model] = rest;
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 20000 });
const classes = { NotFound: OpenAI.NotFoundError, BadRequest: OpenAI.BadRequestError };

// One plain response: the SDK's view of it and the key llmgate chose.
async function create(c, body) {
  const { data, response } = await c.responses.create({ model, ...body }).withResponse();
  return {
    id: data.id,
    status: data.status,
    model: data.model,
    output_text: data.output_text,
    previous_response_id: data.previous_response_id ?? null,
    usage: data.usage,
    key: response.headers.get("x-llmgate-key"),
  };
}

// One streamed response: every event type in order, the deltas, the final response.
async function createStream(c, body) {
  const { data: stream, response } = await c.responses
    .create({ model, stream: true, ...body })
    .withResponse();
  const types = [];
  let deltas = "";
  let deltaCount = 0;
  let final = null;
  let createdId = null;
  const seq = [];
  for await (const ev of stream) {
    types.push(ev.type);
    seq.push(ev.sequence_number);
    if (ev.type === "response.created") createdId = ev.response.id;
    if (ev.type === "response.output_text.delta") {
      deltas += ev.delta;
      deltaCount++;
    }
    if (ev.type === "response.completed") final = ev.response;
  }
  return {
    events: types.length,
    types,
    sequence_numbers: seq,
    delta_count: deltaCount,
    delta_text: deltas,
    created_id: createdId,
    final_id: final?.id ?? null,
    final_text: final?.output?.[0]?.content?.[0]?.text ?? null,
    final_status: final?.status ?? null,
    final_previous_response_id: final?.previous_response_id ?? null,
    usage: final?.usage ?? null,
    key: response.headers.get("x-llmgate-key"),
  };
}

async function basic() {
  return {
    plain: await create(client, { input: "Say hello" }),
    stream: await createStream(client, { input: "Say hello" }),
  };
}

async function affinity() {
  // Three in a row: round robin puts each on another key of the pool.
  const roots = [];
  for (let i = 0; i < 3; i++) roots.push(await create(client, { input: `root ${i}` }));
  const followups = [];
  for (const root of roots) {
    for (let i = 0; i < 3; i++) {
      const r = await attempt(
        () => create(client, { input: `more ${i}`, previous_response_id: root.id }), classes);
      followups.push({ root: root.id, root_key: root.key, ...r });
    }
  }
  // A conversation: each turn names the one before.
  const chain = [roots[0]];
  for (let i = 0; i < 3; i++) {
    const r = await attempt(() => create(client, {
      input: `turn ${i}`,
      previous_response_id: chain[chain.length - 1].id,
    }), classes);
    if (!r.ok) {
      chain.push({ error: r.err });
      break;
    }
    chain.push(r.value);
  }
  // Streamed: a follow-up that streams, and a streamed response followed up.
  const streamedFollowup = await attempt(() => createStream(client, {
    input: "stream more",
    previous_response_id: roots[1].id,
  }), classes);
  const streamedRoot = await createStream(client, { input: "stream root" });
  const afterStreamed = [];
  for (let i = 0; i < 2; i++) {
    afterStreamed.push(await attempt(
      () => create(client, { input: `after ${i}`, previous_response_id: streamedRoot.final_id }),
      classes));
  }
  // Retrieve and delete, each answered by the creating key only.
  const retrieved = [];
  for (const root of roots) {
    retrieved.push(await attempt(async () => {
      const { data: r, response } = await client.responses.retrieve(root.id).withResponse();
      // retrieve() has no output_text helper in openai 4.x: the text of the message item
      return {
        id: r.id,
        text: r.output?.[0]?.content?.[0]?.text ?? null,
        status: r.status,
        key: response.headers.get("x-llmgate-key"),
      };
    }, classes));
  }
  // openai 4.x names it del(); 5.x renamed it delete().
  const del = (id) => (client.responses.delete ?? client.responses.del).call(client.responses, id);
  const deleted = await attempt(async () => {
    const { data, response } = await del(roots[2].id).withResponse();
    return {
      data: data ?? null,
      status: response.status,
      key: response.headers.get("x-llmgate-key"),
    };
  }, classes);
  const afterDelete = await attempt(() => client.responses.retrieve(roots[2].id), classes);
  return {
    roots,
    followups,
    chain,
    streamed_followup: streamedFollowup,
    streamed_root: streamedRoot,
    after_streamed: afterStreamed,
    retrieved,
    deleted,
    after_delete: afterDelete,
  };
}

async function foreign() {
  const other = new OpenAI({ baseURL, apiKey: process.env.LLMGATE_OTHER_KEY, maxRetries: 0,
                             timeout: 20000 });
  const mine = await create(client, { input: "mine" });
  return {
    mine,
    other_followup: await attempt(
      () => create(other, { input: "yours?", previous_response_id: mine.id }), classes),
    other_retrieve: await attempt(() => other.responses.retrieve(mine.id), classes),
    own_followup: await attempt(
      () => create(client, { input: "still mine", previous_response_id: mine.id }), classes),
  };
}

async function items() {
  const words = ["one", "two", "three"];
  const created = await create(client, {
    input: words.map((w) => ({ role: "user", content: w })),
  });
  // Items are kept as given: here content is the string sent.
  const textOf = (item) =>
    typeof item.content === "string" ? item.content : item.content?.[0]?.text ?? null;
  // One page: ?order=asc&limit=2.
  const page = await client.responses.inputItems.list(created.id, { order: "asc", limit: 2 });
  // Every item, page after page (?after=<last id of the page before>).
  const all = [];
  let pages = 0;
  for (let p = page; p; p = p.hasNextPage() ? await p.getNextPage() : null) {
    if (++pages > 5) break;
    for (const item of p.data) all.push(textOf(item));
  }
  return {
    created,
    first_page: page.data.map(textOf),
    first_page_has_more: page.body?.has_more ?? null,
    pages,
    all,
  };
}

const scenarios = { basic, affinity, foreign, items };
if (!scenarios[scenario]) throw new Error(`unknown scenario ${scenario}`);
emit(await scenarios[scenario]());
