// bench.mjs -- measure sandboxd against what a user would pick instead, side by side in one
// run: bare `python3 -c`, a direct CDP client on the same Chromium, Puppeteer, and (agent
// reads) Playwright's ariaSnapshot.
//
//   node bench/bench.mjs --bin build-bench/sandboxd [--quick] [--out bench/results.md]
//
// Every row runs sandboxd and its baseline alternately (one of each per round), so slow drift
// of the machine hits both sides alike. It prints medians, p90 and the ratio for each row and
// writes the same table as Markdown. Everything listens on 127.0.0.1; nothing leaves the
// machine. bench/run.sh builds the server and installs the npm packages first.

import { spawn } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { chromium as playwright } from "playwright-core";
import puppeteer from "puppeteer-core";
import WebSocket from "ws";

const here = path.dirname(fileURLToPath(import.meta.url));

// ---- options ----

function parseArgs(argv) {
    const o = {
        bin: path.join(here, "..", "build-bench", "sandboxd"),
        out: path.join(here, "results.md"),
        python: "/usr/bin/python3",
        quick: false,
        only: null,
    };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        if (a === "--bin") o.bin = argv[++i];
        else if (a === "--out") {
            o.out = argv[++i];
            o.outGiven = true;
        }
        else if (a === "--python") o.python = argv[++i];
        else if (a === "--quick") o.quick = true;
        else if (a === "--only") o.only = argv[++i].split(",");
        else if (a === "-h" || a === "--help") {
            console.log(
                "usage: node bench/bench.mjs [--bin PATH] [--out FILE] [--python PATH] [--quick]\n" +
                    "       [--only exec,throughput,session,work,egress,long,memory,reads]\n" +
                    "  --quick  fewer rounds (a smoke run; figures are noisier)\n" +
                    "  --only   run these groups of rows only (written to bench/results-only.md\n" +
                    "           unless --out says where: bench/results.md keeps full runs)");
            process.exit(0);
        } else {
            console.error(`bench: unknown argument "${a}" (see --help)`);
            process.exit(2);
        }
    }
    // a partial run never replaces the full run's table that the README cites
    if (o.only && !o.outGiven) o.out = path.join(here, "results-only.md");
    return o;
}

const opt = parseArgs(process.argv.slice(2));
const rounds = (n) => (opt.quick ? Math.max(3, Math.ceil(n / 4)) : n);
const wanted = (group) => !opt.only || opt.only.includes(group);

// ---- statistics ----

function quantile(xs, q) {
    const s = [...xs].sort((a, b) => a - b);
    return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}
const median = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    const m = s.length >> 1;
    return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

// ---- small helpers ----

async function waitFor(what, fn, timeoutMs = 30000, stepMs = 20) {
    const end = Date.now() + timeoutMs;
    for (;;) {
        const v = await fn();
        if (v) return v;
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
        await sleep(stepMs);
    }
}

function tmpdir(tag) {
    return fs.mkdtempSync(path.join(os.tmpdir(), `sandboxd-bench-${tag}-`));
}

// Run a program to its end; resolves with {code, stdout}.
function run(file, args) {
    return new Promise((resolve, reject) => {
        const p = spawn(file, args, { stdio: ["ignore", "pipe", "inherit"] });
        const out = [];
        p.stdout.on("data", (d) => out.push(d));
        p.on("error", reject);
        p.on("close", (code) => resolve({ code, stdout: Buffer.concat(out).toString() }));
    });
}

// ---- /proc: process trees, memory, a quiet machine ----

function busyJiffies() {
    const f = fs.readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
    const total = f.reduce((a, b) => a + b, 0);
    return { busy: total - f[3] - f[4], total };
}

// Wait until the machine has been nearly idle (under 10% of its CPUs) for two windows of
// 250 ms: a Chromium that just started keeps working for a while after it answers, and a
// measurement should not share the machine with that (at most 15 s).
async function settle() {
    const end = Date.now() + 15000;
    let calm = 0, prev = busyJiffies();
    while (calm < 2 && Date.now() < end) {
        await sleep(250);
        const cur = busyJiffies();
        const frac = (cur.busy - prev.busy) / Math.max(1, cur.total - prev.total);
        calm = frac < 0.1 ? calm + 1 : 0;
        prev = cur;
    }
}

function procTable() {
    const kids = new Map();
    for (const d of fs.readdirSync("/proc")) {
        if (!/^\d+$/.test(d)) continue;
        const ppid = parentOf(Number(d));
        if (!kids.has(ppid)) kids.set(ppid, []);
        kids.get(ppid).push(Number(d));
    }
    return kids;
}

function descendants(pid) {
    const kids = procTable();
    const out = [];
    const todo = [pid];
    while (todo.length) {
        for (const c of kids.get(todo.pop()) || []) {
            out.push(c);
            todo.push(c);
        }
    }
    return out;
}

function parentOf(pid) {
    try {
        const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
        return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    } catch {
        return 0;
    }
}

function exeOf(pid) {
    try {
        return fs.readlinkSync(`/proc/${pid}/exe`);
    } catch {
        return "";
    }
}

// Proportional set size in KiB (shared pages split among the processes that map them).
function pssKiB(pid) {
    try {
        const m = /^Pss:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"));
        return m ? Number(m[1]) : 0;
    } catch {
        return 0;
    }
}

function rssKiB(pid) {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
    return Number(m[1]);
}

// PSS of a Chromium: the browser process and every process under it.
const treePssKiB = (pid) => [pid, ...descendants(pid)].reduce((s, p) => s + pssKiB(p), 0);

// ---- sandboxd ----

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

class Server {
    constructor(bin, env) {
        this.bin = bin;
        this.env = env;
        this.token = "bench-" + Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString("hex");
    }

    async start() {
        this.dir = tmpdir("server");
        this.logPath = path.join(this.dir, "server.log");
        const log = fs.openSync(this.logPath, "a");
        const env = {
            PATH: process.env.PATH,
            HOST: "127.0.0.1",
            PORT: "0",
            DATA_DIR: path.join(this.dir, "data"),
            AUTH_TOKEN: this.token,
            LOG_LEVEL: "info",
            EGRESS_PRIVATE_ALLOWED: "127.0.0.1", // the bench site is on loopback
            ...this.env,
        };
        this.proc = spawn(this.bin, [], { env, stdio: ["ignore", log, log] });
        fs.closeSync(log);
        this.exited = new Promise((resolve) => this.proc.on("exit", resolve));
        this.port = await waitFor("sandboxd to listen", () => {
            if (this.proc.exitCode !== null)
                throw new Error("sandboxd exited:\n" + fs.readFileSync(this.logPath, "utf8"));
            const m = /listening on http:\/\/[0-9.]+:(\d+)/.exec(fs.readFileSync(this.logPath, "utf8"));
            return m && Number(m[1]);
        });
        return this;
    }

