/* t.h - a minimal TAP producer for the unit tests (meson runs them with protocol 'tap').
 *
 *   T_OK(cond, "what it shows");      one test point
 *   T_EQ_INT(a, b, "...");  T_EQ_STR(a, b, "...");
 *   return t_done();                  prints the plan, exits non-zero on any failure
 */
#ifndef LLMGATE_T_H
#define LLMGATE_T_H

#include <stdio.h>
#include <string.h>

static int t_n, t_failed;

#define T_OK(cond, ...)                                                                            \
    do {                                                                                           \
        int t_c_ = !!(cond);                                                                       \
        printf("%s %d - ", t_c_ ? "ok" : "not ok", ++t_n);                                         \
        printf(__VA_ARGS__);                                                                       \
        printf("\n");                                                                              \
        if (!t_c_) {                                                                               \
            t_failed++;                                                                            \
            printf("#   failed at %s:%d: %s\n", __FILE__, __LINE__, #cond);                        \
        }                                                                                          \
        fflush(stdout);                                                                            \
    } while (0)

#define T_EQ_INT(a, b, ...)                                                                        \
    do {                                                                                           \
        long long t_a_ = (long long)(a), t_b_ = (long long)(b);                                    \
        T_OK(t_a_ == t_b_, __VA_ARGS__);                                                           \
        if (t_a_ != t_b_)                                                                          \
            printf("#   got %lld, want %lld\n", t_a_, t_b_);                                       \
    } while (0)

#define T_EQ_STR(a, b, ...)                                                                        \
    do {                                                                                           \
        const char *t_a_ = (a), *t_b_ = (b);                                                       \
        int t_eq_ = t_a_ && t_b_ && strcmp(t_a_, t_b_) == 0;                                       \
        T_OK(t_eq_, __VA_ARGS__);                                                                  \
        if (!t_eq_)                                                                                \
            printf("#   got \"%s\", want \"%s\"\n", t_a_ ? t_a_ : "(null)",                        \
                   t_b_ ? t_b_ : "(null)");                                                        \
    } while (0)

static inline int t_done(void)
{
    printf("1..%d\n", t_n);
    return t_failed ? 1 : 0;
}

#endif
