/* test_sse.c -- the streamed-body ring: order across wrap-around under a blocking producer,
 * keep-alives while silent, the end, a client that left or stalls, the producer's deadline,
 * UTF-8 repair of text streams, and the SSE frame format. No server: the ring is driven directly.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "common/util.h"
#include "http/sse.h"

#define BIG (5 * SSE_RING_BYTES + 12345)

static char *pattern(void) {
    char *p = malloc(BIG);
    for (size_t i = 0; i < BIG; i++)
        p[i] = (char)('a' + (i * 7 + i / 251) % 26);
    return p;
}

static void *produce(void *arg) {
    http_stream *s = arg;
    char *p = pattern();
    /* uneven writes, some bigger than the ring */
    static const size_t sizes[] = {1, 1000, 70000, 3, 65536, 4097};
    size_t off = 0;
    for (int i = 0; off < BIG; i++) {
        size_t n = sizes[i % 6];
        if (n > BIG - off)
            n = BIG - off;
        if (http_stream_write(s, p + off, n) != 0)
            break;
        off += n;
    }
    free(p);
    sse_stream_end(s);
    sse_stream_unref(s);
    return NULL;
}

/* everything until the end, read in pieces of at most `max` */
static char *read_all(http_stream *s, size_t max, size_t *len) {
    char *out = malloc(BIG + 1), *piece = malloc(max);
    size_t n = 0;
    for (;;) {
        ssize_t k = sse_stream_read(s, piece, max, 2000);
        if (k < 0)
            break;
        if (n + (size_t)k <= BIG)
            memcpy(out + n, piece, (size_t)k);
        n += (size_t)k;
    }
    free(piece);
    *len = n;
    return out;
}

static int read_is(http_stream *s, const char *want) {
    char buf[256];
    ssize_t n = sse_stream_read(s, buf, sizeof buf, 1000);
    int ok = n == (ssize_t)strlen(want) && !memcmp(buf, want, (size_t)n);
    if (!ok)
        fprintf(stderr, "read %zd bytes: %.*s\n", n, n > 0 ? (int)n : 0, buf);
    return ok;
}