    request(method, urlPath, body) {
        const data = body === undefined ? undefined : JSON.stringify(body);
        return new Promise((resolve, reject) => {
            const rq = http.request(
                {
                    host: "127.0.0.1",
                    port: this.port,
                    method,
                    path: urlPath,
                    agent,
                    headers: {
                        Authorization: `Bearer ${this.token}`,
                        ...(data ? { "Content-Type": "application/json" } : {}),
                    },
                },
                (res) => {
                    const chunks = [];
                    res.on("data", (c) => chunks.push(c));
                    res.on("end", () => {
                        const text = Buffer.concat(chunks).toString();
                        let json = null;
                        if ((res.headers["content-type"] || "").startsWith("application/json"))
                            json = JSON.parse(text);
                        resolve({ status: res.statusCode, text, json });
                    });
                },
            );
            rq.on("error", reject);
            rq.end(data);
        });
    }

    // A request that must answer with `status`; returns the parsed reply.
    async call(method, urlPath, body, status = 200) {
        const r = await this.request(method, urlPath, body);
        if (r.status !== status)
            throw new Error(`${method} ${urlPath}: HTTP ${r.status} (wanted ${status}): ${r.text}`);
        return r;
    }

    health() {
        return this.call("GET", "/health").then((r) => r.json);
    }

    async poolFull() {
        await waitFor("the browser pool to fill", async () => {
            const p = (await this.health()).browser.pool;
            return p.ready >= p.size;
        }, 60000, 25);
    }

    async stop() {
        this.proc.kill("SIGTERM");
        await this.exited;
        fs.rmSync(this.dir, { recursive: true, force: true });
    }
}

// ---- Chromium and a direct CDP client ----

// The flags sandboxd gives its Chromiums, so the baselines differ from it in nothing but
// the server in between (src/browser/chromium.c).
const CHROMIUM_FLAGS = [
    "--headless", "--no-first-run", "--no-default-browser-check",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--disable-breakpad",
    "--disable-crash-reporter", "--disable-gpu", "--mute-audio", "--disable-quic",
    "--disable-domain-reliability", "--disable-client-side-phishing-detection",
    "--disable-popup-blocking", "--disable-prompt-on-repost", "--disable-hang-monitor",
    "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
    "--disable-features=Translate,MediaRouter,OptimizationHints,AutofillServerCommunication," +
        "CertificateTransparencyComponentUpdater,InterestFeedContentSuggestions," +
        "DialMediaRouteProvider,WebUIOmniboxPopup,WebUIOmniboxAimPopup",
    "--metrics-recording-only", "--no-pings", "--password-store=basic", "--use-mock-keychain",
    "--noerrdialogs", "--hide-scrollbars", "--window-size=1280,800",
];
// What a bare launch needs and nothing more.
const BARE_FLAGS = ["--headless"];
const rootFlags = () => (process.getuid() === 0 ? ["--no-sandbox"] : []);

class Cdp {
    static connect(url) {
        return new Promise((resolve, reject) => {
            const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 256 << 20 });
            ws.once("open", () => resolve(new Cdp(ws)));
            ws.once("error", reject);
        });
    }

    constructor(ws) {
        this.ws = ws;
        this.next = 1;
        this.pending = new Map();
        this.waiters = [];
        ws.on("message", (raw) => {
            const m = JSON.parse(raw);
            if (m.id !== undefined) {
                const p = this.pending.get(m.id);
                this.pending.delete(m.id);
                if (m.error) p.reject(new Error(`${p.method}: ${m.error.message}`));
                else p.resolve(m.result);
                return;
            }
            this.waiters = this.waiters.filter((w) => {
                if (w.method !== m.method || w.sessionId !== m.sessionId) return true;
                w.resolve(m.params);
                return false;
            });
        });
    }

    send(method, params = {}, sessionId = undefined) {
        const id = this.next++;
        return new Promise((resolve, reject) => {
            this.pending.set(id, { resolve, reject, method });
            this.ws.send(JSON.stringify({ id, method, params, sessionId }));
        });
    }

    // The next event `method` on `sessionId`; register before the command that causes it.
    once(method, sessionId) {
        return new Promise((resolve) => this.waiters.push({ method, sessionId, resolve }));
    }

    close() {
        this.ws.close();
    }
}

// Start a Chromium with its own fresh profile and connect to it; the clock of a cold start
// stops at the first CDP reply (Browser.getVersion).
async function launchChromium(bin, flags) {
    const dir = tmpdir("chromium");
    const t0 = performance.now();
    // Its own TMPDIR too (removed with the profile): Chromium puts its singleton socket's
    // directory there, and would leave one in /tmp for every start.
    const proc = spawn(bin, [...flags, ...rootFlags(), "--remote-debugging-port=0",
        `--user-data-dir=${dir}`, "about:blank"],
    { stdio: ["ignore", "ignore", "pipe"], detached: true, env: { ...process.env, TMPDIR: dir } });
    const exited = new Promise((resolve) => proc.on("exit", resolve));
    const wsUrl = await new Promise((resolve, reject) => {
        let err = "";
        const onData = (d) => {
            err += d;
            const m = /DevTools listening on (ws:\/\/\S+)/.exec(err);
            if (m) {
                proc.stderr.off("data", onData);
                proc.stderr.resume();
                resolve(m[1]);
            }
        };
        proc.stderr.on("data", onData);
        proc.on("exit", (code) => reject(new Error(`chromium exited (${code}): ${err}`)));
    });
    const cdp = await Cdp.connect(wsUrl);
    await cdp.send("Browser.getVersion");
    const startMs = performance.now() - t0;
    return {
        proc, cdp, startMs,
        async close() {
            cdp.close();
            try {
                process.kill(-proc.pid, "SIGKILL");
            } catch {}
            await exited;
            fs.rmSync(dir, { recursive: true, force: true });
        },
    };
}

// The direct client's tab: attached (flat session), with Page and Network events on, as a
// client that navigates and reads statuses needs it.
async function openTab(cdp, targetId) {
    if (!targetId) ({ targetId } = await cdp.send("Target.createTarget", { url: "about:blank" }));
    const { sessionId } = await cdp.send("Target.attachToTarget", { targetId, flatten: true });
    await Promise.all([cdp.send("Page.enable", {}, sessionId),
        cdp.send("Network.enable", {}, sessionId)]);
    return { targetId, sessionId };
}

async function directNavigate(cdp, tab, url) {
    const loaded = cdp.once("Page.loadEventFired", tab.sessionId);
    await cdp.send("Page.navigate", { url }, tab.sessionId);
    await loaded;
}

async function directEval(cdp, tab, expression) {
    const r = await cdp.send("Runtime.evaluate", { expression, returnByValue: true }, tab.sessionId);
    if (r.exceptionDetails) throw new Error(`evaluate: ${r.exceptionDetails.text}`);
    return r.result.value;
}

const CENTRE_OF = (sel) => `(() => { const el = document.querySelector(${JSON.stringify(sel)});
    el.scrollIntoView({block: 'center', inline: 'center', behavior: 'instant'});
    const r = el.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()`;

