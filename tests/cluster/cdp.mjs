// cdp.mjs -- drive one managed session through the cluster's router with Puppeteer, as a user
// of the CDP passthrough would: connect to ROUTER/browser/sessions/{id}/cdp (the router sends
// the WebSocket to the session's replica by the id's prefix), open the page in the session's
// tab, read it back, disconnect (the session stays). Run by tests/e2e/test_cluster.py:
//   node cdp.mjs WS_URL TOKEN PAGE_URL   -> prints {"title", "marker", "pages"} as JSON
import puppeteer from "puppeteer-core";

const [wsUrl, token, pageUrl] = process.argv.slice(2);
const browser = await puppeteer.connect({
    browserWSEndpoint: wsUrl,
    headers: { Authorization: `Bearer ${token}` },
    protocolTimeout: 20000,
});
try {
    const pages = await browser.pages();
    const page = pages[0] ?? (await browser.newPage());
    await page.goto(pageUrl, { waitUntil: "load", timeout: 20000 });
    const title = await page.title();
    const marker = await page.evaluate(() => document.getElementById("marker").textContent);
    console.log(JSON.stringify({ title, marker, pages: pages.length }));
} finally {
    await browser.disconnect();
}
