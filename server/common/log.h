/* log.h - one line per event to stderr: "2026-11-22T10:00:00.123Z level message".
 *
 * Thread-safe (one fprintf per line, stderr unbuffered per line). Callers never pass a
 * secret: upstream and client keys are known by their configured names.
 */
#ifndef LLMGATE_LOG_H
#define LLMGATE_LOG_H

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_set_level(enum log_level level);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
