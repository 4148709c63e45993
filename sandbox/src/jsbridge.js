/*
 * wxpay-sandbox browser shim.
 *
 * Load it from the sandbox (<script src="http://127.0.0.1:8787/sandbox/jsbridge.js"></script>) in
 * an ordinary browser: it defines WeixinJSBridge.invoke('getBrandWCPayRequest', params, cb) (公众号
 * H5) and wx.requestPayment({...}) (小程序 style) and shows a pay sheet with the amount and the
 * description. "Pay" asks the sandbox to pay (POST /sandbox/pay, which checks paySign as the WeChat
 * client does) and the notification is delivered to the shop; "Fail" simulates a failed payment;
 * "Cancel" closes the sheet. Parameters of every upstream work: signType RSA (API v3), MD5 or
 * HMAC-SHA256 (API v2, the gateway). Buttons have stable ids for browser tests: wxpay-sandbox-pay,
 * wxpay-sandbox-fail, wxpay-sandbox-cancel. wx.login({success(res) {res.code}}) gets a code from the
 * sandbox (POST /sandbox/wx-login) for the shop's server to exchange at sns/jscode2session.
 */
(function () {
  "use strict";
  if (typeof window === "undefined" || window.__wxpaySandbox) {
    return;
  }

  var script = document.currentScript;
  var base = script && script.src
    ? script.src.replace(/\/sandbox\/jsbridge\.js(\?.*)?$/, "")
    : "";

  function yuan(total) {
    var fen = Math.max(0, Math.floor(Number(total) || 0));
    var cents = String(fen % 100);
    return Math.floor(fen / 100) + "." + (cents.length < 2 ? "0" + cents : cents);
  }

  function prepayId(pkg) {
    var m = /^prepay_id=(.+)$/.exec(String(pkg || ""));
    return m ? m[1] : null;
  }

  function fetchJson(method, path, body) {
    var init = { method: method, headers: {} };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(base + path, init).then(function (resp) {
      return resp.text().then(function (text) {
        var data = null;
        try {
          data = text ? JSON.parse(text) : null;
        } catch (e) {
          data = { code: "BAD_RESPONSE", message: text };
        }
        return { ok: resp.ok, status: resp.status, data: data };
      });
    });
  }

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    for (var k in attrs) {
      if (Object.prototype.hasOwnProperty.call(attrs, k)) {
        e.setAttribute(k, attrs[k]);
      }
    }
    if (text !== undefined) {
      e.textContent = text;
    }
    return e;
  }

  var open = false;

  /*
   * Shows the sheet for `params` and resolves with "ok", "cancel" or "fail" plus a description.
   */
  function paySheet(params) {
    return new Promise(function (resolve) {
      var id = prepayId(params["package"]);
      if (!id) {
        resolve({ result: "fail", desc: "package must be prepay_id=..." });
        return;
      }
      if (open) {
        resolve({ result: "fail", desc: "a payment is already in progress" });
        return;
      }
      open = true;
      fetchJson("GET", "/sandbox/prepay/" + encodeURIComponent(id)).then(function (info) {
        if (!info.ok) {
          open = false;
          resolve({ result: "fail", desc: (info.data && info.data.message) || "unknown prepay_id" });
          return;
        }
        var order = info.data;
        var overlay = el("div", {
          id: "wxpay-sandbox-sheet",
          style: "position:fixed;inset:0;background:rgba(0,0,0,.5);z-index:2147483647;" +
            "display:flex;align-items:flex-end;justify-content:center;font-family:sans-serif"
        });
        var sheet = el("div", {
          role: "dialog",
          "aria-label": "WeChat Pay (sandbox)",
          style: "background:#fff;width:100%;max-width:480px;border-radius:12px 12px 0 0;" +
            "padding:20px;box-sizing:border-box;text-align:center"
        });
        sheet.appendChild(el("div", { style: "color:#888;font-size:13px" }, "WeChat Pay · sandbox"));
        sheet.appendChild(el("div", { id: "wxpay-sandbox-description", style: "margin-top:12px" },
          order.description));
        sheet.appendChild(el("div", {
          id: "wxpay-sandbox-amount",
          style: "font-size:32px;font-weight:bold;margin:8px 0 16px"
        }, "¥" + yuan(order.amount && order.amount.total)));
        var status = el("div", { id: "wxpay-sandbox-status", style: "color:#c00;min-height:1.2em" });
        sheet.appendChild(status);
        var pay = el("button", {
          id: "wxpay-sandbox-pay", type: "button",
          style: "width:100%;padding:12px;background:#07c160;color:#fff;border:0;border-radius:6px;font-size:16px"
        }, "Pay");
        var fail = el("button", {
          id: "wxpay-sandbox-fail", type: "button",
          style: "width:100%;padding:10px;margin-top:8px;background:#fff;border:1px solid #ccc;border-radius:6px"
        }, "Simulate failure");
        var cancel = el("button", {
          id: "wxpay-sandbox-cancel", type: "button",
          style: "width:100%;padding:10px;margin-top:8px;background:#fff;border:0;color:#576b95"
        }, "Cancel");
        sheet.appendChild(pay);
        sheet.appendChild(fail);
        sheet.appendChild(cancel);
        overlay.appendChild(sheet);
        document.body.appendChild(overlay);

        function finish(result, desc) {
          open = false;
          if (overlay.parentNode) {
            overlay.parentNode.removeChild(overlay);
          }
          resolve({ result: result, desc: desc });
        }

        function submit(outcome) {
          pay.disabled = true;
          fail.disabled = true;
          status.textContent = "";
          fetchJson("POST", "/sandbox/pay", {
            appId: params.appId || order.appid,
            timeStamp: String(params.timeStamp),
            nonceStr: params.nonceStr,
            "package": params["package"],
            signType: params.signType,
            paySign: params.paySign,
            outcome: outcome
          }).then(function (r) {
            if (!r.ok) {
              finish("fail", (r.data && (r.data.code + ": " + r.data.message)) || "payment refused");
            } else if (outcome === "SUCCESS") {
              finish("ok", "");
            } else {
              finish("fail", "payment failed (simulated)");
            }
          }, function (e) {
            finish("fail", "sandbox unreachable: " + e);
          });
        }

        pay.addEventListener("click", function () { submit("SUCCESS"); });
        fail.addEventListener("click", function () { submit("PAYERROR"); });
        cancel.addEventListener("click", function () { finish("cancel", ""); });
      }, function (e) {
        open = false;
        resolve({ result: "fail", desc: "sandbox unreachable: " + e });
      });
    });
  }

  var bridge = {
    invoke: function (name, params, callback) {
      var cb = typeof callback === "function" ? callback : function () {};
      if (name !== "getBrandWCPayRequest") {
        setTimeout(function () {
          cb({ err_msg: name + ":fail", err_desc: "not emulated by wxpay-sandbox" });
        }, 0);
        return;
      }
      paySheet(params || {}).then(function (r) {
        var res = { err_msg: "get_brand_wcpay_request:" + r.result };
        if (r.desc) {
          res.err_desc = r.desc;
        }
        cb(res);
      });
    },
    on: function () {},
    call: function () {}
  };

  function requestPayment(options) {
    var o = options || {};
    paySheet(o).then(function (r) {
      var res;
      if (r.result === "ok") {
        res = { errMsg: "requestPayment:ok" };
        if (typeof o.success === "function") { o.success(res); }
      } else {
        res = { errMsg: r.result === "cancel" ? "requestPayment:fail cancel" : "requestPayment:fail " + r.desc };
        if (typeof o.fail === "function") { o.fail(res); }
      }
      if (typeof o.complete === "function") { o.complete(res); }
    });
  }

  /*
   * wx.login({success, fail, complete}): asks the sandbox for a code (POST /sandbox/wx-login) that
   * the shop's server exchanges at sns/jscode2session, as a mini program's wx.login does. The
   * payer is the sandbox's default one, or `sandboxOpenid` (a sandbox-only option).
   */
  function login(options) {
    var o = options || {};
    var body = {};
    if (o.sandboxOpenid) {
      body.openid = String(o.sandboxOpenid);
    }
    function done(ok, res) {
      var cb = ok ? o.success : o.fail;
      if (typeof cb === "function") { cb(res); }
      if (typeof o.complete === "function") { o.complete(res); }
    }
    fetchJson("POST", "/sandbox/wx-login", body).then(function (r) {
      if (r.ok && r.data && r.data.code) {
        done(true, { errMsg: "login:ok", code: r.data.code });
      } else {
        done(false, {
          errMsg: "login:fail " + ((r.data && (r.data.code + ": " + r.data.message)) || "refused")
        });
      }
    }, function (e) {
      done(false, { errMsg: "login:fail sandbox unreachable: " + e });
    });
  }

  window.__wxpaySandbox = { base: base, paySheet: paySheet };
  window.WeixinJSBridge = bridge;
  window.wx = window.wx || {};
  window.wx.requestPayment = requestPayment;
  window.wx.login = login;

  // Pages that loaded before the bridge wait for this event.
  function ready() {
    var ev;
    try {
      ev = new Event("WeixinJSBridgeReady");
    } catch (e) {
      ev = document.createEvent("Event");
      ev.initEvent("WeixinJSBridgeReady", false, false);
    }
    document.dispatchEvent(ev);
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", ready);
  } else {
    setTimeout(ready, 0);
  }
})();