int main(void) {
    /* order survives wrap-around, with the producer blocking on a full ring */
    for (size_t max = 1000; max <= 40000; max *= 40) {
        http_stream *s = sse_stream_new("application/octet-stream");
        pthread_t t;
        pthread_create(&t, NULL, produce, s);
        size_t len;
        char *got = read_all(s, max, &len), *want = pattern();
        CHECK(len == BIG && !memcmp(got, want, BIG));
        pthread_join(t, NULL);
        sse_stream_unref(s);
        free(got);
        free(want);
    }

    /* silence: an SSE stream says it is alive, another kind says nothing; then the end */
    http_stream *s = sse_stream_new("text/event-stream; charset=utf-8");
    char buf[64];
    int64_t t0 = sbx_now_ms();
    CHECK(read_is(s, SSE_KEEPALIVE));
    CHECK(sbx_now_ms() - t0 >= 900);
    CHECK(sse_stream_read(s, buf, 4, 50) == 0); /* no room for the comment */
    CHECK(http_stream_write(s, "abc", 3) == 0 && http_stream_write(s, "def", 3) == 0);
    CHECK(read_is(s, "abcdef"));
    sse_stream_end(s);
    CHECK(sse_stream_read(s, buf, sizeof buf, 50) == -1);
    sse_stream_unref(s);
    sse_stream_unref(s);
    s = sse_stream_new("application/octet-stream");
    CHECK(sse_stream_read(s, buf, sizeof buf, 50) == 0);

    /* bytes of a non-text stream pass untouched */
    CHECK(http_stream_write(s,
                            "a\xff"
                            "b",
                            3) == 0);
    CHECK(read_is(s, "a\xff"
                     "b"));

    /* a client that left: writes fail at once */
    CHECK(http_stream_alive(s) == 0);
    sse_stream_client_gone(s);
    CHECK(http_stream_alive(s) == -1);
    CHECK(http_stream_write(s, "x", 1) == -1);
    sse_stream_unref(s);
    sse_stream_unref(s);

    /* a reader that takes nothing for the stall time counts as gone */
    sse_set_stall_ms(200);
    s = sse_stream_new("application/octet-stream");
    char *fill = calloc(1, SSE_RING_BYTES);
    CHECK(http_stream_write(s, fill, SSE_RING_BYTES) == 0); /* fits exactly */
    t0 = sbx_now_ms();
    CHECK(http_stream_write(s, "x", 1) == -1);
    int64_t waited = sbx_now_ms() - t0;
    CHECK(waited >= 150 && waited < 2000);
    CHECK(http_stream_alive(s) == -1);
    sse_stream_unref(s);
    sse_stream_unref(s);

    /* the producer's deadline: a write into a full ring gives up at it, once, and the
     * stream stays open (the next write waits for the reader again) */
    sse_set_stall_ms(5000);
    s = sse_stream_new("application/octet-stream");
    CHECK(http_stream_write(s, fill, SSE_RING_BYTES) == 0);
    t0 = sbx_now_ms();
    http_stream_deadline(s, t0 + 150);
    CHECK(http_stream_write(s, "x", 1) == -1);
    waited = sbx_now_ms() - t0;
    CHECK(waited >= 100 && waited < 2000);
    CHECK(http_stream_alive(s) == 0);
    sse_stream_read(s, fill, 10, 100); /* room for the last words */
    CHECK(http_stream_write(s, "last", 4) == 0);
    free(fill);
    sse_stream_unref(s);
    sse_stream_unref(s);

    /* a frame the deadline cuts is never cut on the wire: its rest goes out before the next
     * write, so a reader sees whole frames in order */
    sse_set_stall_ms(5000);
    s = sse_stream_new("application/octet-stream");
    size_t big = SSE_RING_BYTES + 1000;
    char *frame = malloc(big);
    memset(frame, 'f', big);
    t0 = sbx_now_ms();
    http_stream_deadline(s, t0 + 150);
    CHECK(http_stream_write(s, frame, big) == -1); /* 1000 bytes did not fit in time */
    CHECK(http_stream_alive(s) == 0);
    char *got = malloc(big + 16);
    size_t n = 0;
    ssize_t k;
    while (n < SSE_RING_BYTES && (k = sse_stream_read(s, got + n, big + 16 - n, 100)) > 0)
        n += (size_t)k;
    CHECK(n == SSE_RING_BYTES);
    CHECK(http_stream_write(s, "END", 3) == 0); /* sends the owed 1000 bytes first */
    sse_stream_end(s);
    while ((k = sse_stream_read(s, got + n, big + 16 - n, 100)) > 0)
        n += (size_t)k;
    CHECK(n == big + 3);
    CHECK(got[big - 1] == 'f' && !memcmp(got + big, "END", 3));
    free(got);
    free(frame);
    sse_stream_unref(s);
    sse_stream_unref(s);

    /* text streams leave as well-formed UTF-8; SSE frames split data lines */
    s = sse_stream_new("text/event-stream");
    CHECK(http_stream_write(s, "ok\xff\xfe\n", 5) == 0);
    CHECK(read_is(s, "ok\xEF\xBF\xBD\xEF\xBF\xBD\n"));
    CHECK(http_stream_write(s, "caf\xC3\xA9", 5) == 0);
    CHECK(read_is(s, "caf\xC3\xA9"));
    CHECK(http_stream_sse(s, "stdout", "{\"data\":\"a\"}") == 0);
    CHECK(read_is(s, "event: stdout\ndata: {\"data\":\"a\"}\n\n"));
    CHECK(http_stream_sse(s, "x", "one\ntwo\n") == 0);
    CHECK(read_is(s, "event: x\ndata: one\ndata: two\ndata: \n\n"));
    CHECK(http_stream_sse(s, "e", "") == 0);
    CHECK(read_is(s, "event: e\ndata: \n\n"));
    CHECK(http_stream_sse(s, "e", "\xff") == 0);
    CHECK(read_is(s, "event: e\ndata: \xEF\xBF\xBD\n\n"));
    sse_stream_unref(s);
    sse_stream_unref(s);
    return CHECK_DONE();
}
