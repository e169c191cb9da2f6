/* keys.c -- named keys, typed characters and chords for the press and type actions (see
 * keys.h). */
#include "keys.h"

#include <stdio.h>
#include <string.h>

static const br_key KEYS[] = {
    {"Enter", "Enter", 13, "\r"},
    {"Tab", "Tab", 9, NULL},
    {"Escape", "Escape", 27, NULL},
    {"Backspace", "Backspace", 8, NULL},
    {"Delete", "Delete", 46, NULL},
    {"ArrowUp", "ArrowUp", 38, NULL},
    {"ArrowDown", "ArrowDown", 40, NULL},
    {"ArrowLeft", "ArrowLeft", 37, NULL},
    {"ArrowRight", "ArrowRight", 39, NULL},
    {"Home", "Home", 36, NULL},
    {"End", "End", 35, NULL},
    {"PageUp", "PageUp", 33, NULL},
    {"PageDown", "PageDown", 34, NULL},
    {"Insert", "Insert", 45, NULL},
    {"Space", "Space", 32, " "},
    {" ", "Space", 32, " "},
    {"Shift", "ShiftLeft", 16, NULL},
    {"Control", "ControlLeft", 17, NULL},
    {"Alt", "AltLeft", 18, NULL},
    {"Meta", "MetaLeft", 91, NULL},
};

/* Each modifier's name is also its key's name in KEYS. */
static const struct {
    const char *name, *alias;
    int bit;
} MODIFIERS[] = {
    {"Control", "Ctrl", BR_MOD_CONTROL},
    {"Shift", NULL, BR_MOD_SHIFT},
    {"Alt", "Option", BR_MOD_ALT},
    {"Meta", "Cmd", BR_MOD_META},
};

const br_key *br_key_named(const char *name) {
    for (size_t i = 0; i < sizeof KEYS / sizeof KEYS[0]; i++)
        if (strcmp(KEYS[i].key, name) == 0)
            return &KEYS[i];
    return NULL;
}

size_t br_utf8_len(const unsigned char *s) {
    size_t n = (*s < 0x80) ? 1 : (*s >> 5) == 6 ? 2 : (*s >> 4) == 14 ? 3 : (*s >> 3) == 30 ? 4 : 1;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 1;
    return n;
}

void br_key_char(const char *ch, br_key *k, char code[16]) {
    unsigned char c = (unsigned char)ch[0];
    k->key = ch;
    k->text = ch;
    k->vk = 0;
    code[0] = '\0';
    if (ch[1] == '\0' && c < 0x80) {
        if (c >= 'a' && c <= 'z') {
            k->vk = c - 'a' + 'A';
            snprintf(code, 16, "Key%c", c - 'a' + 'A');
        } else if (c >= 'A' && c <= 'Z') {
            k->vk = c;
            snprintf(code, 16, "Key%c", c);
        } else if (c >= '0' && c <= '9') {
            k->vk = c;
            snprintf(code, 16, "Digit%c", c);
        } else if (c == ' ') {
            k->vk = 32;
            snprintf(code, 16, "Space");
        }
    }
    k->code = code;
}

sbx_code br_key_chord(const char *spec, br_chord *out, sbx_err *e) {
    char buf[64];
    if (strlen(spec) >= sizeof buf)
        return sbx_fail(e, SBX_EINVAL, "key: too long");
    snprintf(buf, sizeof buf, "%s", spec);
    br_chord c;
    memset(&c, 0, sizeof c);
    char *rest = buf;
    /* Each '+' that is not the first character ends a modifier ("Control++" presses '+'). */
    for (char *plus; (plus = strchr(rest, '+')) && plus != rest; rest = plus + 1) {
        *plus = '\0';
        int m = -1;
        for (int i = 0; i < 4 && m < 0; i++)
            if (strcmp(rest, MODIFIERS[i].name) == 0 ||
                (MODIFIERS[i].alias && strcmp(rest, MODIFIERS[i].alias) == 0))
                m = i;
        if (m < 0)
            return sbx_fail(e, SBX_EINVAL,
                            "key: '%s' in '%s' is not a modifier (use Control, Shift, Alt or "
                            "Meta before '+', e.g. Control+a)",
                            rest, spec);
        if (!(c.mods & MODIFIERS[m].bit)) {
            c.held[c.nheld] = br_key_named(MODIFIERS[m].name);
            c.held_bit[c.nheld++] = MODIFIERS[m].bit;
        }
        c.mods |= MODIFIERS[m].bit;
    }
    const br_key *k = br_key_named(rest);
    if (k) {
        *out = c;
        out->key = *k;
        return SBX_OK;
    }
    size_t n = strlen(rest);
    if (!rest[0] || br_utf8_len((const unsigned char *)rest) != n)
        return sbx_fail(e, SBX_EINVAL,
                        "key: unknown key '%s' (use one character or a name such as Enter, Tab, "
                        "Escape, Backspace, Delete, ArrowUp, ArrowDown, ArrowLeft, ArrowRight, "
                        "Home, End, PageUp, PageDown, Space; modifiers go before it: "
                        "Control+a, Shift+Tab)",
                        rest);
    *out = c;
    memcpy(out->ch, rest, n + 1);
    if ((c.mods & BR_MOD_SHIFT) && n == 1 && rest[0] >= 'a' && rest[0] <= 'z')
        out->ch[0] = (char)(rest[0] - 'a' + 'A'); /* Shift+a types 'A' */
    br_key_char(out->ch, &out->key, out->code);
    return SBX_OK;
}
