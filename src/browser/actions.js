// actions.js -- the page half of POST /browser/sessions/{id}/action (src/browser/actions.c).
// Embedded in the binary at build time (cmake/embed_file.cmake); actions.c evaluates it in the
// page with its arguments appended: `<this file>(op, sel, arg, needVis)`. So the file is one
// expression: a function, no trailing semicolon.
//
// It finds the element `sel` (CSS, or {ref} from a snapshot: then it runs in the isolated world
// of the ref's frame, whose table snapshot.js keeps) and runs the operation `op` on it. Answers:
//   {bad: msg}              `sel` is not a valid selector
//   {stale: 1}              the ref names no element of a live document any more
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
        const view = n.ownerDocument.defaultView || window;
        return r.width > 0 && r.height > 0 && view.getComputedStyle(n).visibility !== "hidden";
    };
    const byRef = sel !== null && typeof sel === "object";
    const label = byRef ? sel.ref : sel;
    if (op === "scrollTo") {
        window.scrollTo({ left: arg[0], top: arg[1], behavior: "instant" });
        return { v: [scrollX, scrollY] };
    }
    let el = null;
    if (byRef) {
        const st = globalThis[Symbol.for("sandboxd.reads")];
        const w = st && st.map.get(sel.ref);
        el = (w && w.deref()) || null;
        if (el && (!el.isConnected || !el.ownerDocument.defaultView)) el = null;
        if (!el && op !== "hidden") return { stale: 1 };
    } else {
        try {
            el = document.querySelector(sel);
        } catch (e) {
            return { bad: String((e && e.message) || e) };
        }
    }
    if (op === "hidden") return { hidden: !el || !visible(el) };
    if (!el) return { missing: 1 };
    if (needVis && !visible(el)) return { missing: 1, hidden: 1 };
    const fail = (kind, msg) => ({ fail: kind, msg });
    const events = () => {
        const E = (el.ownerDocument.defaultView || window).Event;
        el.dispatchEvent(new E("input", { bubbles: true }));
        el.dispatchEvent(new E("change", { bubbles: true }));
    };
    const ops = {
        // The element's centre in the viewport, after scrolling it there; covered: who covers it.
        // An element in a shadow root is hit-tested there; one in a same-origin frame gets the
        // frames' offsets added (those of cross-origin frames are added by the caller).
        center() {
            el.scrollIntoView({ block: "center", inline: "center", behavior: "instant" });
            const r = el.getBoundingClientRect();
            let x = r.left + r.width / 2, y = r.top + r.height / 2;
            const root = el.getRootNode();
            const hit = (root.elementFromPoint ? root : el.ownerDocument).elementFromPoint(x, y);
            if (hit && hit !== el && !el.contains(hit)) return fail("covered", desc(hit));
            let view = el.ownerDocument.defaultView;
            while (view && view.frameElement) {
                const fe = view.frameElement, fr = fe.getBoundingClientRect();
                const cs = view.parent.getComputedStyle(fe);
                x += fr.left + fe.clientLeft + parseFloat(cs.paddingLeft);
                y += fr.top + fe.clientTop + parseFloat(cs.paddingTop);
                view = view.parent;
            }
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
            if (el.tagName === "INPUT" || el.tagName === "TEXTAREA") {
                try {
                    el.setSelectionRange(el.value.length, el.value.length);
                } catch (e) {}
            } else if (el.isContentEditable) {
                const r = el.ownerDocument.createRange();
                r.selectNodeContents(el);
                r.collapse(false);
                const s = el.ownerDocument.getSelection();
                s.removeAllRanges();
                s.addRange(r);
            }
            return true;
        },
        // Replace the value (through the prototype's setter, so frameworks see it), then fire
        // input and change.
        fill() {
            if (el.tagName === "INPUT" || el.tagName === "TEXTAREA") {
                el.focus();
                const d = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(el), "value");
                if (d && d.set) d.set.call(el, arg);
                else el.value = arg;
            } else if (el.isContentEditable) {
                el.focus();
                el.textContent = arg;
            } else {
                return fail("input", "element '" + label + "' is " + desc(el) +
                    ", not an input, textarea or contenteditable element");
            }
            events();
            return true;
        },
        // Select the options whose value or label is in arg; answers the selected values.
        select() {
            if (el.tagName !== "SELECT")
                return fail("input", "element '" + label + "' is " + desc(el) + ", not a <select>");
            const opts = Array.from(el.options);
            const hit = (o, w) => o.value === w || o.label === w;
            for (const want of arg) {
                if (!opts.some((o) => hit(o, want)))
                    return fail("input", "values: no option with value or label '" + want +
                        "' in '" + label + "'");
            }
            if (!el.multiple && arg.length > 1)
                return fail("input", "values: '" + label + "' is not a multiple select; give one value");
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
