/* api_exec.c -- placeholder route table until POST /execute lands. */
#include "http.h"

const http_route api_exec_routes[] = {{0}};
