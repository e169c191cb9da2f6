/* keys.h -- keys for the press and type actions: what CDP's Input.dispatchKeyEvent needs for
 * a named key ("Enter", "ArrowLeft"), for one typed character, and for a chord such as
 * "Control+Shift+ArrowLeft" (modifiers first, joined by '+').
 *
 * Pure functions over constant tables: any thread.
 */
#ifndef SBX_BROWSER_KEYS_H
#define SBX_BROWSER_KEYS_H

#include <stddef.h>

#include "../common/err.h"

/* One key as CDP names it: `key` (DOM key value), `code` (physical key), the Windows virtual
 * key code, and the text it types (NULL: none, e.g. Tab or an arrow). */
typedef struct br_key {
    const char *key, *code;
    int vk;
    const char *text;
} br_key;

/* CDP's modifier bits (Input.dispatchKeyEvent "modifiers"). */
enum { BR_MOD_ALT = 1, BR_MOD_CONTROL = 2, BR_MOD_META = 4, BR_MOD_SHIFT = 8 };

/* The named key: Enter, Tab, Escape, Backspace, Delete, ArrowUp/Down/Left/Right, Home, End,
 * PageUp, PageDown, Insert, Space (or " "), Shift, Control, Alt, Meta; NULL for any other. */
const br_key *br_key_named(const char *name);

/* The key that types `ch` (one UTF-8 sequence, NUL-terminated). key and text point to `ch`,
 * code to the caller's `code` buffer: "KeyA".."KeyZ", "Digit0".."Digit9", "Space" with their
 * virtual key codes, else "" and 0. */
void br_key_char(const char *ch, br_key *k, char code[16]);

/* Bytes in the UTF-8 sequence starting at `s` (1 for a stray byte). */
size_t br_utf8_len(const unsigned char *s);

/* A parsed chord. Points into itself: use it where br_key_chord filled it, do not copy it. */
typedef struct br_chord {
    int mods;              /* BR_MOD_* of every modifier given */
    int nheld;             /* distinct modifiers, in the order they are pressed */
    const br_key *held[4]; /* their keys (br_key_named("Control"), ...) */
    int held_bit[4];       /* their BR_MOD_* bits */
    br_key key;            /* the key pressed while they are held */
    char ch[8], code[16];  /* what `key` may point into */
} br_chord;

/* Parse `spec`: modifiers (Control or Ctrl, Shift, Alt or Option, Meta or Cmd) each followed
 * by '+', then a named key or one character ("Control++" is Control with '+'; "Shift+a" types
 * 'A'). SBX_EINVAL naming the field "key" for an unknown modifier or key, an empty key or a
 * spec of 64 bytes or more; *out is filled only on success. */
sbx_code br_key_chord(const char *spec, br_chord *out, sbx_err *e);

#endif
