/* test_zygote.c -- zygote.c's pure piece: which tier a program goes to (zygote_mentions_heavy):
 * a heavy module named on an import line, as a whole word, and only when the light tier lacks
 * it. */
#include <string.h>

#include "check.h"
#include "exec/zygote.h"

static cJSON *list(const char *const *names) {
    cJSON *a = cJSON_CreateArray();
    for (; *names; names++)
        cJSON_AddItemToArray(a, cJSON_CreateString(*names));
    return a;
}

int main(void) {
    const char *full_names[] = {"json", "re", "numpy", "pandas", "matplotlib.pyplot", NULL};
    const char *light_names[] = {"json", "re", NULL};
    cJSON *full = list(full_names), *light = list(light_names);
#define HEAVY(code) zygote_mentions_heavy(code, full, light)

    /* every shape of an import statement */
    CHECK(HEAVY("import numpy"));
    CHECK(HEAVY("import numpy as np\nprint(np.pi)"));
    CHECK(HEAVY("from numpy import linalg"));
    CHECK(HEAVY("import numpy.linalg"));
    CHECK(HEAVY("import os, pandas as pd"));
    CHECK(HEAVY("x = 1\n  import pandas\n"));
    CHECK(HEAVY("import matplotlib"));             /* the top-level package of matplotlib.pyplot */
    CHECK(HEAVY("from matplotlib import pyplot")); /* ... on any import line */
    CHECK(HEAVY("import json; import numpy"));

    /* light programs */
    CHECK(!HEAVY("print(2 + 2)"));
    CHECK(!HEAVY("import json, re\nprint(json.dumps([1]))"));
    CHECK(!HEAVY("numpy = 3\nprint(numpy)")); /* not on an import line */
    CHECK(!HEAVY("import numpyish"));         /* not the whole word */
    CHECK(!HEAVY("import my_numpy"));         /* an underscore joins words */
    CHECK(!HEAVY("import os\nx = 'numpy'"));  /* the import is on another line */
    CHECK(!HEAVY(""));

    /* a module the light tier has too never sends a program to the full tier */
    const char *both_names[] = {"json", "re", "numpy", NULL};
    cJSON *both = list(both_names);
    CHECK(!zygote_mentions_heavy("import numpy", full, both));
    CHECK(zygote_mentions_heavy("import pandas", full, both));
    /* no lists yet (no zygote has said what it preloaded): nothing is heavy */
    CHECK(!zygote_mentions_heavy("import numpy", NULL, NULL));
    CHECK(zygote_mentions_heavy("import numpy", full, NULL));

    cJSON_Delete(full);
    cJSON_Delete(light);
    cJSON_Delete(both);
    return CHECK_DONE();
}
