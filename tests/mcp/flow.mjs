// flow.mjs -- an agent's flow through an official MCP client against sandboxd's POST /mcp.
//
//   node flow.mjs sdk|client2 <mcp url> <token> <site url>
//
// sdk: @modelcontextprotocol/sdk 1.x (the initialize handshake, 2025-11-25);
// client2: @modelcontextprotocol/client 2.x pinned to the stateless 2026-07-28 revision.
// Lists the tools, runs Python, opens a browser session, navigates to the form at
// <site url>/form, takes a snapshot, fills and submits the form by the snapshot's refs, reads
// the result (snapshot, markdown, evaluate), takes a screenshot, provokes tool errors (a
// missing element, a ref gone stale by a navigation) and closes the session. Any unexpected answer throws (exit 1); on success the last line of stdout is one
// JSON object that tests/e2e/test_mcp.py checks.
import assert from 'node:assert/strict';

const [kind, url, token, site] = process.argv.slice(2);
const headers = { Authorization: `Bearer ${token}` };

async function connect() {
    if (kind === 'sdk') {
        const { Client } = await import('@modelcontextprotocol/sdk/client/index.js');
        const { StreamableHTTPClientTransport } = await import(
            '@modelcontextprotocol/sdk/client/streamableHttp.js');
        const client = new Client({ name: 'sandboxd-test', version: '1.0.0' });
        const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } });
        await client.connect(transport);
        return { client, transport, version: transport.protocolVersion };
    }
    const { Client, StreamableHTTPClientTransport } = await import('@modelcontextprotocol/client');
    const client = new Client({ name: 'sandboxd-test', version: '2.0.0' },
        { versionNegotiation: { mode: { pin: '2026-07-28' } } });
    const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } });
    await client.connect(transport);
    return { client, transport, version: client.getNegotiatedProtocolVersion() };
}

const text = (res) => res.content.filter((c) => c.type === 'text').map((c) => c.text).join('');

async function call(client, name, args, { error = false } = {}) {
    const res = await client.callTool({ name, arguments: args });
    assert.equal(Boolean(res.isError), error, `${name}: ${text(res)}`);
    return res;
}

const { client, transport, version } = await connect();
const out = { kind, version, server: client.getServerVersion()?.name };

const { tools } = await client.listTools();
out.tools = tools.map((t) => t.name);
for (const t of tools) {
    assert.ok(t.description.length > 40, `${t.name} has a description`);
    assert.equal(t.inputSchema.type, 'object');
}

let res = await call(client, 'python_run', { code: 'import sys\nprint(sum(range(10)))' });
out.stdout = res.structuredContent.stdout;
assert.equal(JSON.parse(text(res)).exitCode, 0);

res = await call(client, 'browser_session_create', { device: 'desktop' });
const sessionId = res.structuredContent.sessionId;
assert.match(sessionId, /^[0-9a-zA-Z_-]{16,}$/);
try {
    res = await call(client, 'browser_navigate', { sessionId, url: `${site}/form` });
    out.title = res.structuredContent.title;
    res = await call(client, 'browser_snapshot', { sessionId });
    const refs = res.structuredContent.refs;
    const refOf = (role, name) => {
        const r = Object.keys(refs).find((k) => refs[k].role === role && refs[k].name === name);
        assert.ok(r, `no ${role} "${name}" in ${text(res)}`);
        assert.ok(text(res).includes(`[ref=${r}]`), 'the text shows the ref');
        return r;
    };
    const nameRef = refOf('textbox', 'Your name'), goRef = refOf('button', 'Go');
    await call(client, 'browser_fill', { sessionId, ref: nameRef, value: 'MCP agent' });
    await call(client, 'browser_click', { sessionId, ref: goRef });
    await call(client, 'browser_wait_for', { sessionId, selector: '#out.done' });
    res = await call(client, 'browser_snapshot', { sessionId });
    out.snapshotHasResult = text(res).includes('- paragraph: "Hello, MCP agent"');
    res = await call(client, 'browser_markdown', { sessionId });
    out.markdownHasResult = text(res).includes('Hello, MCP agent');
    res = await call(client, 'browser_evaluate',
        { sessionId, expression: 'document.querySelector("#out").textContent' });
    out.result = res.structuredContent.result;
    res = await call(client, 'browser_content', { sessionId, maxChars: 100000 });
    out.contentHasResult = text(res).includes('Hello, MCP agent');
    res = await call(client, 'browser_screenshot', { sessionId });
    const img = res.content.find((c) => c.type === 'image');
    out.imageMime = img.mimeType;
    out.imageMagic = Buffer.from(img.data, 'base64').subarray(0, 8).toString('hex');
    res = await call(client, 'browser_click', { sessionId, selector: '#nope', timeoutMs: 300 },
        { error: true });
    out.errorText = text(res);
    await call(client, 'browser_navigate', { sessionId, url: `${site}/form` });
    res = await call(client, 'browser_click', { sessionId, ref: goRef }, { error: true });
    out.staleCode = res.structuredContent.error.code;
} finally {
    await call(client, 'browser_session_close', { sessionId });
}
res = await call(client, 'browser_tabs_list', { sessionId }, { error: true });
out.afterClose = text(res);
await client.close();
console.log(JSON.stringify(out));