async function directClick(cdp, tab, sel) {
    const [x, y] = await directEval(cdp, tab, CENTRE_OF(sel));
    const ev = (type, extra = {}) => cdp.send("Input.dispatchMouseEvent",
        { type, x, y, button: "left", clickCount: 1, ...extra }, tab.sessionId);
    await ev("mouseMoved", { button: "none", clickCount: 0 });
    await ev("mousePressed", { buttons: 1 });
    await ev("mouseReleased");
}

// ---- the local site the browsers load ----

function pageHtml(n) {
    const rows = Array.from({ length: 40 }, (_, i) =>
        `<tr><td>${i}</td><td>item ${i}</td><td>${(i * 37) % 101}</td></tr>`).join("");
    return `<!doctype html><html><head><meta charset="utf-8"><title>bench page ${n}</title>
<style>body{font:15px sans-serif;margin:2em}td{padding:2px 8px}</style></head><body>
<h1>Benchmark page</h1><p>A small page of the size a scraper reads: a heading, a table, a button.</p>
<button id="btn">Count</button> <span id="out">0</span>
<table>${rows}</table>
<script>let c = 0; document.getElementById('btn').addEventListener('click', () => {
  document.getElementById('out').textContent = String(++c); });</script></body></html>`;
}

// A sign-up form, the page an agent fills most often.
const FORM_HTML = `<!doctype html><html><head><meta charset="utf-8"><title>Sign up</title></head><body>
<header><nav><a href="/">Home</a> <a href="/pricing">Pricing</a> <a href="/docs">Docs</a></nav></header>
<main><h1>Create your account</h1><form onsubmit="return false">
<label for="email">Email</label> <input id="email" type="email" required>
<label for="pw">Password</label> <input id="pw" type="password" required>
<label for="name">Full name</label> <input id="name">
<label>Country <select id="country"><option>France</option><option>Germany</option><option>Spain</option></select></label>
<fieldset><legend>Plan</legend><label><input type="radio" name="plan" checked> Free</label>
<label><input type="radio" name="plan"> Pro</label></fieldset>
<label><input type="checkbox" id="tos"> I accept the terms</label>
<textarea aria-label="Message" rows="3"></textarea>
<div class="actions"><div><button type="submit">Create account</button> <button type="reset">Clear</button></div></div>
</form><p>Already registered? <a href="/login">Log in</a></p></main>
<footer><p>(c) 2026 Example</p></footer></body></html>`;

// A page of about n DOM nodes: rows of text, links and buttons in generic wrappers.
function nodesHtml(n) {
    const rows = Array.from({ length: Math.ceil(n / 8) }, (_, i) =>
        `<div class="row"><span>Item ${i}</span> <a href="/item/${i}">details</a> <button>Add ${i}</button></div>`).join("\n");
    return `<!doctype html><html><head><meta charset="utf-8"><title>nodes ${n}</title></head><body>
<h1>Catalogue</h1>${rows}</body></html>`;
}

function startSite() {
    return new Promise((resolve) => {
        const srv = http.createServer((rq, res) => {
            const u = new URL(rq.url, "http://x");
            const n = u.searchParams.get("n") || "0";
            res.writeHead(200, { "Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store" });
            // /oopif: the form in an iframe of another site (localhost, this same server), which
            // Chromium runs in a renderer of its own
            const oopif = `<!doctype html><html><head><meta charset="utf-8"><title>Framed</title></head><body>
<h1>Sign up below</h1><iframe title="form" width="600" height="700" src="http://localhost:${rq.socket.localPort}/form"></iframe></body></html>`;
            res.end(u.pathname === "/form" ? FORM_HTML : u.pathname === "/nodes" ? nodesHtml(Number(n)) :
                u.pathname === "/oopif" ? oopif : pageHtml(n));
        });
        srv.keepAliveTimeout = 60000;
        srv.listen(0, "127.0.0.1", () => resolve({ srv, url: `http://127.0.0.1:${srv.address().port}/page` }));
    });
}

// ---- rows ----

const rows = [];
let group = ""; // the group whose rows are being added

// Record a row: samples of sandboxd and of its baseline (times, rates or sizes, in `unit`);
// the ratio is sandboxd's median over the baseline's.
function addRow(r) {
    r.group = group;
    rows.push(r);
    const f = (s) => (s ? `${fmt(median(s))} (p90 ${fmt(quantile(s, 0.9))})` : "");
    // r.q: the quantile the ratio compares (default the median, as printed), e.g. 0.9 for a
    // p90 target
    const at = (xs) => (r.q ? quantile(xs, r.q) : median(xs));
    r.ratio = r.base ? at(r.ours) / at(r.base) : null;
    console.log(`  ${r.work}: ${f(r.ours)} ${r.unit}` +
        (r.base ? `  vs ${f(r.base)}  ratio ${fmtRatio(r.ratio)}` : "") +
        (r.target ? `  target ${r.target}` : ""));
}

function fmt(v) {
    return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
}

// Two decimals, three below 0.1 (a 0.049 must not read as the 0.05 it missed or met).
const fmtRatio = (x) => x.toFixed(x < 0.1 ? 3 : 2) + "x";

function met(r) {
    if (!r.target) return "";
    const m = /^([<>]=) ([0-9.]+)(x| MiB)$/.exec(r.target);
    const v = m[3] === "x" ? r.ratio : median(r.ours);
    return (m[1] === "<=" ? v <= Number(m[2]) : v >= Number(m[2])) ? "yes" : "no";
}

// Time one call.
async function timed(fn) {
    const t = performance.now();
    const v = await fn();
    return [performance.now() - t, v];
}

// ---- exec rows ----

const PRINT = "print(2+2)";
const NUMPY = "import numpy as np, pandas as pd\n" +
    "df = pd.DataFrame(np.arange(12).reshape(4, 3), columns=list('abc'))\n" +
    "print(int(df.sum().sum()), df['b'].mean())";
const NUMPY_OUT = "66 5.5\n";

async function execOnce(srv, code, want) {
    const r = await srv.call("POST", "/execute", { code });
    if (r.json.exitCode !== 0 || r.json.stdout !== want)
        throw new Error(`run gave ${JSON.stringify(r.json)}`);
}

async function bareOnce(code, want) {
    const r = await run(opt.python, ["-c", code]);
    if (r.code !== 0 || r.stdout !== want) throw new Error(`python3 -c gave ${r.code}: ${r.stdout}`);
}

// Alternate sandboxd and baseline, n rounds, after a few unmeasured warm-up rounds of each.
async function sideBySide(n, ours, base, warm = 3) {
    const a = [], b = [];
    for (let i = 0; i < warm + n; i++) {
        const [ta] = await timed(ours);
        const [tb] = await timed(base);
        if (i >= warm) {
            a.push(ta);
            b.push(tb);
        }
    }
    return [a, b];
}

