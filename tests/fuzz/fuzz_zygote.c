/* fuzz_zygote.c -- the server's readers of the zygote protocol (src/exec/zygote_proto.h):
 * the zygote's ready message "R{json}" (take_ready, src/exec/zygote.c), the status messages a
 * run's init sends on its socket ("S<status>", "E<why>", read by reap, src/exec/sandbox.c) and
 * the done pipe's "D<exit code>" (sandbox_take_done), which the program itself writes: that
 * one is fully untrusted. The readers are static, so this file includes both .c files (their
 * other functions then come from here, not from libsbx_core.a) and hands each input to one
 * reader through a real SOCK_SEQPACKET pair or pipe, as the server gets them.
 *
 * The input's first byte picks the reader: 0 ready, 1 status (the rest is split at '\n' into
 * messages), 2 done. Checks: a ready zygote has a module array; a reaped run has an exit code
 * from -1 to 255 or a signal; an accepted done message starts with 'D' and has a code 0..255. */
#include "../../src/exec/sandbox.c"
#include "../../src/exec/zygote.c"

#include "fuzz.h"

static void pair(int sv[2]) {
    FUZZ_ASSERT(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
}

static void ready(const uint8_t *data, size_t size) {
    int sv[2];
    pair(sv);
    if (size > 16000)
        size = 16000;
    if (send(sv[1], data, size, MSG_NOSIGNAL) != (ssize_t)size)
        abort();
    zyg z = {.name = "fuzz", .mu = PTHREAD_MUTEX_INITIALIZER, .ctrl = -1, .pidfd = -1};
    if (take_ready(&z, sv[0], sbx_now_ms())) {
        FUZZ_ASSERT(z.ready && z.ctrl == sv[0] && z.starts == 1);
        FUZZ_ASSERT(cJSON_IsArray(z.modules) && z.preload_mb >= 0);
    } else {
        FUZZ_ASSERT(!z.ready && !z.modules);
    }
    cJSON_Delete(z.modules);
    close(sv[0]);
    close(sv[1]);
}

static sandbox_child *fake_child(void) {
    sandbox_child *c = calloc(1, sizeof *c);
    FUZZ_ASSERT(c);
    c->pid = c->pidfd = c->sock = c->notifyfd = c->wakefd = c->zpidfd = c->donefd = -1;
    pthread_mutex_init(&c->mu, NULL);
    return c;
}

static void status(const uint8_t *data, size_t size) {
    int sv[2];
    pair(sv);
    int sent = 0;
    for (size_t i = 0; i < size && sent < 64;) { /* the socket's buffer holds them all */
        const uint8_t *nl = memchr(data + i, '\n', size - i);
        size_t n = nl ? (size_t)(nl - (data + i)) : size - i;
        if (send(sv[1], data + i, n, MSG_NOSIGNAL) != (ssize_t)n)
            break;
        sent++;
        i += n + 1;
    }
    close(sv[1]);
    sandbox_child *c = fake_child();
    c->sock = sv[0];
    reap(c, 0);
    FUZZ_ASSERT(c->reaped);
    FUZZ_ASSERT(c->exit_code >= -1 && c->exit_code <= 255);
    FUZZ_ASSERT(c->signo >= 0);
    FUZZ_ASSERT(c->nv >= 0 && c->nv <= SBX_MAX_VIOL);
    close(sv[0]);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static void done(const uint8_t *data, size_t size) {
    int p[2];
    FUZZ_ASSERT(pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0);
    if (size > 4096)
        size = 4096;
    if (size && write(p[1], data, size) != (ssize_t)size)
        abort();
    close(p[1]);
    sandbox_child *c = fake_child();
    c->donefd = p[0];
    int code = -1000;
    int rc = sandbox_take_done(c, &code);
    FUZZ_ASSERT(rc == -1 || rc == 0 || rc == 1);
    if (rc == 1)
        FUZZ_ASSERT(size >= 2 && data[0] == 'D' && code >= 0 && code <= 255);
    else
        FUZZ_ASSERT(code == -1000);
    if (c->donefd >= 0)
        close(c->donefd);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static bool quiet;
    if (!quiet) {
        log_init(LOG_ERROR); /* take_ready and reap log each message otherwise */
        quiet = true;
    }
    if (size < 1)
        return 0;
    switch (data[0] % 3) {
    case 0:
        ready(data + 1, size - 1);
        break;
    case 1:
        status(data + 1, size - 1);
        break;
    default:
        done(data + 1, size - 1);
        break;
    }
    return 0;
}
