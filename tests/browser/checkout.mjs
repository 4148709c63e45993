// Headless checkout of the shop's H5 page in sandbox mode: buy → pay sheet → confirm → "paid".
// Usage: CHROMIUM_PATH=/usr/bin/chromium node checkout.mjs http://127.0.0.1:3000/ SCREENSHOT_DIR
// With EXPECT_OPENID_FLOW=1 the page must first resolve the payer through the shop's
// /openid/authorize → upstream OAuth redirect → /openid/callback chain (a cookie, no openid in
// the page's requests).
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [url, shots = "screenshots"] = process.argv.slice(2);
if (!url) {
  console.error("usage: node checkout.mjs URL [SCREENSHOT_DIR]");
  process.exit(2);
}
mkdirSync(shots, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-dev-shm-usage"],
});
let failed = false;
const page = await browser.newPage({ viewport: { width: 414, height: 860 } });
page.on("console", (msg) => console.log(`[page ${msg.type()}] ${msg.text()}`));
page.on("pageerror", (err) => console.log(`[page error] ${err.message}`));
// Every document request, redirects included (a redirect chain is one navigation).
const visited = [];
page.on("request", (request) => {
  if (request.isNavigationRequest()) { visited.push(request.url()); }
});
try {
  await page.goto(url);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 20000 });
  if (process.env.EXPECT_OPENID_FLOW === "1") {
    const payer = await page.getAttribute("body", "data-payer");
    if (!payer || !visited.some((u) => u.includes("/openid/callback"))) {
      throw new Error(`no openid through the OAuth redirect (payer ${payer}): ${visited.join(" → ")}`);
    }
    console.log(`browser checkout: payer ${payer} resolved through ${visited.join(" → ")}`);
  }
  await page.screenshot({ path: join(shots, "1-products.png"), fullPage: true });

  await page.click('button[data-product-id="postcard"]');
  await page.waitForSelector("#wxpay-sandbox-pay", { timeout: 20000 });
  const amount = (await page.textContent("#wxpay-sandbox-amount")).trim();
  if (amount !== "¥0.01") {
    throw new Error(`the pay sheet shows ${amount}, expected the server's price ¥0.01`);
  }
  await page.screenshot({ path: join(shots, "2-pay-sheet.png"), fullPage: true });

  await page.click("#wxpay-sandbox-pay");
  await page.waitForSelector('#result[data-status="paid"]', { timeout: 30000 });
  const result = (await page.textContent("#result")).trim();
  if (!/paid/i.test(result)) {
    throw new Error(`unexpected result: ${result}`);
  }
  await page.screenshot({ path: join(shots, "3-paid.png"), fullPage: true });
  console.log(`browser checkout: paid (${result})`);
} catch (err) {
  failed = true;
  console.error(`browser checkout failed: ${err.message}`);
  await page.screenshot({ path: join(shots, "failure.png"), fullPage: true }).catch(() => {});
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