async function execRows(bin) {
    console.log("exec: sandboxd (EXEC_MODE=zygote, the default) vs bare python3 -c");
    const srv = await new Server(bin, { BROWSER_POOL_SIZE: "0" }).start();
    try {
        await waitFor("the zygote", async () => (await srv.health()).exec.zygote?.ready, 60000);
        let [a, b] = await sideBySide(rounds(60), () => execOnce(srv, PRINT, "4\n"),
            () => bareOnce(PRINT, "4\n"));
        addRow({ work: "`POST /execute` `print(2+2)`, HTTP round trip", ours: a, base: b,
            baseline: "bare `python3 -c 'print(2+2)'`", unit: "ms", target: "<= 0.5x" });
        [a, b] = await sideBySide(rounds(20), () => execOnce(srv, NUMPY, NUMPY_OUT),
            () => bareOnce(NUMPY, NUMPY_OUT), 2);
        addRow({ work: "a run that uses numpy and pandas (preloaded)", ours: a, base: b,
            baseline: "the same code, bare `python3 -c`", unit: "ms", target: "<= 0.05x" });
        const h = await srv.health();
        if (h.exec.startedCold !== 0) throw new Error(`${h.exec.startedCold} runs went cold`);
        const spawnTrue = [];
        for (let i = 0; i < rounds(30); i++)
            spawnTrue.push((await timed(() => run("/bin/true", [])))[0]);
        addRow({ work: "(reference) `/bin/true` spawned from Node: what each `python3 -c` baseline includes",
            ours: spawnTrue, unit: "ms" });
    } finally {
        await srv.stop();
    }

    console.log("exec: sandboxd with EXEC_MODE=fork (every run a fresh python3)");
    const cold = await new Server(bin, { BROWSER_POOL_SIZE: "0", EXEC_MODE: "fork" }).start();
    try {
        let [a, b] = await sideBySide(rounds(30), () => execOnce(cold, PRINT, "4\n"),
            () => bareOnce(PRINT, "4\n"));
        addRow({ work: "`print(2+2)` with `EXEC_MODE=fork`", ours: a, base: b,
            baseline: "bare `python3 -c 'print(2+2)'`", unit: "ms" });
        [a, b] = await sideBySide(rounds(10), () => execOnce(cold, NUMPY, NUMPY_OUT),
            () => bareOnce(NUMPY, NUMPY_OUT), 1);
        addRow({ work: "numpy and pandas with `EXEC_MODE=fork`", ours: a, base: b,
            baseline: "the same code, bare `python3 -c`", unit: "ms" });
    } finally {
        await cold.stop();
    }
}

// `clients` loops of `per` calls each, all at once; returns calls per second.
async function throughput(clients, per, once) {
    const t = performance.now();
    await Promise.all(Array.from({ length: clients }, async () => {
        for (let i = 0; i < per; i++) await once();
    }));
    return (clients * per) / ((performance.now() - t) / 1000);
}

async function throughputRows(bin) {
    const per = opt.quick ? 40 : 200;
    console.log(`throughput: 10 clients x ${per} runs of print(2+2)`);
    const srv = await new Server(bin, { BROWSER_POOL_SIZE: "0" }).start();
    try {
        await waitFor("the zygote", async () => (await srv.health()).exec.zygote?.ready, 60000);
        const a = [], b = [];
        for (let i = 0; i < (opt.quick ? 1 : 3); i++) {
            a.push(await throughput(10, per, () => execOnce(srv, PRINT, "4\n")));
            b.push(await throughput(10, per, () => bareOnce(PRINT, "4\n")));
        }
        addRow({ work: `10 concurrent clients x ${per} runs`, ours: a, base: b,
            baseline: "10 workers running bare `python3 -c`", unit: "runs/s",
            target: ">= 2x" });
    } finally {
        await srv.stop();
    }
}

// ---- browser rows ----

async function sessionRows(bin, site) {
    console.log("sessions: POST /browser/sessions vs a cold Chromium's first CDP reply");
    const warm = await new Server(bin, { BROWSER_POOL_SIZE: "2" }).start();
    const chromium = (await warm.health()).browser.chromium;
    const cold = async () => {
        const c = await launchChromium(chromium, CHROMIUM_FLAGS);
        await c.close();
        return c.startMs;
    };
    try {
        const a = [], b = [];
        for (let i = 0; i < 2 + rounds(15); i++) {
            await warm.poolFull();
            await settle();
            const [t, r] = await timed(() => warm.call("POST", "/browser/sessions", {}, 201));
            await warm.call("DELETE", `/browser/sessions/${r.json.sessionId}`, undefined, 204);
            await warm.poolFull(); // the refill must not run beside the baseline
            await settle();
            const tb = await cold();
            if (i >= 2) {
                a.push(t);
                b.push(tb);
            }
        }
        addRow({ work: "session create, pool warm", ours: a, base: b,
            baseline: "cold Chromium start to its first CDP reply", unit: "ms", target: "<= 0.15x" });

        // The whole short job a scraper does, against launching Chromium through Puppeteer.
        const job = async (n) => {
            const s = (await warm.call("POST", "/browser/sessions", {}, 201)).json.sessionId;
            await warm.call("POST", `/browser/sessions/${s}/navigate`, { url: `${site}?n=${n}`, waitUntil: "load" });
            const html = (await warm.call("GET", `/browser/sessions/${s}/content`)).text;
            if (!html.includes(`bench page ${n}`)) throw new Error("content is not the page");
            await warm.call("DELETE", `/browser/sessions/${s}`, undefined, 204);
        };
        // `tmp`: its TMPDIR, for Chromium's singleton socket as above (made and removed
        // outside the timed part).
        const pup = async (n, tmp) => {
            const browser = await puppeteer.launch({ executablePath: chromium, headless: true,
                args: [...rootFlags()], userDataDir: undefined, env: { ...process.env, TMPDIR: tmp } });
            const page = await browser.newPage();
            await page.goto(`${site}?n=${n}`, { waitUntil: "load" });
            const html = await page.content();
            if (!html.includes(`bench page ${n}`)) throw new Error("puppeteer content is not the page");
            await browser.close();
        };
        const c = [], d = [], e = [];
        for (let i = 0; i < 1 + rounds(10); i++) {
            await warm.poolFull();
            await settle();
            const [t] = await timed(() => job(i));
            await warm.poolFull();
            await settle();
            const tmp = tmpdir("puppeteer");
            const [tp] = await timed(() => pup(i, tmp));
            fs.rmSync(tmp, { recursive: true, force: true });
            if (i >= 1) {
                c.push(t);
                d.push(tp);
            }
        }
        // Back to back, the pool has no time to refill: most sessions wait for a launch.
        await warm.poolFull();
        await settle();
        for (let i = 0; i < rounds(10); i++) e.push((await timed(() => job(100 + i)))[0]);
        addRow({ work: "create + navigate + content + delete, pool warm", ours: c, base: d,
            baseline: "Puppeteer: launch + newPage + goto + content + close", unit: "ms",
            target: "<= 0.5x" });
        addRow({ work: "the same, back to back (pool drained)", ours: e, base: d,
            baseline: "Puppeteer, as above", unit: "ms" });
    } finally {
        await warm.stop();
    }

    const empty = await new Server(bin, { BROWSER_POOL_SIZE: "0" }).start();
    try {
        const a = [], b = [];
        for (let i = 0; i < 2 + rounds(15); i++) {
            await settle();
            const [t, r] = await timed(() => empty.call("POST", "/browser/sessions", {}, 201));
            await empty.call("DELETE", `/browser/sessions/${r.json.sessionId}`, undefined, 204);
            await settle();
            const tb = await cold();
            if (i >= 2) {
                a.push(t);
                b.push(tb);
            }
        }
        addRow({ work: "session create, pool empty (`BROWSER_POOL_SIZE=0`)", ours: a, base: b,
            baseline: "cold Chromium start to its first CDP reply", unit: "ms", target: "<= 1.15x" });
    } finally {
        await empty.stop();
    }
}

