// state.mjs -- playwright-core connects over CDP to a managed session (the /cdp passthrough)
// and prints its context's storageState() as JSON, for tests/e2e/test_browser_state.py.
//   node state.mjs ws://127.0.0.1:PORT/browser/sessions/ID/cdp TOKEN
import { chromium } from "playwright-core";

const [url, token] = process.argv.slice(2);
const browser = await chromium.connectOverCDP(url, {
  headers: { Authorization: `Bearer ${token}` },
  timeout: 20000,
});
try {
  const context = browser.contexts()[0];
  // Playwright reports the localStorage of origins it saw load: reload what the tabs show.
  for (const page of context.pages())
    if (/^https?:/.test(page.url())) await page.reload();
  const state = await context.storageState();
  process.stdout.write(JSON.stringify(state));
} finally {
  await browser.close(); // over CDP: disconnects, the session's Chromium goes on
}
