/* utf8.c -- UTF-8 validation and U+FFFD repair (see utf8.h). */
#include "utf8.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The well-formed sequence at p[0..n): returns its length (1 to 4), or 0 when there is none.
 * Then *bad is the length of the maximal ill-formed subpart (1 to 3) and *cut says whether
 * that subpart is a proper prefix of a well-formed sequence cut short by the end of input. */
static size_t decode(const unsigned char *p, size_t n, size_t *bad, bool *cut) {
    unsigned c = p[0], lo = 0x80, hi = 0xBF;
    size_t need;
    *cut = false;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        else if (c == 0xED)
            hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        if (c == 0xF0)
            lo = 0x90; /* overlong */
        else if (c == 0xF4)
            hi = 0x8F; /* above U+10FFFF */
    } else {
        *bad = 1; /* 80..C1, F5..FF never start a sequence */
        return 0;
    }
    for (size_t i = 1; i <= need; i++) {
        if (i >= n) {
            *bad = i;
            *cut = true;
            return 0;
        }
        if (p[i] < lo || p[i] > hi) {
            *bad = i;
            return 0;
        }
        lo = 0x80, hi = 0xBF;
    }
    return need + 1;
}

size_t utf8_invalid_at(const char *s, size_t len) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, bad;
    bool cut;
    while (i < len) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t k = decode(p + i, len - i, &bad, &cut);
        if (!k)
            return i;
        i += k;
    }
    return len;
}

/* The repaired text into `out` (NULL: only count); returns its length. */
static size_t repair(const unsigned char *p, size_t len, char *out, size_t *replaced) {
    size_t i = 0, o = 0, n = 0, bad;
    bool cut;
    while (i < len) {
        size_t k = p[i] < 0x80 ? 1 : decode(p + i, len - i, &bad, &cut);
        if (k) {
            if (out)
                memcpy(out + o, p + i, k);
            o += k, i += k;
            continue;
        }
        if (out)
            memcpy(out + o, "\xEF\xBF\xBD", 3);
        o += 3, i += bad, n++;
    }
    if (replaced)
        *replaced = n;
    return o;
}

char *utf8_repair(const char *s, size_t len, size_t *out_len, size_t *replaced) {
    const unsigned char *p = (const unsigned char *)s;
    size_t n = repair(p, len, NULL, NULL); /* sized exactly: a first pass counts */
    char *out = n < SIZE_MAX ? malloc(n + 1) : NULL;
    if (!out)
        return NULL;
    repair(p, len, out, replaced);
    out[n] = '\0';
    if (out_len)
        *out_len = n;
    return out;
}

size_t utf8_incomplete_tail(const char *s, size_t len) {
    const unsigned char *p = (const unsigned char *)s;
    size_t from = len > 3 ? len - 3 : 0, bad;
    bool cut;
    for (size_t i = from; i < len; i++) {
        if (p[i] < 0xC2)
            continue; /* ASCII or a continuation byte: not where a character starts */
        if (decode(p + i, len - i, &bad, &cut) == 0 && cut && bad == len - i)
            return len - i;
        return 0;
    }
    return 0;
}

static int hex4(const char *s, size_t left, unsigned *v) {
    if (left < 4)
        return 0;
    unsigned x = 0;
    for (int i = 0; i < 4; i++) {
        char ch = s[i];
        unsigned d = ch >= '0' && ch <= '9'   ? (unsigned)(ch - '0')
                     : ch >= 'a' && ch <= 'f' ? (unsigned)(ch - 'a' + 10)
                     : ch >= 'A' && ch <= 'F' ? (unsigned)(ch - 'A' + 10)
                                              : 16u;
        if (d == 16)
            return 0;
        x = x << 4 | d;
    }
    *v = x;
    return 1;
}

size_t utf8_json_fix_surrogates(char *s, size_t len) {
    size_t fixed = 0;
    for (size_t i = 0; i + 1 < len; i++) {
        if (s[i] != '\\')
            continue;
        unsigned v, w;
        if (s[i + 1] != 'u' || !hex4(s + i + 2, len - i - 2, &v)) {
            i++; /* another escape (an escaped backslash too): skip its second byte */
            continue;
        }
        bool high = v >= 0xD800 && v <= 0xDBFF, low = v >= 0xDC00 && v <= 0xDFFF;
        if (high && i + 12 <= len && s[i + 6] == '\\' && s[i + 7] == 'u' &&
            hex4(s + i + 8, len - i - 8, &w) && w >= 0xDC00 && w <= 0xDFFF) {
            i += 11; /* a well-formed pair */
            continue;
        }
        if (high || low) {
            memcpy(s + i + 2, "fffd", 4);
            fixed++;
        }
        i += 5;
    }
    return fixed;
}
