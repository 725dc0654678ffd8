// Shared by the sdk_*.mjs scripts: the command line, error summaries, the JSON answer.
// Each script prints exactly one JSON object on stdout; test_sdk_apis.py asserts on it.

// An SDK error as data: its class, status, the response's headers and body.
export function errorSummary(e, classes = {}) {
  const out = {
    class: e?.constructor?.name ?? typeof e,
    status: e?.status ?? null,
    headers: headersOf(e?.headers),
    error: e?.error ?? null,
    message: String(e?.message ?? e),
  };
  for (const [name, cls] of Object.entries(classes)) out[`is${name}`] = e instanceof cls;
  return out;
}

// Runs fn and returns { ok: true, value } or { ok: false, err: errorSummary(...) }.
export async function attempt(fn, classes) {
  try {
    return { ok: true, value: await fn() };
  } catch (e) {
    return { ok: false, err: errorSummary(e, classes) };
  }
}

// A fetch Headers (or a plain object) as a plain object.
export function headersOf(h) {
  if (!h) return null;
  if (typeof h.entries === "function") return Object.fromEntries(h.entries());
  return { ...h };
}

export function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

// argv: SCENARIO BASE_URL MODEL...; the client key in LLMGATE_CLIENT_KEY.
export function args(usage) {
  const [scenario, baseURL, ...rest] = process.argv.slice(2);
  if (!scenario || !baseURL) {
    process.stderr.write(`usage: ${usage}\n`);
    process.exit(2);
  }
  return { scenario, baseURL, rest, apiKey: process.env.LLMGATE_CLIENT_KEY || "unused" };
}
