// snapshot.js -- the page half of the agent reads (src/browser/snapshot.c): the snapshot with
// refs, the markdown and the links of a document. Embedded in the binary at build time
// (cmake/embed_file.cmake); snapshot.c evaluates it in the frame's isolated world "sandboxd"
// (invisible to the page's own scripts, kept for the life of the document) with its arguments
// appended: `<this file>(op, arg, world)`. So the file is one expression: a function, no trailing
// semicolon. A world that ran it keeps it, and the server's later calls there name it only.
//
// The world keeps one ref table per document, under Symbol.for("sandboxd.reads"): a ref names
// one element for as long as that document lives (WeakRef, so the table holds nothing alive),
// and a new document starts with an empty table, which is how a ref taken before a navigation
// is found stale. Same-origin iframes and open shadow roots are walked in place; an iframe this
// world cannot enter (cross-origin) is left as a hole that snapshot.c fills with the snapshot
// of that frame's own world.
//
// Operations and answers:
//   snapshot {maxChars, selector, prefix}
//       {text, refs: [[ref, role, name, line]], holes: [{src, at: line, depth}], truncated, base}
//       (line: the 0-based index of the ref's line; a hole's frame goes in before line `at`)
//       or {bad: msg} (selector invalid) or {missing: 1} (selector matched nothing)
//   markdown {maxChars, mark, frame}
//                         {text, truncated, frames: [src]}: an iframe this world cannot enter
//                         is the line "[[sbx-frame <mark> <index in frames>]]" (frame: a
//                         frame's document, without its title)
//   links {max}           {links: [{text, url}], truncated, frames: iframes not entered}
//   prefix                {prefix}: the ref prefix of this document's table ("" if none yet)
//   reserve {n}           {base}: n more frame prefixes taken from this document's counter
// A snapshot takes one frame prefix per hole it leaves (base is the first); a frame of another
// document that has none yet takes the prefix it is given and keeps it.
//
// `world` ({token, claim}, or null) guards a context id the server kept from an earlier call:
// without claim, a context that is not the world the server set up with that token answers
// {wrong: 1} and is left untouched (the server then asks Chromium for the world again and
// claims it).
(async function reads(op, arg, world) {
    const KEY = Symbol.for("sandboxd.reads");
    let st = globalThis[KEY];
    if (world && !world.claim && (!st || st.token !== world.token)) return { wrong: 1 };
    if (op === "prefix") return { prefix: st ? st.prefix : "" };
    if (!st) {
        // numbered on from the tab's earlier documents (world.start), so an old ref never
        // names an element of this one
        const n = world && world.start > 1 ? world.start - 1 : 0;
        st = { map: new Map(), ids: new WeakMap(), n, prefix: null, nextFrame: 1 };
        globalThis[KEY] = st;
    }
    if (world) st.token = world.token;
    st.run = reads; // later calls in this world send only `st.run(op, arg, world)`
    // Every walk also stops at arg.budgetMs (the server gives what is left of the call's
    // timeout), so a huge page answers in time, truncated, instead of not at all.
    const stopAt = performance.now() + ((arg && arg.budgetMs) || 1e9);
    let steps = 0;
    const late = () => (++steps & 255) === 0 && performance.now() > stopAt;
    const clean = (s) => (s || "").replace(/\s+/g, " ").trim();
    const clip = (s, n) => (s.length > n ? s.slice(0, n - 1) + "\u2026" : s);
    const SKIP = new Set(["SCRIPT", "STYLE", "NOSCRIPT", "TEMPLATE", "HEAD", "META", "LINK",
        "TITLE", "BASE"]);
    // Not rendered: display:none (or inside it), visibility:hidden, hidden, aria-hidden.
    const shown = (el) => {
        if (el.getAttribute("aria-hidden") === "true") return false;
        if (el.checkVisibility && el.checkVisibility({ visibilityProperty: true })) return true;
        const cs = getComputedStyle(el);
        return cs.display === "contents";
    };
    // Children in the flat tree: an open shadow root's instead of the light ones, a slot's
    // assigned nodes instead of its fallback.
    const kids = (n) => {
        if (n.shadowRoot) return n.shadowRoot.childNodes;
        if (n.tagName === "SLOT") {
            const a = n.assignedNodes({ flatten: true });
            if (a.length) return a;
        }
        return n.childNodes;
    };
    const text = (n) => {
        // Rendered text of a subtree, flat tree, hidden parts left out (capped).
        let s = "";
        const go = (m) => {
            if (s.length > 400) return;
            if (m.nodeType === 3) { s += m.data; return; }
            if (m.nodeType !== 1 && m.nodeType !== 11) return;
            if (m.nodeType === 1) {
                if (SKIP.has(m.tagName) || !shown(m)) return;
                if (m.tagName === "IMG") { s += " " + (m.getAttribute("alt") || "") + " "; return; }
                if (m.tagName === "INPUT" || m.tagName === "SELECT" || m.tagName === "TEXTAREA")
                    return;
            }
            for (const c of kids(m)) go(c);
            if (m.nodeType === 1 && getComputedStyle(m).display !== "inline") s += " ";
        };
        go(n);
        return clean(s);
    };
    const byIds = (el, attr) => {
        const ids = (el.getAttribute(attr) || "").split(/\s+/).filter(Boolean);
        const root = el.getRootNode();
        return clean(ids.map((id) => {
            const t = root.getElementById ? root.getElementById(id) : null;
            return t ? t.textContent : "";
        }).join(" "));
    };
    const INPUT_ROLE = { button: "button", submit: "button", reset: "button", image: "button",
        checkbox: "checkbox", radio: "radio", range: "slider", number: "spinbutton",
        search: "searchbox", file: "button", color: "button" };
    const TAG_ROLE = { BUTTON: "button", TEXTAREA: "textbox", OPTION: "option", IMG: "img",
        UL: "list", OL: "list", MENU: "list", LI: "listitem", TABLE: "table", TR: "row",
        TH: "columnheader", TD: "cell", NAV: "navigation", MAIN: "main", ASIDE: "complementary",
        ARTICLE: "article", DIALOG: "dialog", P: "paragraph", DETAILS: "group", SUMMARY: "button",
        FIELDSET: "group", PROGRESS: "progressbar", METER: "meter", HR: "separator",
        BLOCKQUOTE: "blockquote", IFRAME: "iframe", FRAME: "iframe", DL: "list", DT: "term",
        DD: "definition", CAPTION: "caption", LEGEND: "legend", PRE: "code", FIGURE: "figure",
        OUTPUT: "status", THEAD: "rowgroup", TBODY: "rowgroup", TFOOT: "rowgroup",
        H1: "heading", H2: "heading", H3: "heading", H4: "heading", H5: "heading", H6: "heading" };
    const roleOf = (el) => {
        const r = (el.getAttribute("role") || "").trim().split(/\s+/)[0];
        if (r && r !== "none" && r !== "presentation" && r !== "generic") return r;
        if (r) return "";
        const t = el.tagName;
        if (t === "A" || t === "AREA") return el.hasAttribute("href") ? "link" : "";
        if (t === "INPUT") {
            const ty = (el.getAttribute("type") || "text").toLowerCase();
            if (ty === "hidden") return "";
            return INPUT_ROLE[ty] || (el.list ? "combobox" : "textbox");
        }
        if (t === "SELECT") return el.multiple || el.size > 1 ? "listbox" : "combobox";
        if (t === "IMG" && el.getAttribute("alt") === "") return "";
        if (t === "SECTION") return el.hasAttribute("aria-label") ||
            el.hasAttribute("aria-labelledby") ? "region" : "";
        if (t === "FORM") return el.hasAttribute("aria-label") ||
            el.hasAttribute("aria-labelledby") || el.name ? "form" : "";
        if (t === "HEADER" || t === "FOOTER") {
            if (el.parentElement && el.parentElement.closest("article,aside,main,nav,section"))
                return "";
            return t === "HEADER" ? "banner" : "contentinfo";
        }
        if (el.isContentEditable && (!el.parentElement || !el.parentElement.isContentEditable))
            return "textbox";
        return TAG_ROLE[t] || "";
    };
    const FROM_CONTENT = new Set(["button", "link", "heading", "option", "tab", "menuitem",
        "menuitemcheckbox", "menuitemradio", "treeitem", "checkbox", "radio", "switch", "cell",
        "columnheader", "rowheader", "tooltip", "caption", "legend"]);
    // Roles that hold text without being named by it: their text is shown as a value.
    const TEXTY = new Set(["paragraph", "listitem", "blockquote", "code", "definition", "term",
        "status", "figure", "article", "region", "group", "dialog"]);
    // Roles whose content is all their name: nothing more is walked below them.
    const LEAF = new Set(["button", "heading", "option", "tab", "menuitem", "checkbox", "radio",
        "switch", "textbox", "searchbox", "combobox", "slider", "spinbutton", "progressbar",
        "meter", "img", "separator", "menuitemcheckbox", "menuitemradio", "treeitem"]);
    const ACTIONABLE = new Set(["link", "button", "textbox", "searchbox", "checkbox", "radio",
        "combobox", "listbox", "option", "slider", "spinbutton", "switch", "tab", "menuitem",
        "menuitemcheckbox", "menuitemradio", "treeitem", "gridcell"]);
    const nameOf = (el, role) => {
        let s = clean(el.getAttribute("aria-label"));
        if (s) return s;
        if (el.hasAttribute("aria-labelledby")) {
            s = byIds(el, "aria-labelledby");
            if (s) return s;
        }
        const t = el.tagName;
        if (t === "INPUT" || t === "TEXTAREA" || t === "SELECT" || t === "METER" ||
            t === "PROGRESS" || t === "OUTPUT") {
            if (el.labels && el.labels.length)
                s = clean(Array.from(el.labels, (l) => text(l)).join(" "));
            if (!s && t === "INPUT" && /^(button|submit|reset)$/i.test(el.type))
                s = el.value || (el.type === "submit" ? "Submit" : el.type === "reset" ? "Reset" : "");
            if (!s && t === "INPUT" && el.type === "image") s = clean(el.alt);
            if (!s) s = clean(el.getAttribute("placeholder"));
        } else if (t === "IMG" || t === "AREA") {
            s = clean(el.getAttribute("alt"));
        } else if (t === "FIELDSET") {
            const l = el.querySelector(":scope > legend");
            s = l ? text(l) : "";
        } else if (t === "TABLE") {
            s = el.caption ? text(el.caption) : "";
        } else if (t === "IFRAME" || t === "FRAME") {
            s = clean(el.getAttribute("title") || el.getAttribute("name"));
        } else if (FROM_CONTENT.has(role)) {
            s = text(el);
        }
        if (!s) s = clean(el.getAttribute("title"));
        return clip(s, 200);
    };
    const deepActive = () => {
        let a = document.activeElement;
        for (;;) {
            if (a && a.shadowRoot && a.shadowRoot.activeElement) a = a.shadowRoot.activeElement;
            else if (a && (a.tagName === "IFRAME" || a.tagName === "FRAME") && a.contentDocument &&
                a.contentDocument.activeElement) a = a.contentDocument.activeElement;
            else return a;
        }
    };
    const refOf = (el) => {
        let r = st.ids.get(el);
        if (!r) {
            r = st.prefix + "e" + ++st.n;
            st.ids.set(el, r);
            st.map.set(r, new WeakRef(el));
        }
        return r;
    };

    if (op === "reserve") {
        const base = st.nextFrame;
        st.nextFrame += arg.n;
        return { base };
    }
    if (op === "snapshot") {
        if (st.prefix === null) st.prefix = arg.prefix || "";
        const max = arg.maxChars;
        let out = "", truncated = false, nl = 0;
        const refs = [], holes = [];
        const active = deepActive();
        const line = (depth, s) => {
            if (out.length > max) { truncated = true; return false; }
            out += "  ".repeat(depth) + s + "\n";
            nl++;
            return true;
        };
        const q = (s) => JSON.stringify(s);
        // Text directly under a container, merged until the next element that shows.
        let pend = "";
        const flush = (depth) => {
            const s = clean(pend);
            pend = "";
            if (s) line(depth, "- text: " + q(clip(s, 500)));
        };
        const walk = (n, depth, noText) => {
            if (truncated) return;
            for (const c of kids(n)) {
                if (truncated || (late() && (truncated = true))) return;
                if (c.nodeType === 3) { if (!noText) pend += c.data; continue; }
                if (c.nodeType !== 1) continue;
                if (SKIP.has(c.tagName) || !shown(c)) continue;
                if (getComputedStyle(c).display !== "inline") pend += " ";
                node(c, depth);
            }
        };
        const node = (el, depth) => {
            const role = roleOf(el);
            // A generic wrapper is folded away; a label's text is already its control's name.
            if (!role) { walk(el, depth, el.tagName === "LABEL" && !!el.control); return; }
            flush(depth);
            const name = nameOf(el, role);
            let s = "- " + role;
            if (name) s += " " + q(name);
            const t = el.tagName;
            if (role === "heading") {
                const lv = el.getAttribute("aria-level") || (/^H[1-6]$/.test(t) ? t[1] : "");
                if (lv) s += " [level=" + lv + "]";
            }
            const aria = (a) => el.getAttribute(a);
            const isBox = t === "INPUT" && (el.type === "checkbox" || el.type === "radio");
            if (isBox ? el.indeterminate : aria("aria-checked") === "mixed") s += " [checked=mixed]";
            else if (isBox ? el.checked : aria("aria-checked") === "true") s += " [checked]";
            if (el.matches(":disabled") || aria("aria-disabled") === "true") s += " [disabled]";
            const det = t === "SUMMARY" && el.parentElement && el.parentElement.tagName === "DETAILS";
            const ex = det ? String(el.parentElement.open) : aria("aria-expanded");
            if (ex === "true") s += " [expanded]";
            else if (ex === "false") s += " [collapsed]";
            if (el === active) s += " [focused]";
            if ((t === "OPTION" && el.selected) || aria("aria-selected") === "true") s += " [selected]";
            if (aria("aria-pressed") === "true") s += " [pressed]";
            if (el.required || aria("aria-required") === "true") s += " [required]";
            if (el.readOnly || aria("aria-readonly") === "true") s += " [readonly]";
            if (ACTIONABLE.has(role) || el.hasAttribute("onclick") || el.isContentEditable ||
                (el.tabIndex >= 0 && el.hasAttribute("tabindex"))) {
                const r = refOf(el);
                s += " [ref=" + r + "]";
                refs.push([r, role, name, nl]);
            }
            let val = null;
            if (t === "INPUT" && !isBox && !/^(button|submit|reset|image|file|hidden)$/.test(el.type))
                val = el.type === "password" ? (el.value ? "\u2022".repeat(8) : "") : el.value;
            else if (t === "TEXTAREA") val = el.value;
            else if (t === "SELECT" && !el.multiple)
                val = el.selectedIndex >= 0 ? clean(el.options[el.selectedIndex].text) : "";
            else if (role === "textbox" && el.isContentEditable) val = text(el);
            else if (t === "PROGRESS" || t === "METER") val = String(el.value);
            else if (aria("aria-valuenow") !== null) val = aria("aria-valuetext") || aria("aria-valuenow");
            if (t === "IFRAME" || t === "FRAME") {
                let doc = null;
                try { doc = el.contentDocument; } catch (e) {}
                if (!line(depth, s + ":")) return;
                if (doc && doc.documentElement) walk(doc.documentElement, depth + 1);
                else holes.push({ src: (el.src || "").slice(0, 2048), at: nl, depth: depth + 1 });
                flush(depth + 1);
                return;
            }
            if (LEAF.has(role) || t === "SELECT") {
                if (t === "SELECT") {
                    // the options of a select: one line each when it is a list box
                    if (el.multiple || el.size > 1) {
                        if (!line(depth, s + ":")) return;
                        for (const o of el.options) node(o, depth + 1);
                        return;
                    }
                }
                line(depth, val !== null && val !== "" ? s + ": " + q(clip(val, 300)) : s);
                return;
            }
            // An element whose text is all there is: one line, the text as its name (a link,
            // a cell) or as its value (a paragraph).
            const plain = !el.shadowRoot &&
                !el.querySelector("*:not(br,b,i,em,strong,span,small,code,sup,sub,abbr,mark,u,s,q,cite,time,kbd)");
            if (plain && TEXTY.has(role) && val === null && !name) {
                const tx = text(el);
                if (tx) line(depth, s + ": " + q(clip(tx, 500)));
                else if (s.includes("[ref=")) line(depth, s);
                return;
            }
            if ((plain && FROM_CONTENT.has(role) && name) || (val !== null && !el.children.length)) {
                line(depth, val !== null && val !== "" ? s + ": " + q(clip(val, 300)) : s);
                return;
            }
            const mark = out.length, lines = nl, nrefs = refs.length;
            if (!line(depth, s + ":")) return;
            const at = out.length;
            walk(el, depth + 1);
            flush(depth + 1);
            if (out.length === at) {
                // nothing below: no colon, and no line at all for an unnamed, inert container
                if (!name && !s.includes("[ref=") && !s.includes("[")) {
                    out = out.slice(0, mark);
                    nl = lines;
                    refs.length = nrefs;
                } else {
                    out = out.slice(0, at - 2) + "\n";
                }
            }
        };
        let root = document.documentElement;
        if (arg.selector) {
            try {
                root = document.querySelector(arg.selector);
            } catch (e) {
                return { bad: String((e && e.message) || e) };
            }
            if (!root) return { missing: 1 };
            node(root, 0);
        } else if (root) {
            walk(root, 0);
        }
        flush(0);
        const base = st.nextFrame;
        st.nextFrame += holes.length;
        return { text: out, refs, holes, truncated, base, n: st.n };
    }

    const absUrl = (u) => {
        try { return new URL(u, document.baseURI).href; } catch (e) { return ""; }
    };
    if (op === "links") {
        // Each URL once; a URL longer than 4096 characters (a data: URL, say) is left out, and
        // the answer stops at arg.max links or 4 MB, so it always fits the DevTools socket.
        const seen = new Map(), links = [];
        let truncated = false, size = 0, frames = 0;
        const go = (n) => {
            for (const c of kids(n)) {
                if (truncated || (late() && (truncated = true))) return;
                if (c.nodeType !== 1) continue;
                if (SKIP.has(c.tagName)) continue;
                if ((c.tagName === "A" || c.tagName === "AREA") && c.hasAttribute("href")) {
                    const url = absUrl(c.getAttribute("href"));
                    if (url && url.length <= 4096 && !/^(javascript|data):/i.test(url)) {
                        const t = clip(clean(c.getAttribute("aria-label")) || text(c) ||
                            clean(c.getAttribute("title")), 200);
                        const i = seen.get(url);
                        if (i === undefined) {
                            size += url.length + t.length + 16;
                            if (links.length >= arg.max || size > 4 << 20) { truncated = true; return; }
                            seen.set(url, links.length);
                            links.push({ text: t, url });
                        } else if (!links[i].text && t) {
                            links[i].text = t;
                        }
                    }
                }
                if (c.tagName === "IFRAME") {
                    let d = null;
                    try { d = c.contentDocument; } catch (e) {}
                    if (d && d.documentElement) go(d.documentElement);
                    else frames++; // another world's (snapshot.c reads it there)
                }
                go(c);
                if (truncated) return;
            }
        };
        if (document.documentElement) go(document.documentElement);
        return { links, truncated, frames };
    }

    if (op === "markdown") {
        const max = arg.maxChars;
        let out = "", truncated = false;
        const add = (s) => {
            if (out.length + s.length > max) {
                out += s.slice(0, Math.max(0, max - out.length));
                truncated = true;
                return false;
            }
            out += s;
            return true;
        };
        const esc = (s) => s.replace(/([\\`*_\[\]])/g, "\\$1");
        // Inline content of a node as markdown (links, images, emphasis, code); `inner`: of its
        // children only.
        const inner = (m, budget) => {
            let t = "";
            for (const c of kids(m)) if (t.length <= budget) t += inline(c, budget - t.length);
            return t;
        };
        const inline = (n, budget) => {
            let s = "";
            const go = (m) => {
                if (s.length > budget) return;
                if (m.nodeType === 3) { s += esc(m.data.replace(/\s+/g, " ")); return; }
                if (m.nodeType !== 1 && m.nodeType !== 11) return;
                if (m.nodeType === 1) {
                    if (SKIP.has(m.tagName) || !shown(m)) return;
                    const t = m.tagName;
                    if (t === "BR") { s += "  \n"; return; }
                    if (t === "IMG") {
                        const src = absUrl(m.getAttribute("src") || "");
                        if (src && !src.startsWith("data:"))
                            s += "![" + esc(clean(m.getAttribute("alt"))) + "](" + src + ")";
                        return;
                    }
                    if (t === "A" && m.hasAttribute("href")) {
                        const url = absUrl(m.getAttribute("href"));
                        const label = clean(inner(m, 300)) || esc(clean(m.getAttribute("aria-label") || m.getAttribute("title")));
                        if (url && !/^javascript:/i.test(url)) s += "[" + label + "](" + url + ")";
                        else s += label;
                        return;
                    }
                    if (t === "INPUT" || t === "SELECT" || t === "TEXTAREA" || t === "BUTTON" &&
                        !clean(m.textContent)) return;
                    const w = t === "STRONG" || t === "B" ? "**" : t === "EM" || t === "I" ? "_" :
                        t === "CODE" ? "`" : "";
                    if (w) {
                        const body = clean(t === "CODE" ? m.textContent : inner(m, budget - s.length));
                        if (body) s += " " + w + body + w + " ";
                        return;
                    }
                }
                for (const c of kids(m)) go(c);
            };
            go(n);
            return s.replace(/ *\n */g, "\n").replace(/[ \t]+/g, " ");
        };
        const BLOCK = new Set(["P", "DIV", "SECTION", "ARTICLE", "MAIN", "HEADER", "FOOTER",
            "NAV", "ASIDE", "UL", "OL", "LI", "TABLE", "PRE", "BLOCKQUOTE", "H1", "H2", "H3",
            "H4", "H5", "H6", "FORM", "FIELDSET", "FIGURE", "FIGCAPTION", "DL", "DT", "DD", "HR",
            "BODY", "HTML", "DETAILS", "SUMMARY", "ADDRESS", "DIALOG", "CENTER", "IFRAME"]);
        const hasBlock = (el) => {
            for (const c of kids(el)) if (c.nodeType === 1 && BLOCK.has(c.tagName)) return true;
            return false;
        };
        let navLinks = 0; // boilerplate navigation: its first links only
        const NAV_LINKS = 12;
        const para = (s, prefix) => {
            s = s.trim();
            if (s) add(prefix + s + "\n\n");
        };
        const block = (el, list, quote) => {
            if (truncated || (late() && (truncated = true))) return;
            const t = el.tagName;
            if (SKIP.has(t) || !shown(el)) return;
            const pre = quote ? "> " : "";
            if (/^H[1-6]$/.test(t)) { para(clean(inline(el, 500)), pre + "#".repeat(+t[1]) + " "); return; }
            if (t === "HR") { add(pre + "---\n\n"); return; }
            if (t === "PRE") {
                add(pre + "```\n" + clip(el.textContent, Math.max(0, max - out.length)).replace(/\n?$/, "\n") + "```\n\n");
                return;
            }
            if (t === "NAV" || (el.getAttribute("role") === "navigation")) {
                const as = Array.from(el.querySelectorAll("a[href]"));
                const items = [];
                for (const a of as) {
                    if (navLinks >= NAV_LINKS) break;
                    const label = esc(clean(a.textContent) || clean(a.getAttribute("aria-label")));
                    if (!label) continue;
                    items.push("[" + label + "](" + absUrl(a.getAttribute("href")) + ")");
                    navLinks++;
                }
                const more = as.length - items.length;
                if (items.length) para(items.join(" \u00b7 ") + (more > 0 ? " \u00b7 \u2026 (" + more + " more links)" : ""), pre);
                return;
            }
            if (t === "UL" || t === "OL") {
                let i = 0;
                for (const li of kids(el)) {
                    if (truncated) return;
                    if (li.nodeType !== 1 || li.tagName !== "LI" || !shown(li)) continue;
                    i++;
                    const mark = "  ".repeat(list) + (t === "OL" ? i + ". " : "- ");
                    let head = "";
                    const subs = [];
                    for (const c of kids(li)) {
                        if (c.nodeType === 1 && (c.tagName === "UL" || c.tagName === "OL")) subs.push(c);
                        else head += c.nodeType === 1 || c.nodeType === 3 ? inline(c, 1000) : "";
                    }
                    add(pre + mark + clean(head) + "\n");
                    for (const s of subs) block(s, list + 1, quote);
                }
                if (!list) add("\n");
                return;
            }
            if (t === "TABLE") {
                const rows = Array.from(el.rows).slice(0, 500);
                if (!rows.length) return;
                const cell = (c) => clean(inline(c, 300)).replace(/\|/g, "\\|");
                const width = Math.max(...rows.map((r) => r.cells.length));
                const fmt = (r) => {
                    const cs = Array.from(r.cells, cell);
                    while (cs.length < width) cs.push("");
                    return pre + "| " + cs.join(" | ") + " |\n";
                };
                add(fmt(rows[0]));
                add(pre + "|" + " --- |".repeat(width) + "\n");
                for (const r of rows.slice(1)) if (!add(fmt(r))) return;
                add("\n");
                return;
            }
            if (t === "BLOCKQUOTE") { for (const c of kids(el)) if (c.nodeType === 1) block(c, 0, true); return; }
            if (t === "IFRAME") {
                let d = null;
                try { d = el.contentDocument; } catch (e) {}
                if (d && d.body) block(d.body, list, quote);
                else if (arg.mark) {
                    // another world's frame: a marker where snapshot.c puts that frame's markdown
                    add("\n\n[[sbx-frame " + arg.mark + " " + frames.length + "]]\n\n");
                    frames.push((el.src || "").slice(0, 2048));
                }
                return;
            }
            if (!hasBlock(el) && t !== "BODY" && t !== "HTML") { para(inline(el, 4000), pre); return; }
            // mixed: runs of inline content become paragraphs, blocks recurse
            let run = "";
            for (const c of kids(el)) {
                if (truncated) return;
                if (c.nodeType === 1 && BLOCK.has(c.tagName)) {
                    para(run, pre);
                    run = "";
                    block(c, list, quote);
                } else if (c.nodeType === 1 || c.nodeType === 3) {
                    run += inline(c, 4000);
                }
            }
            para(run, pre);
        };
        const title = clean(document.title);
        const frames = [];
        if (title && !arg.frame) add("# " + esc(title) + "\n\n");
        if (document.body) block(document.body, 0, false);
        return { text: out.replace(/\n{3,}/g, "\n\n"), truncated, frames };
    }
    return { bad: "unknown reads operation " + op };
})
