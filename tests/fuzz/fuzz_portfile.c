/* fuzz_portfile.c -- the reader of Chromium's DevToolsActivePort file (read_port_file in
 * src/browser/chromium.c): a port number line, then the browser endpoint's path. Chromium
 * writes it into a profile directory a page's downloads can also reach, so its bytes are
 * outside input. The reader is static: this file includes chromium.c itself (its other
 * functions then come from here instead of libsbx_core.a) and feeds it each input through a
 * memfd. Checks: a file is accepted only when its first line is exactly a port 1..65535 in
 * decimal and its second line a path starting with '/' that fits ws_path; then out has
 * exactly those values. */
#include "../../src/browser/chromium.c"

#include <sys/mman.h>

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("DevToolsActivePort", MFD_CLOEXEC);
        FUZZ_ASSERT(fd >= 0);
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    FUZZ_ASSERT(ftruncate(fd, 0) == 0);
    if (size && pwrite(fd, data, size, 0) != (ssize_t)size)
        abort();
    chromium_proc out;
    memset(&out, 0x5a, sizeof out);
    if (read_port_file(path, &out) != 0)
        return 0;
    /* what the file says, read independently: "<digits>\n/<path>[\n...]" */
    char *txt = fuzz_cstr(data, size);
    size_t d = strspn(txt, "0123456789");
    FUZZ_ASSERT(d > 0 && txt[d] == '\n');
    long long port = strtoll(txt, NULL, 10);
    FUZZ_ASSERT(port >= 1 && port <= 65535 && out.port == (int)port);
    char *p = txt + d + 1;
    p[strcspn(p, "\n")] = '\0';
    FUZZ_ASSERT(p[0] == '/' && strlen(p) < sizeof out.ws_path && !strcmp(out.ws_path, p));
    free(txt);
    return 0;
}
