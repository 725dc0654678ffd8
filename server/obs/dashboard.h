/* dashboard.h - the built-in dashboard and its JSON API on the admin listener.
 *
 * Design note
 * -----------
 * One self-contained page: dashboard.html, .css and .js (server/obs/dash/, built into the
 * binary by dash_embed.py; no CDN, works offline) polls the JSON API every two seconds.
 * The API's documents are view/'s, the same as `llmgatectl --json` (cli/README.md, "JSON
 * schema"), read from the store on each request; there is no cache and no state here.
 *
 *   GET  /, /dashboard            the page          GET /dashboard.css, /dashboard.js
 *   GET  /api/session             {"command":"session", "version", "actions": bool}
 *   GET  /api/keys                = llmgatectl keys --json
 *   GET  /api/providers           = llmgatectl providers --json
 *   GET  /api/stats?range=R&scope=model|key[&name=N]   = llmgatectl stats --json
 *   GET  /api/events?limit=N      the newest key events (history), newest first (N <= 500)
 *   POST /api/keys/NAME/cooldown?duration_ms=D, /api/keys/NAME/disable, .../enable
 *
 * Actions need `Authorization: Bearer TOKEN` whose SHA-256 is metrics.admin_token_sha256
 * (compared in constant time; the configuration at the time of the request, so a reload
 * changes it): 401 without it or with another, 403 when no token is configured (read-only).
 * An action is the same store transaction as llmgatectl's, with the actor "dashboard", so
 * every process (and, in cluster mode, every host) obeys it at once. A custom header is
 * what a cross-site form cannot send, and the listener answers no CORS preflight.
 *
 * Errors are OpenAI-shaped JSON ({"error":{"message","type","param","code"}}): 400 (a bad
 * range, scope, limit or duration), 404 (no such key or path), 405 (a GET path posted to
 * or the reverse), 500 (the store failed; the message names the store's error, never a
 * secret). Nothing here can show a secret: the store holds none, and the token is only
 * hashed.
 *
 * Threads: the admin listener's loop (the main thread); each request runs a few read
 * transactions (or one write for an action) and returns.
 */
#ifndef LLMGATE_DASHBOARD_H
#define LLMGATE_DASHBOARD_H

#include <stddef.h>

#include "config/config.h"
#include "server/common/buf.h"
#include "server/obs/admin_http.h"
#include "shm/shm.h"

/* The embedded files (dash_assets.c, generated). */
extern const unsigned char dash_html[], dash_css[], dash_js[];
extern const size_t dash_html_len, dash_css_len, dash_js_len;

/* Answer req if it is one of the paths above: its status (body and *content_type set), or 0
 * when the path is not the dashboard's (the caller routes it). cfg is the current
 * configuration (the admin token, the state dir). */
int dashboard_route(shm_t *shm, const cfg_t *cfg, const admin_req_t *req, buf_t *body,
                    const char **content_type);

#endif
