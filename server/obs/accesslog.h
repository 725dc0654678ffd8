/* accesslog.h - one JSON line per client request, to stdout or a file.
 *
 * Design note
 * -----------
 * A line is formatted on the request's worker into that worker's buffer (its own mutex,
 * shared only with the writer for the time of a pointer swap). A writer thread swaps each
 * buffer for an empty one every ACCESSLOG_FLUSH_MS, or sooner once a buffer passes
 * ACCESSLOG_KICK_BYTES, and writes it with write(2): workers never block on a slow disk or
 * pipe, and whole lines of one worker are written at once by one thread, so lines never
 * interleave (lines of different workers may be out of time order by up to a flush
 * interval: sort by "time" when that matters). A buffer that passes ACCESSLOG_CAP_BYTES (the output
 * is stuck) drops further lines and counts them. The file is opened O_APPEND, mode 0640;
 * accesslog_reopen() (SIGUSR1, after logrotate renamed it) makes the writer open the path again
 * before its next write.
 *
 * The line (fields always present, in this order; null where there is no value):
 *   {"time":"2026-01-02T03:04:05.678Z","request_id":"..","client":"..","model":"..",
 *    "served_model":"..","provider":"..","key":"..","attempts":1,"status":200,
 *    "upstream_status":200,"ttfb_ms":12.345,"duration_ms":45.678,"upstream_ms":40.1,
 *    "prompt_tokens":10,"completion_tokens":20,"cached_tokens":0,"reasoning_tokens":0,
 *    "tokens_estimated":false,"cost_usd":0.0000123,"bytes_in":300,"bytes_out":900,
 *    "stream":false,"api":"chat"}
 * Strings are JSON-escaped, cut at ACCESSLOG_STR_MAX bytes, and bytes that are not UTF-8
 * become U+FFFD, so every line parses as JSON whatever a client sent. Keys appear by their
 * configured names: no secret reaches this module.
 *
 * Threads: accesslog_write from any thread (shard i for worker i); the others from one
 * thread (the main thread).
 */
#ifndef LLMGATE_ACCESSLOG_H
#define LLMGATE_ACCESSLOG_H

#include <stdint.h>

#include "server/common/buf.h"
#include "server/obs/obs.h"

#define ACCESSLOG_FLUSH_MS   200
#define ACCESSLOG_KICK_BYTES (64 * 1024)
#define ACCESSLOG_CAP_BYTES  (8 * 1024 * 1024)
#define ACCESSLOG_STR_MAX    256

typedef struct accesslog_s accesslog_t;

/* mode: enum cfg_access_log_mode; path: the file for CFG_ACCESS_LOG_FILE. Starts the
 * writer. CFG_ACCESS_LOG_OFF: *out = NULL and 0 (every call below accepts NULL). Returns 0,
 * or -1 with err ("access_log: cannot open \"PATH\": REASON"). */
int accesslog_open(int mode, const char *path, unsigned nshards, accesslog_t **out, char *err,
                   size_t errlen);

/* Write what is buffered, stop the writer, close the file. */
void accesslog_close(accesslog_t *a);

/* Queue the line of r in shard's buffer. */
void accesslog_write(accesslog_t *a, unsigned shard, const obs_record_t *r);

/* Reopen the path before the next write (no-op for stdout). */
void accesslog_reopen(accesslog_t *a);

/* Write everything queued so far and return when it is written (tests, shutdown). */
void accesslog_flush(accesslog_t *a);

/* Lines dropped so far (buffer full, or the write failed). */
uint64_t accesslog_dropped(const accesslog_t *a);

/* The line of r, with its "\n", appended to b. 0, or -1 if memory ran out. Pure. */
int accesslog_format(buf_t *b, const obs_record_t *r);

#endif
