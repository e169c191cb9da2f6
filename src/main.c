/* main.c -- placeholder; the real entry point lands with the HTTP server. */
#include "common/config.h"
int main(int argc, char **argv) {
    int rc = config_load(argc, argv, stderr);
    config_free();
    return rc < 0 ? 2 : 0;
}
