// busy.mjs -- does one session wait on another's traffic? The same calls on one session of an
// otherwise idle server and on each of 8 sessions driven at once, side by side in one run.
//
//   node bench/busy.mjs --bin build-bench/sandboxd [--sessions 8] [--rounds 12] [--quick]
//
// A round is one idle block (session 0 alone does the cycle `per` times) then one busy block
// (all sessions do it `per` times each, at once), so drift of the machine hits both alike. A
// cycle is navigate (load) of a local page, content, a click action and an evaluate; every
// call is timed on its own. It prints p50 and p90 per call, idle against busy, and the ratio
// of the p90s. Everything listens on 127.0.0.1. Node's standard library only. Note that 8
// Chromiums doing work share the machine's CPUs: on a small machine the busy figures carry
// that contention too, not only the server's.

import { spawn } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";

const opt = { bin: "build-bench/sandboxd", sessions: 8, rounds: 12, per: 3 };
for (let i = 2; i < process.argv.length; i++) {
    const a = process.argv[i];
    if (a === "--bin") opt.bin = process.argv[++i];
    else if (a === "--sessions") opt.sessions = Number(process.argv[++i]);
    else if (a === "--rounds") opt.rounds = Number(process.argv[++i]);
    else if (a === "--quick") opt.rounds = 4;
    else {
        console.error(`busy: unknown argument "${a}" (see the head of ${process.argv[1]})`);
        process.exit(2);
    }
}

function quantile(xs, q) {
    const s = [...xs].sort((a, b) => a - b);
    return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}

