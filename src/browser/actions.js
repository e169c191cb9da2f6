// actions.js -- the page half of POST /browser/sessions/{id}/action (src/browser/actions.c).
// Embedded in the binary at build time (cmake/embed_file.cmake); actions.c evaluates it in the
// page with its arguments appended: `<this file>(op, sel, arg, needVis)`. So the file is one
// expression: a function, no trailing semicolon.
//
// It finds the element `sel` (CSS) and runs the operation `op` on it. Answers:
//   {bad: msg}              `sel` is not a valid selector
//   {missing: 1}            no such element (or, with needVis, hidden: 1 when not visible)
//   {v: value}              the operation's value (null for undefined)
//   {fail: kind, msg}       'covered' (another element is on top of its centre: retried by the
//                           caller until its deadline) or 'input' (the caller's mistake: 400)
// Two operations need no element: "scrollTo" (arg [x, y]) answers {v: [scrollX, scrollY]},
// "hidden" answers {hidden: true} when the element is absent or not visible.
(async (op, sel, arg, needVis) => {
    const desc = (n) => {
        if (!n || !n.tagName) return String(n);
        let s = n.tagName.toLowerCase();
        if (n.id) s += "#" + n.id;
        for (const c of n.classList) s += "." + c;
        return s;
    };
    const visible = (n) => {
        const r = n.getBoundingClientRect();
        return r.width > 0 && r.height > 0 && getComputedStyle(n).visibility !== "hidden";
    };
    if (op === "scrollTo") {
        window.scrollTo({ left: arg[0], top: arg[1], behavior: "instant" });
        return { v: [scrollX, scrollY] };
    }
    let el;
    try {
        el = document.querySelector(sel);
    } catch (e) {
        return { bad: String((e && e.message) || e) };
    }
    if (op === "hidden") return { hidden: !el || !visible(el) };
    if (!el) return { missing: 1 };
    if (needVis && !visible(el)) return { missing: 1, hidden: 1 };
    const fail = (kind, msg) => ({ fail: kind, msg });
    const events = () => {
        el.dispatchEvent(new Event("input", { bubbles: true }));
        el.dispatchEvent(new Event("change", { bubbles: true }));
    };
    const ops = {
        // The element's centre in the viewport, after scrolling it there; covered: who covers it.
        center() {
            el.scrollIntoView({ block: "center", inline: "center", behavior: "instant" });
            const r = el.getBoundingClientRect();
            const x = r.left + r.width / 2, y = r.top + r.height / 2;
            const hit = document.elementFromPoint(x, y);
            if (hit && hit !== el && !el.contains(hit)) return fail("covered", desc(hit));
            return { x, y };
        },
        exists() {
            return true;
        },
        focus() {
            el.focus();
            return true;
        },
        // Focus and put the caret at the end of what the element holds (before typing).
        focusEnd() {
            el.focus();
            if (el instanceof HTMLInputElement || el instanceof HTMLTextAreaElement) {
                try {
                    el.setSelectionRange(el.value.length, el.value.length);
                } catch (e) {}
            } else if (el.isContentEditable) {
                const r = document.createRange();
                r.selectNodeContents(el);
                r.collapse(false);
                const s = getSelection();
                s.removeAllRanges();
                s.addRange(r);
            }
            return true;
        },
        // Replace the value (through the prototype's setter, so frameworks see it), then fire
        // input and change.
        fill() {
            if (el instanceof HTMLInputElement || el instanceof HTMLTextAreaElement) {
                el.focus();
                const d = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(el), "value");
                if (d && d.set) d.set.call(el, arg);
                else el.value = arg;
            } else if (el.isContentEditable) {
                el.focus();
                el.textContent = arg;
            } else {
                return fail("input", "element '" + sel + "' is " + desc(el) +
                    ", not an input, textarea or contenteditable element");
            }
            events();
            return true;
        },
        // Select the options whose value or label is in arg; answers the selected values.
        select() {
            if (!(el instanceof HTMLSelectElement))
                return fail("input", "element '" + sel + "' is " + desc(el) + ", not a <select>");
            const opts = Array.from(el.options);
            const hit = (o, w) => o.value === w || o.label === w;
            for (const want of arg) {
                if (!opts.some((o) => hit(o, want)))
                    return fail("input", "values: no option with value or label '" + want +
                        "' in '" + sel + "'");
            }
            if (!el.multiple && arg.length > 1)
                return fail("input", "values: '" + sel + "' is not a multiple select; give one value");
            let first = true;
            for (const o of opts) {
                const on = arg.some((w) => hit(o, w));
                o.selected = on && (el.multiple || first);
                if (on) first = false;
            }
            if (!arg.length) el.selectedIndex = -1;
            events();
            return opts.filter((o) => o.selected).map((o) => o.value);
        },
        scrollIntoView() {
            el.scrollIntoView({ block: "center", inline: "center", behavior: "instant" });
            return [scrollX, scrollY];
        },
    };
    if (!ops[op]) return fail("input", "unknown page operation " + op);
    const v = await ops[op]();
    if (v && v.fail) return v;
    return { v: v === undefined ? null : v };
})
