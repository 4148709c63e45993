// Headless journey through the engine's operator console: sign in → orders → filter → order →
// partial refund → SUCCESS.
// Usage: CHROMIUM_PATH=/usr/bin/chromium ADMIN_TOKEN=… node console.mjs \
//          http://127.0.0.1:3000/wxpay/admin/console SCREENSHOT_DIR OUT_TRADE_NO
// The token comes from the environment only (never the command line). The journey fails if
// the token shows up in the page URL, in any request URL or body, or in the page's storage
// and cookies, or if an admin API answer lacks `Cache-Control: no-store`.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [url, shots = "screenshots", outTradeNo] = process.argv.slice(2);
const token = process.env.ADMIN_TOKEN || "";
if (!url || !outTradeNo) {
  console.error("usage: ADMIN_TOKEN=… node console.mjs URL SCREENSHOT_DIR OUT_TRADE_NO");
  process.exit(2);
}
if (!token) {
  console.error("console journey: set ADMIN_TOKEN in the environment");
  process.exit(2);
}
mkdirSync(shots, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-dev-shm-usage"],
});
let failed = false;
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
// The page's own logs and errors, with the token masked should anything ever print it.
const mask = (text) => String(text).split(token).join("<ADMIN_TOKEN>");
page.on("console", (msg) => console.log(`[page ${msg.type()}] ${mask(msg.text())}`));
page.on("pageerror", (err) => console.log(`[page error] ${mask(err.message)}`));
// Destructive actions ask window.confirm: accept them.
page.on("dialog", (dialog) => {
  console.log(`[page dialog ${dialog.type()}] ${mask(dialog.message())}`);
  dialog.accept().catch(() => {});
});

// Every request the page makes, and every admin API answer's Cache-Control.
const requests = [];
const leaks = [];
page.on("request", (request) => {
  const requestUrl = request.url();
  requests.push(`${request.method()} ${requestUrl}`);
  if (requestUrl.includes(token)) { leaks.push(`request URL ${mask(requestUrl)}`); }
  const body = request.postData();
  if (body && body.includes(token)) { leaks.push(`request body of ${requestUrl}`); }
});
const cacheChecks = [];
const cacheViolations = [];
page.on("response", (response) => {
  const path = new URL(response.url()).pathname;
  // The JSON API under {prefix}/admin/ (the console's own page and assets are not API answers).
  if (!path.includes("/admin/") || /\/admin\/console(\/|$)/.test(path)) { return; }
  cacheChecks.push(response.allHeaders().then((headers) => {
    const cacheControl = headers["cache-control"] || "";
    if (!/\bno-store\b/i.test(cacheControl)) {
      cacheViolations.push(`${response.status()} ${path}: cache-control "${cacheControl}"`);
    }
    return path;
  }, () => path));
});

async function checkNoLeaks(where) {
  if (page.url().includes(token)) { leaks.push(`page URL ${mask(page.url())} (${where})`); }
  const stored = await page.evaluate(() => {
    const dump = [document.cookie];
    for (const storage of [window.localStorage, window.sessionStorage]) {
      for (let i = 0; i < storage.length; i++) {
        const key = storage.key(i);
        dump.push(key, storage.getItem(key));
      }
    }
    return dump.join("\n");
  });
  if (stored.includes(token)) { leaks.push(`page storage or cookies (${where})`); }
  if (leaks.length) { throw new Error(`the admin token leaked: ${leaks.join("; ")}`); }
}

async function checkNoStore() {
  const checked = await Promise.all(cacheChecks);
  if (cacheViolations.length) {
    throw new Error(`admin API answers without no-store: ${cacheViolations.join("; ")}`);
  }
  if (checked.length === 0) { throw new Error("no admin API answer was seen"); }
  return checked.length;
}

const isOrderList = (response) => {
  const u = new URL(response.url());
  return u.pathname.endsWith("/admin/orders") && u.searchParams.get("prefix") === outTradeNo;
};

try {
  // 1. The sign-in form.
  await page.goto(url);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 20000 });
  await page.waitForSelector("#signin:not([hidden]) #token", { timeout: 5000 });
  await page.screenshot({ path: join(shots, "1-signin.png"), fullPage: true });

  // 2. Sign in; the order paid by the shop is in the list.
  await page.fill("#token", token);
  await page.click("#signin [type=submit]");
  await page.waitForSelector('body[data-signed-in="true"]', { timeout: 20000 });
  const row = `#orders tr[data-order="${outTradeNo}"]`;
  await page.waitForSelector(row, { timeout: 20000 });
  if ((await page.inputValue("#token")) !== "") {
    throw new Error("the token input still holds the token after signing in");
  }
  await page.screenshot({ path: join(shots, "2-orders.png"), fullPage: true });

  // 3. No token in URLs or storage so far (checked again at the end).
  await checkNoLeaks("after sign-in");

  // 4. Filter by the number's prefix: exactly that order.
  await page.fill("#filter-prefix", outTradeNo);
  await Promise.all([
    page.waitForResponse(isOrderList, { timeout: 20000 }),
    page.click("#filters [type=submit]"),
  ]);
  await page.waitForFunction((no) => {
    const rows = document.querySelectorAll("#orders tbody tr[data-order]");
    return rows.length === 1 && rows[0].getAttribute("data-order") === no;
  }, outTradeNo, { timeout: 20000 });

  // 5. Open the order: PAID.
  await page.click(row);
  await page.waitForFunction(() => {
    const status = document.querySelector("#order:not([hidden]) #order-status");
    return status && status.textContent.trim() === "PAID";
  }, null, { timeout: 20000 });
  const amount = (await page.textContent("#order-amount")).trim();
  const refundable = (await page.textContent("#order-refundable")).trim();
  const proposed = await page.inputValue("#refund-amount");
  console.log(`console journey: order ${outTradeNo} PAID, amount ${amount}, ` +
    `refundable ${refundable}, form proposes ${proposed}`);
  if (`¥${proposed}` !== refundable) {
    throw new Error(`the refund form proposes ${proposed}, not the refundable ${refundable}`);
  }
  await page.screenshot({ path: join(shots, "3-order.png"), fullPage: true });

  // 6. Refund one fen (confirm accepted above); the upstream's notification makes it SUCCESS.
  await page.fill("#refund-amount", "0.01");
  await page.fill("#refund-reason", "console journey");
  await page.click("#refund-submit");
  const refunded = await page.waitForFunction(() => {
    for (const cell of document.querySelectorAll("#refunds tr[data-refund] .refund-status")) {
      if (cell.textContent.trim() === "SUCCESS") {
        return cell.closest("tr").getAttribute("data-refund");
      }
    }
    return false;
  }, null, { timeout: 30000 });
  const outRefundNo = await refunded.jsonValue();
  await page.screenshot({ path: join(shots, "4-refunded.png"), fullPage: true });

  await checkNoLeaks("at the end");
  const answers = await checkNoStore();
  console.log(`console journey: ${requests.length} requests without the token, ` +
    `${answers} admin API answers with no-store`);
  console.log(`console journey: refunded (${outRefundNo} SUCCESS)`);
} catch (err) {
  failed = true;
  console.error(`console journey failed: ${mask(err.message)}`);
  const error = await page.textContent("#error").catch(() => null);
  if (error && error.trim()) { console.error(`console journey: the page shows: ${mask(error.trim())}`); }
  console.error(`console journey: requests: ${requests.map(mask).join(" | ")}`);
  await page.screenshot({ path: join(shots, "failure.png"), fullPage: true }).catch(() => {});
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
