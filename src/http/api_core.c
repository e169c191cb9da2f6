#include "http.h"
const http_route api_core_routes[] = {{0}};