async function workRows(bin, site) {
    console.log("work in an open session vs a direct CDP client on one open tab");
    const srv = await new Server(bin, { BROWSER_POOL_SIZE: "0" }).start();
    const chromium = (await srv.health()).browser.chromium;
    const direct = await launchChromium(chromium, CHROMIUM_FLAGS);
    try {
        const { sessionId: s } = (await srv.call("POST", "/browser/sessions", {}, 201)).json;
        const api = `/browser/sessions/${s}`;
        const { targetInfos } = await direct.cdp.send("Target.getTargets");
        const tab = await openTab(direct.cdp, targetInfos.find((t) => t.type === "page").targetId);
        const cdp = direct.cdp;
        let n = 0;

        let [a, b] = await sideBySide(rounds(40), async () => {
            await srv.call("POST", `${api}/navigate`, { url: `${site}?n=${++n}`, waitUntil: "load" });
            const html = (await srv.call("GET", `${api}/content`)).text;
            if (!html.includes(`bench page ${n}`)) throw new Error("content is not the page");
        }, async () => {
            await directNavigate(cdp, tab, `${site}?n=${++n}`);
            const html = await directEval(cdp, tab, "document.documentElement.outerHTML");
            if (!html.includes(`bench page ${n}`)) throw new Error("direct content is not the page");
        });
        addRow({ work: "warm navigate (load) + content of a local page", ours: a, base: b,
            baseline: "direct CDP client, same work on one open tab", unit: "ms", target: "<= 1.1x" });

        const read = "document.getElementById('out').textContent";
        let clicksA = Number((await srv.call("POST", `${api}/action`, { action: "evaluate", expression: read })).json.result);
        let clicksB = Number(await directEval(cdp, tab, read));
        [a, b] = await sideBySide(rounds(40), async () => {
            await srv.call("POST", `${api}/action`, { action: "click", selector: "#btn" });
            const r = (await srv.call("POST", `${api}/action`, { action: "evaluate", expression: read })).json;
            if (Number(r.result) !== ++clicksA) throw new Error(`click did not count: ${r.result}`);
        }, async () => {
            await directClick(cdp, tab, "#btn");
            if (Number(await directEval(cdp, tab, read)) !== ++clicksB) throw new Error("direct click did not count");
        });
        addRow({ work: "click action + read the result", ours: a, base: b,
            baseline: "direct CDP client: element centre, mouse events, evaluate", unit: "ms",
            target: "<= 1.1x" });

        [a, b] = await sideBySide(rounds(30), async () => {
            const t = (await srv.call("POST", `${api}/tabs`, {}, 201)).json.tabId;
            await srv.call("DELETE", `${api}/tabs/${t}`, undefined, 204);
        }, async () => {
            const t = await openTab(cdp);
            await cdp.send("Target.closeTarget", { targetId: t.targetId });
        });
        addRow({ work: "new tab + close", ours: a, base: b,
            baseline: "direct CDP client: createTarget, attach, enable, closeTarget", unit: "ms",
            target: "<= 1.1x" });

        // The server hands a new tab out before its renderer answered the set-up; the first
        // call on the tab pays for that, so this row shows the two together.
        [a, b] = await sideBySide(rounds(20), async () => {
            const t = (await srv.call("POST", `${api}/tabs`, {}, 201)).json.tabId;
            await srv.call("POST", `${api}/navigate`, { url: `${site}?n=${++n}`, tabId: t });
            await srv.call("DELETE", `${api}/tabs/${t}`, undefined, 204);
        }, async () => {
            const t = await openTab(cdp);
            await directNavigate(cdp, t, `${site}?n=${++n}`);
            await cdp.send("Target.closeTarget", { targetId: t.targetId });
        });
        addRow({ work: "(reference) new tab + navigate (load) + close", ours: a, base: b,
            baseline: "direct CDP client: the same with Page.navigate in between", unit: "ms" });
        await srv.call("DELETE", api, undefined, 204);
    } finally {
        await direct.close();
        await srv.stop();
    }
}

// ---- long agent work: bursts of creates, stored state, live events ----

// The reader of a session's events, on a worker thread of its own: parsing frames on the
// bench's event loop would delay the very reply being timed and charge the bench's own work to
// the server. The worker counts whole "event:" lines into a shared counter.
const EVENTS_READER = `
const http = require("node:http");
const { workerData, parentPort } = require("node:worker_threads");
const count = new Int32Array(workerData.shared);
const rq = http.get({ host: "127.0.0.1", port: workerData.port, path: workerData.path,
    headers: { Authorization: "Bearer " + workerData.token } }, (res) => {
    Atomics.store(count, 1, 1); // connected
    let rest = "";
    res.on("data", (c) => {
        const lines = (rest + c.toString()).split("\\n");
        rest = lines.pop();
        Atomics.add(count, 0, lines.filter((l) => l.startsWith("event: ")).length);
    });
    res.on("error", () => {});
});
rq.on("error", () => {});
parentPort.on("message", () => { rq.destroy(); parentPort.close(); });
`;

async function eventsReader(srv, sid) {
    const shared = new SharedArrayBuffer(8);
    const count = new Int32Array(shared);
    const w = new Worker(EVENTS_READER, { eval: true, workerData: { shared, port: srv.port,
        token: srv.token, path: `/browser/sessions/${sid}/events` } });
    await waitFor("the events reader to connect", () => Atomics.load(count, 1) === 1, 10000);
    return {
        frames: () => Atomics.load(count, 0),
        stop: () => new Promise((resolve) => { w.once("exit", resolve); w.postMessage("stop"); }),
    };
}

