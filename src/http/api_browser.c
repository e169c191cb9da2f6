/* api_browser.c -- placeholder route table until browser sessions land. */
#include "http.h"

const http_route api_browser_routes[] = {{0}};
