/* notify.c - sd_notify(3) messages to systemd; see notify.h. */
#include "server/common/notify.h"

#include <stdio.h>
#include <time.h>

#ifdef LLMGATE_SYSTEMD
#include <systemd/sd-daemon.h>

static void send_state(const char *state, const char *status)
{
    if (status)
        sd_notifyf(0, "%s\nSTATUS=%s", state, status);
    else
        sd_notify(0, state);
}

void notify_reloading(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading the configuration",
               (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000);
}

uint64_t notify_watchdog_ms(void)
{
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) <= 0)
        return 0;
    return usec / 1000 ? usec / 1000 : 1;
}

void notify_watchdog(void)
{
    sd_notify(0, "WATCHDOG=1");
}
#else
static void send_state(const char *state, const char *status)
{
    (void)state;
    (void)status;
}

void notify_reloading(void) {}

uint64_t notify_watchdog_ms(void)
{
    return 0;
}

void notify_watchdog(void) {}
#endif

void notify_ready(const char *status)
{
    send_state("READY=1", status);
}

void notify_stopping(const char *status)
{
    send_state("STOPPING=1", status);
}