async function longRows(bin, site) {
    console.log("long work: a burst of creates, a create with state, console with a reader");
    const srv = await new Server(bin, { BROWSER_POOL_SIZE: "2", BROWSER_MAX_SESSIONS: "16" }).start();
    const chromium = (await srv.health()).browser.chromium;
    try {
        // A burst of 8 concurrent creates against a warm pool of 2: every create's time.
        const a = [], b = [];
        for (let i = 0; i < rounds(6); i++) {
            await srv.poolFull();
            await settle();
            const ids = [];
            await Promise.all(Array.from({ length: 8 }, async () => {
                const [t, r] = await timed(() => srv.call("POST", "/browser/sessions", {}, 201));
                a.push(t);
                ids.push(r.json.sessionId);
            }));
            for (const id of ids) await srv.call("DELETE", `/browser/sessions/${id}`, undefined, 204);
            await srv.poolFull();
            await settle();
            const c = await launchChromium(chromium, CHROMIUM_FLAGS);
            await c.close();
            b.push(c.startMs);
        }
        addRow({ work: "burst of 8 concurrent creates, pool of 2: each create (p90)", ours: a,
            base: b, q: 0.9, baseline: "one cold Chromium start to its first CDP reply (p90)",
            unit: "ms", target: "<= 0.5x" });

        // A create that restores a stored state (10 cookies, 2 origins) against a plain one.
        const url = new URL(site);
        const state = {
            cookies: Array.from({ length: 10 }, (_, i) => ({ name: `c${i}`, value: `v${i}`,
                domain: url.hostname, path: "/", expires: -1, httpOnly: false, secure: false,
                sameSite: "Lax" })),
            origins: [`http://${url.hostname}:${url.port}`, `http://localhost:${url.port}`].map(
                (origin) => ({ origin, localStorage: [{ name: "token", value: "t".repeat(64) }] })),
        };
        const c = [], d = [];
        for (let i = 0; i < 2 + rounds(12); i++) {
            for (const [body, into] of [[{ state }, c], [{}, d]]) {
                await srv.poolFull();
                await settle();
                const [t, r] = await timed(() => srv.call("POST", "/browser/sessions", body, 201));
                await srv.call("DELETE", `/browser/sessions/${r.json.sessionId}`, undefined, 204);
                if (i >= 2) into.push(t);
            }
        }
        addRow({ work: "create with a stored state (10 cookies, 2 origins)", ours: c, base: d,
            baseline: "a plain create", unit: "ms", target: "<= 1.2x" });

        // A page logging 1,000 console messages, with and without an events reader attached.
        const { sessionId: s } = (await srv.call("POST", "/browser/sessions", {}, 201)).json;
        await srv.call("POST", `/browser/sessions/${s}/navigate`, { url: site });
        const log1000 = () => srv.call("POST", `/browser/sessions/${s}/action`, { action: "evaluate",
            expression: "(() => { for (let i = 0; i < 1000; i++) console.log('message ' + i," +
                " {i}); return 1; })()" });
        const e = [], f = [];
        const withReader = async () => {
            const rd = await eventsReader(srv, s);
            const [t] = await timed(log1000);
            await waitFor("the reader to get the frames", () => rd.frames() >= 1000, 30000);
            await rd.stop();
            return t;
        };
        const withoutReader = async () => (await timed(log1000))[0];
        for (let i = 0; i < 2 + rounds(20); i++) {
            // interleaved, and each goes first every other round
            let t, tn;
            if (i % 2) {
                t = await withReader();
                tn = await withoutReader();
            } else {
                tn = await withoutReader();
                t = await withReader();
            }
            if (i >= 2) {
                e.push(t);
                f.push(tn);
            }
        }
        await srv.call("DELETE", `/browser/sessions/${s}`, undefined, 204);
        addRow({ work: "a page logs 1,000 console messages, an events reader attached", ours: e,
            base: f, baseline: "the same, no reader", unit: "ms", target: "<= 1.1x" });
    } finally {
        await srv.stop();
    }
}

async function readsRows(bin, site) {
    console.log("agent reads: GET snapshot vs Playwright page.ariaSnapshot({mode: 'ai'}) on the same Chromium");
    const srv = await new Server(bin, { BROWSER_POOL_SIZE: "0",
        EGRESS_PRIVATE_ALLOWED: "127.0.0.1,localhost" }).start();
    const chromium = (await srv.health()).browser.chromium;
    const pw = await playwright.launch({ executablePath: chromium, headless: true, args: rootFlags() });
    const base = site.replace(/\/page$/, "");
    try {
        const { sessionId: s } = (await srv.call("POST", "/browser/sessions", {}, 201)).json;
        const api = `/browser/sessions/${s}`;
        const page = await pw.newPage();
        const pages = [["a form page", `${base}/form`], ["a 2,000-node page", `${base}/nodes?n=2000`]];
        for (const [what, url] of pages) {
            await srv.call("POST", `${api}/navigate`, { url });
            await page.goto(url);
            let ours = "", theirs = "";
            const [a, b] = await sideBySide(rounds(30), async () => {
                ours = (await srv.call("GET", `${api}/snapshot?maxChars=2000000`)).json.snapshot;
            }, async () => {
                theirs = await page.ariaSnapshot({ mode: "ai" });
            });
            if (!/\[ref=f?[0-9]*e[0-9]+\]/.test(ours) || !/\[ref=f?[0-9]*e[0-9]+\]/.test(theirs))
                throw new Error(`a snapshot without refs: ${ours.slice(0, 200)} / ${theirs.slice(0, 200)}`);
            addRow({ work: `snapshot of ${what}: time`, ours: a, base: b,
                baseline: "Playwright `page.ariaSnapshot({mode: 'ai'})`", unit: "ms", target: "<= 0.5x" });
            addRow({ work: `snapshot of ${what}: size`, ours: [ours.length], base: [theirs.length],
                baseline: "Playwright `page.ariaSnapshot({mode: 'ai'})`", unit: "chars", target: "<= 1.0x" });
        }

        // The same form read through an out-of-process iframe (its own target session) against
        // the form page itself, each in its own session, interleaved.
        {
            const { sessionId: s2 } = (await srv.call("POST", "/browser/sessions", {}, 201)).json;
            await srv.call("POST", `/browser/sessions/${s2}/navigate`, { url: `${base}/oopif` });
            await srv.call("POST", `${api}/navigate`, { url: `${base}/form` });
            let framed = "", plain = "";
            const [a, b] = await sideBySide(rounds(30), async () => {
                framed = (await srv.call("GET", `/browser/sessions/${s2}/snapshot`)).json.snapshot;
            }, async () => {
                plain = (await srv.call("GET", `${api}/snapshot`)).json.snapshot;
            });
            if (!/textbox "Email".*\[ref=f[0-9]+e[0-9]+\]/.test(framed))
                throw new Error(`the OOPIF's form is not in the snapshot: ${framed.slice(0, 300)}`);
            addRow({ work: "(reference) snapshot of the form page in a cross-site iframe (OOPIF)", ours: a, base: b,
                baseline: "snapshot of the form page itself", unit: "ms" });
            await srv.call("DELETE", `/browser/sessions/${s2}`, undefined, 204);
        }

        // MCP tools/call navigate + snapshot against the same two REST calls.
        let id = 0, n = 0;
        const tool = async (name, args) => {
            const r = await srv.call("POST", "/mcp", { jsonrpc: "2.0", id: ++id, method: "tools/call",
                params: { name, arguments: args } });
            if (!r.json.result || r.json.result.isError) throw new Error(`${name}: ${r.text.slice(0, 300)}`);
            return r.json.result;
        };
        const [a, b] = await sideBySide(rounds(30), async () => {
            await tool("browser_navigate", { sessionId: s, url: `${base}/form?n=${++n}` });
            const r = await tool("browser_snapshot", { sessionId: s });
            if (!r.content[0].text.includes("Create account")) throw new Error("MCP snapshot is not the page");
        }, async () => {
            await srv.call("POST", `${api}/navigate`, { url: `${base}/form?n=${++n}` });
            const r = (await srv.call("GET", `${api}/snapshot`)).json;
            if (!r.snapshot.includes("Create account")) throw new Error("REST snapshot is not the page");
        });
        addRow({ work: "MCP `tools/call` browser_navigate + browser_snapshot (form page)", ours: a, base: b,
            baseline: "the same two REST calls", unit: "ms", target: "<= 1.2x" });

        // Why a DOM walk and not the accessibility tree: what each costs on big pages.
        const cdp = await page.context().newCDPSession(page);
        for (const nodes of [2000, 50000]) {
            const url = `${base}/nodes?n=${nodes}`;
            await srv.call("POST", `${api}/navigate`, { url, timeoutMs: 60000 });
            await page.goto(url);
            let ourLen = 0, axLen = 0;
            const [t1, t2] = await sideBySide(rounds(8), async () => {
                ourLen = (await srv.call("GET", `${api}/snapshot?maxChars=2000000`)).json.snapshot.length;
            }, async () => {
                axLen = JSON.stringify(await cdp.send("Accessibility.getFullAXTree")).length;
            }, 1);
            addRow({ work: `(reference) ${nodes.toLocaleString("en")}-node page: GET snapshot, whole page (${ourLen.toLocaleString("en")} chars)`,
                ours: t1, base: t2, unit: "ms",
                baseline: `\`Accessibility.getFullAXTree\` over CDP, no formatting (${axLen.toLocaleString("en")} chars of JSON)` });
        }
        await page.close();
        await srv.call("DELETE", api, undefined, 204);
    } finally {
        await pw.close();
        await srv.stop();
    }
}

