/* expect.h - the tiny check of the plain-C tests that run against the real
 * backbone (no test framework): EXPECT(cond) counts, prints what failed, and
 * expect_report() ends main with the counts.
 *
 *     EXPECT(cfa_score(...) == CFA_OK);
 *     return expect_report();
 */
#ifndef CFA_TEST_EXPECT_H
#define CFA_TEST_EXPECT_H

#include <stdio.h>

static int expect_failed, expect_passed;

#define EXPECT(c)                                                                    \
    do {                                                                             \
        if (c)                                                                       \
            expect_passed++;                                                         \
        else                                                                         \
            expect_failed++, fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #c); \
    } while (0)

/* Prints "N passed, M failed"; the exit status for main. */
static inline int expect_report(void)
{
    printf("%d passed, %d failed\n", expect_passed, expect_failed);
    return expect_failed != 0;
}

#endif