async function waitFor(what, fn, timeoutMs = 30000) {
    const end = Date.now() + timeoutMs;
    for (;;) {
        const v = await fn();
        if (v) return v;
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
        await sleep(20);
    }
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

class Server {
    async start(bin) {
        this.dir = fs.mkdtempSync(path.join(os.tmpdir(), "sandboxd-busy-"));
        this.token = "busy-" + Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString("hex");
        const logPath = path.join(this.dir, "server.log");
        const log = fs.openSync(logPath, "a");
        this.proc = spawn(bin, [], {
            env: {
                PATH: process.env.PATH, HOST: "127.0.0.1", PORT: "0", AUTH_TOKEN: this.token,
                DATA_DIR: path.join(this.dir, "data"), LOG_LEVEL: "info", BROWSER_POOL_SIZE: "0",
                EGRESS_PRIVATE_ALLOWED: "127.0.0.1", // the local pages: through the gateway
                BROWSER_MAX_SESSIONS: String(opt.sessions + 1),
            },
            stdio: ["ignore", log, log],
        });
        fs.closeSync(log);
        this.exited = new Promise((resolve) => this.proc.on("exit", resolve));
        try {
            this.port = await waitFor("sandboxd to listen", () => {
                if (this.proc.exitCode !== null) throw new Error(fs.readFileSync(logPath, "utf8"));
                const m = /listening on http:\/\/[0-9.]+:(\d+)/.exec(fs.readFileSync(logPath, "utf8"));
                return m && Number(m[1]);
            });
        } catch (e) {
            await this.stop(); // leave no server behind
            throw e;
        }
        return this;
    }

    call(method, urlPath, body, want = 200) {
        const data = body === undefined ? undefined : JSON.stringify(body);
        return new Promise((resolve, reject) => {
            const rq = http.request({
                host: "127.0.0.1", port: this.port, method, path: urlPath, agent,
                headers: { Authorization: `Bearer ${this.token}`,
                    ...(data ? { "Content-Type": "application/json" } : {}) },
            }, (res) => {
                const chunks = [];
                res.on("data", (c) => chunks.push(c));
                res.on("end", () => {
                    const text = Buffer.concat(chunks).toString();
                    if (res.statusCode !== want)
                        reject(new Error(`${method} ${urlPath}: HTTP ${res.statusCode}: ${text}`));
                    else resolve(text);
                });
            });
            rq.on("error", reject);
            rq.end(data);
        });
    }

    async stop() {
        if (this.proc.exitCode === null) this.proc.kill("SIGTERM");
        await this.exited;
        fs.rmSync(this.dir, { recursive: true, force: true });
    }
}

function startSite() {
    return new Promise((resolve) => {
        const srv = http.createServer((rq, res) => {
            const n = new URL(rq.url, "http://x").searchParams.get("n") || "0";
            res.writeHead(200, { "Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store" });
            res.end(`<!doctype html><title>busy ${n}</title><button id=b>go</button><span id=o>0</span>` +
                `<script>let c=0;b.onclick=()=>{o.textContent=String(++c)}</script>`);
        });
        srv.keepAliveTimeout = 60000;
        srv.listen(0, "127.0.0.1", () => resolve({ srv, url: `http://127.0.0.1:${srv.address().port}/` }));
    });
}

const CALLS = ["navigate", "content", "click", "evaluate"];

// One cycle on session `sid`; pushes each call's time into `into[call]`.
async function cycle(srv, sid, site, n, into) {
    const api = `/browser/sessions/${sid}`;
    const steps = {
        navigate: () => srv.call("POST", `${api}/navigate`, { url: `${site}?n=${n}` }),
        content: async () => {
            if (!(await srv.call("GET", `${api}/content`)).includes(`busy ${n}`))
                throw new Error("content is not the page");
        },
        click: () => srv.call("POST", `${api}/action`, { action: "click", selector: "#b" }),
        evaluate: async () => {
            const r = JSON.parse(await srv.call("POST", `${api}/action`,
                { action: "evaluate", expression: "document.getElementById('o').textContent" }));
            if (r.result !== "1") throw new Error(`the click did not count: ${r.result}`);
        },
    };
    for (const c of CALLS) {
        const t = performance.now();
        await steps[c]();
        into[c].push(performance.now() - t);
    }
}

async function main() {
    const srv = await new Server().start(opt.bin);
    const { srv: site, url } = await startSite();
    const idle = Object.fromEntries(CALLS.map((c) => [c, []]));
    const busy = Object.fromEntries(CALLS.map((c) => [c, []]));
    try {
        const sids = [];
        for (let i = 0; i < opt.sessions; i++)
            sids.push(JSON.parse(await srv.call("POST", "/browser/sessions", {}, 201)).sessionId);
        const scratch = Object.fromEntries(CALLS.map((c) => [c, []]));
        let n = 0;
        for (const s of sids) await cycle(srv, s, url, ++n, scratch); // warm every session
        for (let r = 0; r < opt.rounds; r++) {
            for (let k = 0; k < opt.per; k++) await cycle(srv, sids[0], url, ++n, idle);
            await Promise.all(sids.map(async (s) => {
                for (let k = 0; k < opt.per; k++) await cycle(srv, s, url, ++n, busy);
            }));
        }
        for (const s of sids) await srv.call("DELETE", `/browser/sessions/${s}`, undefined, 204);
    } finally {
        site.close();
        await srv.stop();
    }
    const f = (v) => v.toFixed(v >= 100 ? 0 : 1);
    console.log(`${opt.sessions} sessions at once vs one session on an idle server ` +
        `(${opt.rounds} rounds, ${os.cpus().length} CPUs); ms`);
    console.log("| call | idle p50 | idle p90 | busy p50 | busy p90 | p90 ratio |");
    console.log("| --- | --- | --- | --- | --- | --- |");
    for (const c of CALLS) {
        const i50 = quantile(idle[c], 0.5), i90 = quantile(idle[c], 0.9);
        const b50 = quantile(busy[c], 0.5), b90 = quantile(busy[c], 0.9);
        console.log(`| ${c} | ${f(i50)} | ${f(i90)} | ${f(b50)} | ${f(b90)} | ${(b90 / i90).toFixed(2)}x |`);
    }
}

main().catch((e) => {
    console.error(e);
    process.exit(1);
});