// ---- egress rows ----

// The --proxy-server flag the server gave the Chromium of its only session (its gateway port).
function sessionProxyFlag(serverPid) {
    for (const pid of descendants(serverPid)) {
        let argv = [];
        try {
            argv = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
        } catch {}
        const flag = argv.find((a) => a.startsWith("--proxy-server="));
        if (flag) return flag;
    }
    throw new Error("no Chromium with --proxy-server under the server");
}

// A loopback server that sends `bytes` of zeros on every request.
function startBlob(bytes) {
    const chunk = Buffer.alloc(1 << 20);
    return new Promise((resolve) => {
        const srv = http.createServer((rq, res) => {
            res.writeHead(200, { "Content-Type": "application/octet-stream", "Content-Length": bytes });
            let left = bytes;
            const more = () => {
                while (left > 0) {
                    const n = Math.min(left, chunk.length);
                    left -= n;
                    if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return res.once("drain", more);
                }
                res.end();
            };
            more();
        });
        srv.listen(0, "127.0.0.1", () => resolve({ srv, url: `http://127.0.0.1:${srv.address().port}/blob` }));
    });
}

// Python that downloads `url` through whatever proxy its environment names and prints MB/s.
const downloadCode = (url, bytes) => "import time, urllib.request\n" +
    `r = urllib.request.urlopen(${JSON.stringify(url)}, timeout=60)\n` +
    "t = time.perf_counter(); n = 0\n" +
    "while True:\n    b = r.read(1 << 20)\n    if not b: break\n    n += len(b)\n" +
    `assert n == ${bytes}, n\n` +
    "print(round(n / (time.perf_counter() - t) / 1e6, 1))";

async function egressRows(bin, site) {
    console.log("egress: the gateway's cost, for a browser and for code");
    // inside a run, 127.0.0.1 is the run's own loopback (and NO_PROXY): it reaches the site by a
    // name the gateway maps to the host's loopback
    const srv = await new Server(bin, { BROWSER_POOL_SIZE: "0", EXEC_NETWORK: "open",
        EGRESS_HOSTS: "blob.bench=127.0.0.1", EGRESS_PRIVATE_ALLOWED: "127.0.0.1,blob.bench" }).start();
    const chromium = (await srv.health()).browser.chromium;
    const blobBytes = 100 * 1000 * 1000;
    const blob = await startBlob(blobBytes);
    let plain, proxied;
    try {
        const { sessionId: s } = (await srv.call("POST", "/browser/sessions", {}, 201)).json;
        const flag = sessionProxyFlag(srv.proc.pid);
        plain = await launchChromium(chromium, CHROMIUM_FLAGS);
        proxied = await launchChromium(chromium, [...CHROMIUM_FLAGS, flag, "--proxy-bypass-list=<-loopback>"]);
        const tabOf = async (b) => {
            const { targetInfos } = await b.cdp.send("Target.getTargets");
            return openTab(b.cdp, targetInfos.find((t) => t.type === "page").targetId);
        };
        const tp = await tabOf(plain), tq = await tabOf(proxied);
        let n = 0;
        const work = (b, tab) => async () => {
            await directNavigate(b.cdp, tab, `${site}?n=${++n}`);
            const html = await directEval(b.cdp, tab, "document.documentElement.outerHTML");
            if (!html.includes(`bench page ${n}`)) throw new Error("content is not the page");
        };
        let [a, b] = await sideBySide(rounds(40), work(proxied, tq), work(plain, tp));
        addRow({ work: "warm navigate (load) + content, through the egress gateway", ours: a, base: b,
            baseline: "the same direct CDP client without a proxy", unit: "ms", target: "<= 1.1x" });
        await srv.call("DELETE", `/browser/sessions/${s}`, undefined, 204);

        const code = downloadCode(blob.url.replace("127.0.0.1", "blob.bench"), blobBytes);
        const bareCode = downloadCode(blob.url, blobBytes);
        a = [];
        b = [];
        for (let i = 0; i < rounds(15) + 1; i++) {
            const r = await srv.call("POST", "/execute", { code, timeoutMs: 120000 });
            if (r.json.exitCode !== 0) throw new Error(`download run gave ${JSON.stringify(r.json)}`);
            const bare = await run(opt.python, ["-c", bareCode]);
            if (bare.code !== 0) throw new Error(`bare download gave ${bare.code}`);
            if (i === 0) continue; // warm-up
            a.push(Number(r.json.stdout));
            b.push(Number(bare.stdout));
        }
        addRow({ work: "100 MB download by code (urllib), through the egress gateway", ours: a, base: b,
            baseline: "bare python3, the same download straight from loopback", unit: "MB/s",
            target: ">= 0.8x" });
    } finally {
        if (plain) await plain.close();
        if (proxied) await proxied.close();
        blob.srv.close();
        await srv.stop();
    }
}

