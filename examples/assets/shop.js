/*
 * wxpay demo shop: pick a product, pay with WeixinJSBridge, then poll the order until PAID.
 *
 * The page sends only {product_id}: the server's checkout policy sets the price. When the
 * server resolves openids (config.openid_flow: always in sandbox mode) the page first asks
 * {prefix}/openid/me who the payer is; without an answer it goes through
 * {prefix}/openid/authorize, WeChat's OAuth2 snsapi_base redirect, which comes back here with
 * an HttpOnly cookie that precreate reads: the page never handles the openid itself.
 * Otherwise it sends the openid from its ?openid= query (the seeds' "body" mode).
 * In sandbox mode /api/config names the sandbox's WeixinJSBridge shim, loaded here; inside
 * WeChat the bridge is built in. The payment callback is not proof of payment: only the
 * order's status on the server (set by WeChat Pay's signed notification) is.
 */
(function () {
  "use strict";

  var config = null;
  var openid = null;
  var busy = false;

  function $(id) { return document.getElementById(id); }

  function yuan(fen) {
    var f = Math.max(0, Math.floor(Number(fen) || 0));
    var cents = String(f % 100);
    return "¥" + Math.floor(f / 100) + "." + (cents.length < 2 ? "0" + cents : cents);
  }

  function setStatus(text, isError) {
    var s = $("status");
    s.textContent = text;
    s.className = isError ? "status error" : "status";
  }

  function showResult(kind, title, detail) {
    var r = $("result");
    r.hidden = false;
    r.className = "result " + kind;
    r.setAttribute("data-status", kind);
    r.textContent = "";
    var h = document.createElement("h2");
    h.textContent = title;
    var p = document.createElement("p");
    p.textContent = detail;
    r.appendChild(h);
    r.appendChild(p);
  }

  function request(method, path, body) {
    var init = { method: method, headers: { "Accept": "application/json" } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(path, init).then(function (resp) {
      return resp.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
        return { ok: resp.ok, status: resp.status, data: data };
      });
    });
  }

  function loadScript(src) {
    return new Promise(function (resolve, reject) {
      var s = document.createElement("script");
      s.src = src;
      s.onload = resolve;
      s.onerror = function () { reject(new Error("could not load " + src)); };
      document.head.appendChild(s);
    });
  }

  function bridgeReady() {
    return new Promise(function (resolve) {
      if (window.WeixinJSBridge && window.WeixinJSBridge.invoke) {
        resolve(window.WeixinJSBridge);
        return;
      }
      document.addEventListener("WeixinJSBridgeReady", function () {
        resolve(window.WeixinJSBridge);
      }, { once: true });
    });
  }

  function setBusy(value) {
    busy = value;
    var buttons = document.querySelectorAll("button.buy");
    for (var i = 0; i < buttons.length; i++) { buttons[i].disabled = value; }
  }

  function renderProducts(products) {
    var catalog = $("catalog");
    catalog.textContent = "";
    products.forEach(function (p) {
      var card = document.createElement("div");
      card.className = "product";
      var info = document.createElement("div");
      info.className = "info";
      var name = document.createElement("h2");
      name.textContent = p.name;
      var blurb = document.createElement("p");
      blurb.textContent = p.blurb;
      info.appendChild(name);
      info.appendChild(blurb);
      var price = document.createElement("span");
      price.className = "price";
      price.textContent = yuan(p.price_fen);
      var buy = document.createElement("button");
      buy.type = "button";
      buy.className = "buy";
      buy.setAttribute("data-product-id", p.id);
      buy.textContent = "Buy";
      buy.addEventListener("click", function () { checkout(p); });
      card.appendChild(info);
      card.appendChild(price);
      card.appendChild(buy);
      catalog.appendChild(card);
    });
  }

  function poll(outTradeNo, attempt) {
    var path = config.prefix + "/orders/" + encodeURIComponent(outTradeNo);
    return request("GET", path).then(function (r) {
      var status = r.data && r.data.status;
      if (r.ok && status === "PAID") {
        return r.data;
      }
      if (r.ok && (status === "CLOSED" || status === "FAILED")) {
        throw new Error("the order is " + status.toLowerCase());
      }
      if (attempt >= 60) {
        throw new Error("no payment confirmation yet; check the order later");
      }
      setStatus("Waiting for the payment confirmation…");
      return new Promise(function (resolve) { setTimeout(resolve, 1000); }).then(function () {
        return poll(outTradeNo, attempt + 1);
      });
    });
  }

  function checkout(product) {
    if (busy) { return; }
    var flow = Boolean(config.openid_flow);
    if (!openid && !flow) {
      setStatus("No openid: open this page from WeChat (or add ?openid=… to the URL).", true);
      return;
    }
    setBusy(true);
    $("result").hidden = true;
    setStatus("Creating the order…");
    // The price shown is sent too: the catalog shop refuses it if it is not the current price,
    // and an amount-mode shop (WXPAY_CHECKOUT=amount) charges it.
    var body = { product_id: product.id, amount: product.price_fen };
    if (!flow) { body.openid = openid; }
    request("POST", config.prefix + "/precreate", body)
      .then(function (r) {
        if (r.status === 401 && flow) {
          // The openid cookie expired: sign in again, then come back here.
          signIn();
          throw new Error("Signing in with WeChat…");
        }
        if (!r.ok) {
          var msg = (r.data && r.data.message) || ("HTTP " + r.status);
          throw new Error(msg);
        }
        var order = r.data;
        if (order.tradeNO) {
          // weidoufu with WXPAY_WEIDOUFU_PAY_TYPE=alipay: an Alipay mini program pays this
          // with my.tradePay({tradeNO}); a web page cannot.
          throw new Error("Order " + order.out_trade_no + " is an Alipay trade (" + order.tradeNO +
            "): pay it with my.tradePay in the Alipay mini program.");
        }
        setStatus("Confirm the payment in WeChat Pay…");
        return bridgeReady().then(function (bridge) {
          return new Promise(function (resolve, reject) {
            bridge.invoke("getBrandWCPayRequest", {
              appId: order.appId,
              timeStamp: order.timeStamp,
              nonceStr: order.nonceStr,
              "package": order["package"],
              signType: order.signType,
              paySign: order.paySign
            }, function (res) {
              var result = String((res && res.err_msg) || "");
              if (result === "get_brand_wcpay_request:ok") {
                resolve(order.out_trade_no);
              } else if (result === "get_brand_wcpay_request:cancel") {
                reject(new Error("Payment cancelled."));
              } else {
                reject(new Error("Payment failed" + (res && res.err_desc ? ": " + res.err_desc : ".")));
              }
            });
          });
        });
      })
      .then(function (outTradeNo) { return poll(outTradeNo, 0); })
      .then(function (order) {
        setStatus("");
        // The status route shows the amount only to the payer's token (or the operator).
        var paid = typeof order.amount === "number" ? order.amount : product.price_fen;
        showResult("paid", "Paid", product.name + " · " + yuan(paid) + " · order " +
          order.out_trade_no);
      })
      .catch(function (e) {
        setStatus(e.message, true);
        showResult("failed", "Not paid", e.message);
      })
      .then(function () { setBusy(false); });
  }

  /* WeChat's OAuth2 redirect (snsapi_base: silent inside WeChat), back to this page. */
  function signIn() {
    var back = window.location.pathname + window.location.search;
    window.location.assign(config.prefix + "/openid/authorize?return_to=" +
      encodeURIComponent(back));
  }

  /* Who the payer is, as the server resolved it; null while signing in. */
  function resolvePayer() {
    if (!config.openid_flow) {
      return Promise.resolve(
        new URLSearchParams(window.location.search).get("openid") || config.openid);
    }
    return request("GET", config.prefix + "/openid/me").then(function (r) {
      if (r.ok && r.data && r.data.openid) { return r.data.openid; }
      if (r.status === 401) {
        setStatus("Signing in with WeChat…");
        signIn();
        return null;
      }
      throw new Error((r.data && r.data.message) || "could not identify the payer");
    });
  }

  function start() {
    request("GET", "/api/config").then(function (r) {
      if (!r.ok) { throw new Error("could not load the shop configuration"); }
      config = r.data;
      if (config.mode === "sandbox") {
        var m = $("mode");
        m.hidden = false;
        m.textContent = "Sandbox mode: payments are simulated, no real money moves.";
      }
      return resolvePayer();
    }).then(function (payer) {
      openid = payer;
      if (config.openid_flow && !payer) { return new Promise(function () {}); }
      if (payer) { document.body.setAttribute("data-payer", payer); }
      return config.jsbridge ? loadScript(config.jsbridge) : null;
    }).then(function () {
      return request("GET", "/api/products");
    }).then(function (r) {
      if (!r.ok) { throw new Error("could not load the products"); }
      renderProducts(r.data);
      document.body.setAttribute("data-ready", "true");
    }).catch(function (e) {
      setStatus(e.message, true);
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
