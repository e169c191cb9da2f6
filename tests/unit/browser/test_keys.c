/* test_keys.c -- key names, typed characters and the chords of the press action
 * (src/browser/keys.c). */
#include <string.h>

#include "browser/keys.h"
#include "check.h"

static int chord(const char *spec, br_chord *c) {
    sbx_err e = {0};
    return br_key_chord(spec, c, &e) == SBX_OK;
}

static int refused(const char *spec, const char *word) {
    sbx_err e = {0};
    br_chord c;
    memset(&c, 0x5a, sizeof c);
    br_chord before = c;
    return br_key_chord(spec, &c, &e) == SBX_EINVAL && strncmp(e.msg, "key: ", 5) == 0 &&
           strstr(e.msg, word) != NULL && memcmp(&c, &before, sizeof c) == 0;
}

int main(void) {
    br_chord c;

    /* A plain named key: no modifiers. */
    CHECK(chord("Enter", &c));
    CHECK(c.mods == 0 && c.nheld == 0);
    CHECK(strcmp(c.key.key, "Enter") == 0 && c.key.vk == 13 && strcmp(c.key.text, "\r") == 0);
    CHECK(chord("ArrowLeft", &c) && c.key.vk == 37 && c.key.text == NULL);

    /* Control+a: Control held, then 'a' (KeyA, 65). */
    CHECK(chord("Control+a", &c));
    CHECK(c.mods == BR_MOD_CONTROL && c.nheld == 1);
    CHECK(strcmp(c.held[0]->key, "Control") == 0 && strcmp(c.held[0]->code, "ControlLeft") == 0);
    CHECK(c.held_bit[0] == BR_MOD_CONTROL);
    CHECK(strcmp(c.key.key, "a") == 0 && strcmp(c.key.code, "KeyA") == 0 && c.key.vk == 65);

    /* Several modifiers, in the order given; aliases; a repeat is held once. */
    CHECK(chord("Control+Shift+ArrowLeft", &c));
    CHECK(c.mods == (BR_MOD_CONTROL | BR_MOD_SHIFT) && c.nheld == 2);
    CHECK(c.held_bit[0] == BR_MOD_CONTROL && c.held_bit[1] == BR_MOD_SHIFT);
    CHECK(strcmp(c.key.key, "ArrowLeft") == 0);
    CHECK(chord("Ctrl+Option+Cmd+x", &c));
    CHECK(c.mods == (BR_MOD_CONTROL | BR_MOD_ALT | BR_MOD_META) && c.nheld == 3);
    CHECK(strcmp(c.held[2]->key, "Meta") == 0);
    CHECK(chord("Shift+Shift+Tab", &c) && c.nheld == 1 && c.mods == BR_MOD_SHIFT);

    /* Shift+a types 'A'; Control++ presses '+'; a lone '+' is a key. */
    CHECK(chord("Shift+a", &c));
    CHECK(strcmp(c.key.key, "A") == 0 && strcmp(c.key.text, "A") == 0 && c.key.vk == 65);
    CHECK(chord("Control++", &c) && c.mods == BR_MOD_CONTROL && strcmp(c.key.key, "+") == 0);
    CHECK(chord("+", &c) && c.mods == 0 && strcmp(c.key.key, "+") == 0 && c.key.vk == 0);

    /* One UTF-8 character is a key; digits and space have codes. */
    CHECK(chord("\xc3\xa9", &c) && strcmp(c.key.key, "\xc3\xa9") == 0 && c.key.code[0] == 0);
    CHECK(chord("7", &c) && strcmp(c.key.code, "Digit7") == 0 && c.key.vk == '7');
    CHECK(chord("Space", &c) && strcmp(c.key.text, " ") == 0);

    /* Refusals name the field and leave *out alone. */
    CHECK(refused("Hyper+a", "not a modifier"));
    CHECK(refused("Hyper", "unknown key"));
    CHECK(refused("ab", "unknown key"));
    CHECK(refused("Control+", "unknown key"));
    CHECK(refused("", "unknown key"));
    char big[80];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    CHECK(refused(big, "too long"));

    /* The pieces the type action uses. */
    CHECK(br_utf8_len((const unsigned char *)"a") == 1);
    CHECK(br_utf8_len((const unsigned char *)"\xc3\xa9") == 2);
    CHECK(br_utf8_len((const unsigned char *)"\xe2\x82\xac") == 3);
    CHECK(br_utf8_len((const unsigned char *)"\xf0\x9f\x98\x80") == 4);
    CHECK(br_utf8_len((const unsigned char *)"\xc3(") == 1); /* a stray lead byte */
    br_key k;
    char code[16];
    br_key_char("Z", &k, code);
    CHECK(strcmp(k.code, "KeyZ") == 0 && k.vk == 'Z' && strcmp(k.text, "Z") == 0);
    br_key_char("?", &k, code);
    CHECK(k.code[0] == 0 && k.vk == 0);
    CHECK(br_key_named("Nope") == NULL);
    CHECK(br_key_named(" ")->vk == 32);
    return CHECK_DONE();
}