async function memoryRows(bin) {
    console.log("memory: idle session PSS vs a bare Chromium; server RSS with 10 idle sessions");
    const settle = opt.quick ? 2000 : 4000;
    const srv = await new Server(bin, { BROWSER_POOL_SIZE: "0", EXEC_MODE: "fork" }).start();
    const chromium = (await srv.health()).browser.chromium;
    // A session's browser process: a Chromium whose parent is not one.
    const chromiumsOf = (pid) => descendants(pid).filter((p) =>
        exeOf(p) === chromium && exeOf(parentOf(p)) !== chromium);
    try {
        const a = [], b = [];
        for (let i = 0; i < (opt.quick ? 1 : 3); i++) {
            // One at a time, so neither shares library pages with the other.
            const s = (await srv.call("POST", "/browser/sessions", {}, 201)).json.sessionId;
            await sleep(settle);
            const roots = chromiumsOf(srv.proc.pid);
            if (roots.length !== 1) throw new Error(`expected one Chromium, found ${roots.length}`);
            a.push(treePssKiB(roots[0]) / 1024);
            await srv.call("DELETE", `/browser/sessions/${s}`, undefined, 204);
            const bare = await launchChromium(chromium, BARE_FLAGS);
            await sleep(settle);
            b.push(treePssKiB(bare.proc.pid) / 1024);
            await bare.close();
        }
        addRow({ work: "idle memory per session (PSS of its process tree)", ours: a, base: b,
            baseline: "one bare Chromium, one blank tab", unit: "MiB", target: "<= 1.0x" });

        const ids = [];
        for (let i = 0; i < 10; i++)
            ids.push((await srv.call("POST", "/browser/sessions", {}, 201)).json.sessionId);
        await sleep(settle);
        const rss = [rssKiB(srv.proc.pid) / 1024];
        for (const s of ids) await srv.call("DELETE", `/browser/sessions/${s}`, undefined, 204);
        addRow({ work: "server RSS with 10 idle sessions", ours: rss, unit: "MiB", target: "<= 30 MiB" });
    } finally {
        await srv.stop();
    }
}

// ---- report ----

function sh(cmd, args) {
    return new Promise((resolve) => {
        const p = spawn(cmd, args, { stdio: ["ignore", "pipe", "ignore"] });
        let out = "";
        p.stdout.on("data", (d) => (out += d));
        p.on("error", () => resolve(""));
        p.on("close", () => resolve(out.trim()));
    });
}

async function machine(chromium) {
    const cpu = /model name\s*:\s*(.*)/.exec(fs.readFileSync("/proc/cpuinfo", "utf8"));
    const debian = fs.existsSync("/etc/debian_version") ? fs.readFileSync("/etc/debian_version", "utf8").trim() : "?";
    const version = (pkg) => JSON.parse(fs.readFileSync(path.join(here, "node_modules", pkg, "package.json"))).version;
    const pup = version("puppeteer-core");
    return [
        `${cpu ? cpu[1] : "?"}, ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB`,
        `Debian ${debian}, Linux ${os.release()}`,
        `${await sh(chromium, ["--version"])}; ${await sh(opt.python, ["--version"])}; ` +
            `Node ${process.version}; puppeteer-core ${pup}; playwright-core ${version("playwright-core")}`,
    ];
}

// The table of `rows` (or null when there are none) as Markdown.
function markdown(info, when, rows) {
    if (!rows.length) return null;
    const f = (s) => (s ? `${fmt(median(s))} (${fmt(quantile(s, 0.9))})` : "");
    const lines = [
        "| work | sandboxd, median (p90) | baseline | baseline, median (p90) | ratio | target | met |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ];
    for (const r of rows)
        lines.push(`| ${r.work} | ${f(r.ours)} ${r.unit} | ${r.baseline || ""} | ` +
            `${r.base ? f(r.base) + " " + r.unit : ""} | ${r.base ? fmtRatio(r.ratio) : ""} | ` +
            `${r.target ? r.target.replace("<=", "≤").replace(">=", "≥") : ""} | ${met(r)} |`);
    return `Measured ${when} by \`bench/run.sh\`${opt.quick ? " --quick" : ""} on ${info[0]}; ` +
        `${info[1]}; ${info[2]}.\n\n${lines.join("\n")}\n`;
}

// Write the results file: the main table, then the agent reads section. A run that did not
// measure one of them keeps what the file held for it.
function writeResults(md, reads) {
    const START = "<!-- reads: the agent reads group (--only reads rewrites this part only) -->";
    const END = "<!-- /reads -->";
    const old = fs.existsSync(opt.out) ? fs.readFileSync(opt.out, "utf8") : "";
    const i = old.indexOf(START), j = old.indexOf(END);
    const has = i >= 0 && j > i;
    const oldReads = has ? old.slice(i, j + END.length) : "";
    const oldMain = has ? old.slice(0, i) + old.slice(j + END.length) : old;
    const section = reads ? `${START}\n## Agent reads\n\n${reads}${END}` : oldReads;
    fs.writeFileSync(opt.out, (md || oldMain).trimEnd() + "\n" + (section ? "\n" + section + "\n" : ""));
}

async function main() {
    const groups = ["exec", "throughput", "session", "work", "egress", "long", "memory", "reads"];
    for (const g of opt.only || [])
        if (!groups.includes(g)) throw new Error(`--only: unknown group "${g}" (${groups.join(", ")})`);
    if (!fs.existsSync(opt.bin)) throw new Error(`no server binary at ${opt.bin} (run bench/run.sh)`);
    const site = await startSite();
    const when = new Date().toISOString().slice(0, 16).replace("T", " ") + " UTC";
    try {
        const run = [["exec", () => execRows(opt.bin)], ["throughput", () => throughputRows(opt.bin)],
            ["session", () => sessionRows(opt.bin, site.url)], ["work", () => workRows(opt.bin, site.url)],
            ["long", () => longRows(opt.bin, site.url)], ["egress", () => egressRows(opt.bin, site.url)],
            ["memory", () => memoryRows(opt.bin)], ["reads", () => readsRows(opt.bin, site.url)]];
        for (const [g, fn] of run) {
            if (!wanted(g)) continue;
            group = g;
            await fn();
        }
    } finally {
        site.srv.close();
        agent.destroy();
    }
    const chromium = "/usr/lib/chromium/chromium";
    const info = await machine(fs.existsSync(chromium) ? chromium : "chromium");
    const md = markdown(info, when, rows.filter((r) => r.group !== "reads"));
    const reads = markdown(info, when, rows.filter((r) => r.group === "reads"));
    console.log("\n" + (md || "") + "\n" + (reads || ""));
    writeResults(md, reads);
    console.log(`bench: wrote ${opt.out}`);
}

main().catch((e) => {
    console.error("bench: " + (e.stack || e));
    process.exit(1);
});
