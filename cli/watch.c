/* watch.c - `llmgatectl watch`: the keys table redrawn every interval, like top(1).
 *
 * The terminal: the alternate screen and a hidden cursor; stdin non-canonical without echo
 * (ISIG stays on, so Ctrl-C is SIGINT and Ctrl-Z SIGTSTP, as everywhere else). It is put
 * back on every way out: q, Ctrl-C (SIGINT), SIGTERM, SIGHUP, a store error (the message is
 * held back and printed after the screen is restored), the terminal going away, and exit()
 * from anywhere (atexit). Ctrl-Z restores the terminal, stops, and takes it again on resume.
 *
 * Waiting: the handled signals stay blocked except inside ppoll(), which waits for a key on
 * stdin with the time left to the next refresh as its timeout. A signal therefore can only
 * arrive while ppoll sleeps and always wakes it (no lost wake-up), and no handler runs in the
 * middle of drawing. The store is read afresh for every frame (a read transaction per call,
 * nothing held between frames), so the server is never held up by watch.
 */
#include "cli/ctl.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

static struct termios g_saved;
static int g_raw; /* the terminal is in our mode */
static volatile sig_atomic_t g_quit, g_winch, g_tstp;

static void on_signal(int sig)
{
    if (sig == SIGWINCH)
        g_winch = 1;
    else if (sig == SIGTSTP)
        g_tstp = 1;
    else
        g_quit = sig;
}

static void write_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(STDOUT_FILENO, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

static void term_restore(void)
{
    static const char seq[] = "\x1b[0m\x1b[?25h\x1b[?1049l";
    if (!g_raw)
        return;
    g_raw = 0;
    write_all(seq, sizeof(seq) - 1);
    tcsetattr(STDIN_FILENO, TCSANOW, &g_saved);
}

static int term_enter(void)
{
    static const char seq[] = "\x1b[?1049h\x1b[?25l\x1b[H\x1b[2J";
    struct termios t;
    if (tcgetattr(STDIN_FILENO, &g_saved) != 0)
        return -1;
    t = g_saved;
    t.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
    t.c_cc[VMIN] = 1;
    t.c_cc[VTIME] = 0;
    if (tcsetattr(STDIN_FILENO, TCSANOW, &t) != 0)
        return -1;
    g_raw = 1;
    write_all(seq, sizeof(seq) - 1);
    return 0;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void term_size(unsigned *rows, unsigned *cols)
{
    struct winsize ws;
    *rows = 24;
    *cols = 80;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 && ws.ws_col > 0) {
        *rows = ws.ws_row;
        *cols = ws.ws_col;
    }
}

/* The header: where, when, how many keys in which state, the providers' circuits. */
static void frame_header(ctl_t *c, const vw_key_t *rows, unsigned n, vw_buf_t *b)
{
    unsigned count[VW_STATE_ORPHANED + 1] = {0};
    vw_prov_t *pr = NULL;
    unsigned np = 0;
    char t[40], iv[32];

    for (unsigned i = 0; i < n; i++)
        count[rows[i].state]++;
    if (c->interval_ms % 1000)
        snprintf(iv, sizeof(iv), "%lldms", (long long)c->interval_ms);
    else
        vw_fmt_dur(c->interval_ms, iv, sizeof(iv));
    vw_buf_printf(b, "%sllmgatectl watch%s  %s  %s  every %s  (q quits)\n",
                  vw_color_on(VW_C_BOLD, c->color), vw_color_off(VW_C_BOLD, c->color), c->state_dir,
                  vw_fmt_time(c->now_ms, VW_T_HMS, t, sizeof(t)), iv);
    vw_buf_printf(b, "keys %u", n);
    for (int st = 0, first = 1; st <= VW_STATE_ORPHANED; st++)
        if (count[st]) {
            vw_buf_printf(b, "%s %u %s", first ? ":" : ",", count[st], vw_state_name(st));
            first = 0;
        }
    vw_buf_puts(b, "\n");
    if (ctl_prows_load(c, &pr, &np) == 0) {
        vw_buf_puts(b, "providers:");
        for (unsigned i = 0; i < np; i++)
            vw_buf_printf(b, "%s %s %s%s%s err %s", i ? " |" : "", pr[i].p.name,
                          vw_color_on(pr[i].circuit_color, c->color), pr[i].circuit_text,
                          vw_color_off(pr[i].circuit_color, c->color),
                          vw_fmt_rate(pr[i].error_rate, pr[i].outcomes > 0, t, sizeof(t)));
        vw_buf_puts(b, "\n");
    }
    free(pr);
    vw_buf_puts(b, "\n");
}

/* One frame, cut to the terminal: returns 0 or an exit code (message deferred). */
static int draw(ctl_t *c)
{
    vw_key_t *rows = NULL;
    unsigned n = 0, trows, tcols, line = 0;
    vw_buf_t body = {0}, out = {0};
    int rc;

    if ((rc = ctl_rows_load(c, &rows, &n)) != 0)
        return rc;
    frame_header(c, rows, n, &body);
    ctl_render_keys(rows, n, c->color, &body);
    free(rows);
    term_size(&trows, &tcols);
    vw_buf_puts(&out, "\x1b[H");
    for (const char *p = body.p; p && *p && line < trows; line++) {
        size_t len = strcspn(p, "\n");
        const char *next = p + len + (p[len] == '\n');
        if (line + 1 == trows && *next) {
            vw_buf_printf(&out, "... more below: enlarge the window or filter (--provider, "
                                "--status)");
        } else {
            vw_buf_add_cut(&out, p, len, tcols);
        }
        vw_buf_puts(&out, "\x1b[K");
        if (line + 1 < trows && *next)
            vw_buf_puts(&out, "\r\n");
        p = next;
    }
    vw_buf_puts(&out, "\x1b[J");
    write_all(out.p, out.len);
    vw_buf_free(&body);
    vw_buf_free(&out);
    return 0;
}

/* Ctrl-Z: give the terminal back, stop, take it again when continued. */
static void suspend(const sigset_t *handled)
{
    sigset_t tstp;
    term_restore();
    signal(SIGTSTP, SIG_DFL);
    sigemptyset(&tstp);
    sigaddset(&tstp, SIGTSTP);
    sigprocmask(SIG_UNBLOCK, &tstp, NULL);
    raise(SIGTSTP); /* stops here until SIGCONT */
    sigprocmask(SIG_BLOCK, handled, NULL);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTSTP, &sa, NULL);
    term_enter();
}

