/* notify.h - tell the service manager how the server is doing (sd_notify(3) of libsystemd).
 *
 * The unit (deploy/systemd/llmgate.service) is Type=notify: systemd counts llmgate as
 * started when READY=1 arrives, which main.c sends once the store is open, every listener
 * accepts and the workers run. A reload is RELOADING=1 ... READY=1 (also when the new file
 * is refused), a shutdown STOPPING=1 when draining starts. With WatchdogSec= in the unit,
 * WATCHDOG=1 is sent at half the interval from the main loop.
 *
 * Every call does nothing when NOTIFY_SOCKET is unset (not started by systemd) or when the
 * build has no libsystemd (-Dsystemd=disabled). Main thread only. Nothing is returned:
 * a service manager that cannot be told is no reason to stop serving.
 */
#ifndef LLMGATE_NOTIFY_H
#define LLMGATE_NOTIFY_H

#include <stdint.h>

/* READY=1 with STATUS=status (one line, may be NULL). */
void notify_ready(const char *status);

/* RELOADING=1 (with MONOTONIC_USEC, which newer systemd versions ask for). */
void notify_reloading(void);

/* STOPPING=1 with STATUS=status (may be NULL). */
void notify_stopping(const char *status);

/* The watchdog interval systemd expects a WATCHDOG=1 within (WATCHDOG_USEC), in ms; 0 when
 * there is no watchdog for this process. */
uint64_t notify_watchdog_ms(void);

/* WATCHDOG=1 */
void notify_watchdog(void);

#endif
