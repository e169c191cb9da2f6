/* fuzz.h -- what the fuzz targets of tests/fuzz share: a NUL-terminated copy of an input, and
 * FUZZ_ASSERT, which aborts (a crash libFuzzer keeps, a failure the replay test reports) when
 * a parser breaks a promise its header makes. Each target is one fuzz_<name>.c defining
 * LLVMFuzzerTestOneInput; its seeds and regression inputs are in corpus/<name>/. */
#ifndef SBX_FUZZ_H
#define SBX_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_ASSERT(cond)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: fuzz assertion failed: %s\n", __FILE__, __LINE__, #cond);      \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A malloc'd copy of data[0..size) with a NUL after it (inner NULs stay: C readers stop
 * there, as they do on the wire). The caller frees it. */
static inline char *fuzz_cstr(const uint8_t *data, size_t size) {
    char *s = malloc(size + 1);
    if (!s)
        abort();
    if (size)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

#endif