int ctl_cmd_watch(ctl_t *c)
{
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGWINCH, SIGTSTP};
    struct sigaction sa = {.sa_handler = on_signal}, old_sa[5];
    sigset_t handled, old_mask, wait_mask;
    vw_buf_t deferred = {0};
    int rc = 0, quit = 0;
    int64_t next = 0;

    if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO))
        return ctl_fail(CTL_EXIT_USAGE, "watch needs a terminal on stdin and stdout (for "
                                        "scripts, run `llmgatectl keys --json` in a loop)");
    sigemptyset(&handled);
    for (size_t i = 0; i < 5; i++)
        sigaddset(&handled, sigs[i]);
    sigprocmask(SIG_BLOCK, &handled, &old_mask);
    wait_mask = old_mask;
    for (size_t i = 0; i < 5; i++) {
        sigdelset(&wait_mask, sigs[i]);
        sigaction(sigs[i], &sa, &old_sa[i]);
    }
    atexit(term_restore);
    if (term_enter() != 0) {
        rc = ctl_fail(CTL_EXIT_USAGE, "watch: cannot set up the terminal");
        goto exit;
    }
    ctl_fail_defer(&deferred);
    while (!quit) {
        int64_t now = mono_ms();
        if (g_quit)
            break;
        if (g_tstp) {
            g_tstp = 0;
            suspend(&handled);
            next = 0;
            continue;
        }
        if (g_winch) {
            g_winch = 0;
            next = 0;
        }
        if (now >= next) {
            if ((rc = draw(c)) != 0)
                break;
            next = now + c->interval_ms;
            continue;
        }
        struct pollfd pfd = {.fd = STDIN_FILENO, .events = POLLIN};
        struct timespec ts = {(time_t)((next - now) / 1000), (long)((next - now) % 1000) * 1000000};
        int r = ppoll(&pfd, 1, &ts, &wait_mask);
        if (r < 0 && errno != EINTR) {
            rc = ctl_fail(CTL_EXIT_USAGE, "watch: waiting for input: %s", strerror(errno));
            break;
        }
        if (r > 0 && (pfd.revents & (POLLHUP | POLLERR | POLLNVAL)))
            break; /* the terminal went away */
        if (r > 0) {
            char keys[64];
            ssize_t k = read(STDIN_FILENO, keys, sizeof(keys));
            if (k <= 0)
                break;
            for (ssize_t i = 0; i < k; i++) {
                if (keys[i] == 'q' || keys[i] == 'Q' || keys[i] == 3 /* ^C without ISIG */)
                    quit = 1;
                else if (keys[i] == ' ' || keys[i] == 'r' || keys[i] == 12 /* ^L */)
                    next = 0;
            }
        }
    }
exit:
    ctl_fail_defer(NULL);
    term_restore();
    for (size_t i = 0; i < 5; i++)
        sigaction(sigs[i], &old_sa[i], NULL);
    sigprocmask(SIG_SETMASK, &old_mask, NULL);
    if (deferred.len)
        fputs(deferred.p, stderr);
    vw_buf_free(&deferred);
    return rc;
}
