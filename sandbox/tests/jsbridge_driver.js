// Drives /sandbox/jsbridge.js in Node with a tiny fake DOM: shows the pay sheet, clicks a
// button and prints what the page's callback received, as JSON.
// usage: node jsbridge_driver.js BASE_URL bridge|wx pay|fail|cancel PARAMS_JSON
"use strict";
const [base, api, action, paramsJson] = process.argv.slice(2);

class El {
  constructor(tag) {
    this.tag = tag; this.attrs = {}; this.children = []; this.listeners = {};
    this.parentNode = null; this.textContent = ""; this.disabled = false;
  }
  setAttribute(k, v) { this.attrs[k] = String(v); if (k === "id") { this.id = String(v); } }
  appendChild(c) { c.parentNode = this; this.children.push(c); return c; }
  removeChild(c) { this.children = this.children.filter((x) => x !== c); c.parentNode = null; return c; }
  addEventListener(t, f) { (this.listeners[t] = this.listeners[t] || []).push(f); }
  click() { (this.listeners.click || []).forEach((f) => f()); }
}

function find(node, id) {
  if (node.id === id) { return node; }
  for (const c of node.children) { const f = find(c, id); if (f) { return f; } }
  return null;
}

const body = new El("body");
globalThis.window = globalThis;
globalThis.document = {
  currentScript: { src: base + "/sandbox/jsbridge.js" },
  readyState: "complete",
  body,
  createElement: (t) => new El(t),
  addEventListener() {},
  dispatchEvent() {},
};

(async () => {
  const src = await (await fetch(base + "/sandbox/jsbridge.js")).text();
  new Function(src)();
  const params = JSON.parse(paramsJson);
  const done = new Promise((resolve) => {
    if (api === "bridge") {
      window.WeixinJSBridge.invoke("getBrandWCPayRequest", params, (res) => resolve(res));
    } else {
      window.wx.requestPayment(Object.assign({}, params, {
        success: (res) => resolve({ via: "success", ...res }),
        fail: (res) => resolve({ via: "fail", ...res }),
      }));
    }
  });
  let button = null;
  for (let i = 0; i < 500 && !button; i++) {
    await new Promise((r) => setTimeout(r, 10));
    button = find(body, "wxpay-sandbox-" + action);
  }
  if (!button) { throw new Error("pay sheet did not appear"); }
  const amount = find(body, "wxpay-sandbox-amount").textContent;
  const description = find(body, "wxpay-sandbox-description").textContent;
  button.click();
  const res = await done;
  const sheetGone = find(body, "wxpay-sandbox-sheet") === null;
  process.stdout.write(JSON.stringify({ res, amount, description, sheetGone }));
})().catch((e) => { process.stderr.write(String(e && e.stack || e)); process.exit(1); });
