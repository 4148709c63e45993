/*
 * wxpay operator console: the engine serves this page at {prefix}/admin/console.
 *
 * The admin token is typed into the sign-in form and kept in one variable of this closure,
 * nowhere else: no storage, no cookie, never in a URL. Every API call sends it as
 * `Authorization: Bearer …` with `credentials: "omit"` and `cache: "no-store"`; a 401 forgets it.
 * Every node is built with createElement/textContent: order data comes from payers and
 * upstreams and is never parsed as HTML. The page runs under a strict CSP (no inline script or
 * style): visibility is toggled with the `hidden` attribute and classes only.
 */
(function () {
  "use strict";

  var POLL_INTERVAL_MS = 1000;
  var POLL_LIMIT_MS = 20000;
  var FETCH_TIMEOUT_MS = 20000;

  var token = null;          // the admin token: in memory only
  var session = 0;           // bumped on sign-in and sign-out: older answers are dropped
  var prefix = derivePrefix(window.location.pathname);
  var filters = {};          // the order list's query parameters
  var pageCursors = [null];  // the cursor of each page shown; the last is the current page
  var nextCursor = null;
  var listSeq = 0;           // bumped per list load: only the newest answer is shown
  var orderSeq = 0;          // bumped per order view change
  var currentOrder = null;   // the order view's detail answer
  var refundFormFor = null;  // the order whose refund form holds a default amount
  var pollTimer = null;
  var busy = false;

  function $(id) { return document.getElementById(id); }

  /* "/wxpay/admin/console" → "/wxpay"; "/admin/console/" → "". */
  function derivePrefix(pathname) {
    var path = String(pathname || "").replace(/\/+$/, "");
    var suffix = "/admin/console";
    var at = path.lastIndexOf(suffix);
    if (at >= 0 && at + suffix.length === path.length) { path = path.slice(0, at); }
    return path.replace(/\/+$/, "");
  }

  // -------------------------------------------------------------------------------------------
  // Formatting

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  function clear(node) {
    while (node.firstChild) { node.removeChild(node.firstChild); }
  }

  function isFen(value) {
    return typeof value === "number" && Number.isSafeInteger(value);
  }

  /* Integer fen → "12.34" (integer math only). */
  function yuanPlain(fen) {
    if (!isFen(fen)) { return ""; }
    var f = Math.abs(fen);
    return (fen < 0 ? "-" : "") + Math.floor(f / 100) + "." + String(f % 100).padStart(2, "0");
  }

  function yuan(fen) {
    if (!isFen(fen)) { return "—"; }
    var text = yuanPlain(fen);
    return text.charAt(0) === "-" ? "-¥" + text.slice(1) : "¥" + text;
  }

  /* Yuan text ("1", "0.5", "0.50") → {fen} without floating point, or {error}. */
  function parseYuan(text) {
    var t = String(text || "").trim();
    if (!/^\d+(\.\d{1,2})?$/.test(t)) {
      return { error: "Enter the refund amount in yuan, like 1 or 0.50 (at most two decimals)." };
    }
    var parts = t.split(".");
    var whole = parts[0].replace(/^0+(?=\d)/, "");
    if (whole.length > 12) { return { error: "That refund amount is too large." }; }
    var cents = parts.length > 1 ? (parts[1] + "0").slice(0, 2) : "00";
    var fen = parseInt(whole, 10) * 100 + parseInt(cents, 10);
    if (!Number.isSafeInteger(fen)) { return { error: "That refund amount is too large." }; }
    if (fen <= 0) { return { error: "The refund amount must be more than ¥0.00." }; }
    return { fen: fen };
  }

  function pad2(n) { return String(n).padStart(2, "0"); }

  /* RFC 3339 → local "YYYY-MM-DD HH:MM:SS" (the raw text is the node's title). */
  function fmtTime(text) {
    if (!text) { return "—"; }
    var d = new Date(text);
    if (isNaN(d.getTime())) { return String(text); }
    return d.getFullYear() + "-" + pad2(d.getMonth() + 1) + "-" + pad2(d.getDate()) + " " +
      pad2(d.getHours()) + ":" + pad2(d.getMinutes()) + ":" + pad2(d.getSeconds());
  }

  function timeNode(text) {
    var node = el("time", null, fmtTime(text));
    if (text) {
      node.dateTime = String(text);
      node.title = String(text);
    }
    return node;
  }

  function fmtAge(seconds) {
    var s = Math.max(0, Math.floor(Number(seconds) || 0));
    if (s < 120) { return s + " s"; }
    if (s < 7200) { return Math.floor(s / 60) + " min"; }
    return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
  }

  function classToken(text) {
    return String(text || "UNKNOWN").replace(/[^A-Za-z0-9_-]/g, "");
  }

  function badge(status) {
    return el("span", "badge status-" + classToken(status), status || "?");
  }

  function refundableFen(order) {
    if (!isFen(order.amount)) { return 0; }
    var held = isFen(order.refund_held_fen) ? order.refund_held_fen : 0;
    return Math.max(0, order.amount - held);
  }

  // -------------------------------------------------------------------------------------------
  // Banners

  function showMessage(text) {
    var node = $("message");
    node.textContent = text || "";
    node.hidden = !text;
  }

  function showError(text) {
    var node = $("error");
    node.textContent = text || "";
    node.hidden = !text;
  }

  function clearBanners() {
    showMessage("");
    showError("");
  }

  function failure(status, code, message) {
    var error = new Error(message);
    error.status = status;
    error.code = code;
    return error;
  }

  /* An error already dealt with (a 401, or an answer for a view that is gone). */
  function silent(reason) {
    var error = new Error(reason);
    error.silent = true;
    return error;
  }

  function handleError(error) {
    if (!error || error.silent) { return; }
    showMessage("");
    showError(error.code ? error.code + ": " + error.message : error.message);
  }

  // -------------------------------------------------------------------------------------------
  // The API

  function api(method, path, body) {
    if (token === null) { return Promise.reject(silent("signed out")); }
    var mine = session;
    var headers = { "Accept": "application/json", "Authorization": "Bearer " + token };
    var init = {
      method: method,
      headers: headers,
      cache: "no-store",
      credentials: "omit",
      redirect: "error",
      referrerPolicy: "no-referrer"
    };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    var controller = typeof AbortController === "function" ? new AbortController() : null;
    var timer = null;
    if (controller) {
      init.signal = controller.signal;
      timer = setTimeout(function () { controller.abort(); }, FETCH_TIMEOUT_MS);
    }
    return fetch(prefix + path, init).then(function (resp) {
      return resp.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
        return { status: resp.status, ok: resp.ok, data: data };
      });
    }, function (error) {
      throw failure(0, "NETWORK", error && error.name === "AbortError"
        ? "the server did not answer in time"
        : "could not reach the server (" + (error && error.message) + ")");
    }).then(function (r) {
      if (timer) { clearTimeout(timer); }
      if (mine !== session) { throw silent("stale session"); }
      var code = (r.data && r.data.code) || ("HTTP_" + r.status);
      var message = (r.data && r.data.message) || ("the server answered HTTP " + r.status);
      if (r.status === 401) {
        forget("The server refused the token (" + code + ": " + message + "); sign in again.");
        throw silent("unauthorized");
      }
      if (!r.ok) { throw failure(r.status, code, message); }
      if (r.data === null || typeof r.data !== "object") {
        throw failure(r.status, "BAD_ANSWER", "the server's answer is not JSON");
      }
      return r.data;
    }, function (error) {
      if (timer) { clearTimeout(timer); }
      if (mine !== session) { throw silent("stale session"); }
      throw error;
    });
  }

  function orderPath(no) {
    return "/admin/orders/" + encodeURIComponent(no);
  }

  // -------------------------------------------------------------------------------------------
  // Signing in and out

  function onSignIn(event) {
    event.preventDefault();
    var input = $("token");
    var value = input.value.trim();
    input.value = "";
    if (!value) {
      showError("Enter the admin token.");
      return;
    }
    if (!/^[\x21-\x7e]+$/.test(value)) {
      showError("That token has characters an HTTP header cannot carry; paste it again.");
      return;
    }
    token = value;
    session += 1;
    clearBanners();
    var button = $("signin-submit");
    button.disabled = true;
    api("GET", "/admin/outbox").then(function (outbox) {
      enterConsole(outbox);
    }, function (error) {
      // Not a 401 (that one already showed the form again): the token may be fine.
      if (error.silent) { return; }
      enterConsole(null);
      handleError(error);
    }).then(function () { button.disabled = false; });
  }

  function enterConsole(outbox) {
    $("signin").hidden = true;
    $("console").hidden = false;
    $("signout").hidden = false;
    document.body.dataset.signedIn = "true";
    if (outbox) { renderOutbox(outbox); } else { loadOutbox(); }
    loadAttention();
    loadOrders();
    route(false);
  }

  /* Forget the token and everything shown with it; back to the sign-in form. */
  function forget(errorText) {
    token = null;
    session += 1;
    orderSeq += 1;
    listSeq += 1;
    stopPolling();
    busy = false;
    setBusy(false);
    currentOrder = null;
    refundFormFor = null;
    nextCursor = null;
    pageCursors = [null];
    clear($("orders").tBodies[0]);
    clearOrderView();
    clearAttention();
    $("outbox").textContent = "";
    $("page-info").textContent = "";
    $("next-page").hidden = true;
    $("prev-page").hidden = true;
    $("console").hidden = true;
    $("signout").hidden = true;
    $("signin").hidden = false;
    document.body.dataset.signedIn = "false";
    clearBanners();
    if (errorText) { showError(errorText); }
    $("token").focus();
  }

  // -------------------------------------------------------------------------------------------
  // Navigation: #order=NUMBER is the order view, anything else the list

  function hashOrder() {
    var hash = window.location.hash.replace(/^#/, "");
    if (hash.indexOf("order=") !== 0) { return null; }
    try { return decodeURIComponent(hash.slice("order=".length)) || null; } catch (e) { return null; }
  }

  function route(reloadList) {
    if (token === null) { return; }
    var no = hashOrder();
    if (no) { showOrder(no); } else { showList(reloadList); }
  }

  function openOrder(no) {
    var target = "#order=" + encodeURIComponent(no);
    if (window.location.hash === target) { route(false); } else { window.location.hash = target; }
  }

  function showList(reload) {
    stopPolling();
    orderSeq += 1;
    currentOrder = null;
    $("order").hidden = true;
    $("orders-section").hidden = false;
    if (reload) { loadOrders(); }
  }

  function showOrder(no) {
    stopPolling();
    var seq = ++orderSeq;
    currentOrder = null;
    refundFormFor = null;
    clearOrderView();
    $("order-title").textContent = "Order " + no;
    $("orders-section").hidden = true;
    $("order").hidden = false;
    loadOrder(no, seq).catch(handleError);
  }

  // -------------------------------------------------------------------------------------------
  // Needs attention and the outbox

  function loadOutbox() {
    return api("GET", "/admin/outbox").then(renderOutbox).catch(handleError);
  }

  function renderOutbox(o) {
    var line = $("outbox");
    var count = Number(o.undelivered) || 0;
    var counted = count >= (Number(o.counted_up_to) || Infinity) ? count + "+" : String(count);
    var text;
    if (count === 0) {
      text = "Outbox: every event is delivered.";
    } else {
      text = "Outbox: " + counted + (count === 1 ? " event" : " events") + " undelivered" +
        (o.oldest_age_seconds !== null && o.oldest_age_seconds !== undefined
          ? ", oldest " + fmtAge(o.oldest_age_seconds) : "") + ".";
    }
    if (o.hook_configured === false) { text += " No event hook is configured."; }
    line.textContent = text;
    line.classList.toggle("warn", count > 0 && Number(o.oldest_age_seconds) > 600);
  }

  var ATTENTION_GROUPS = ["mismatch", "double", "unknown", "abnormal", "undelivered"];

  function clearAttention() {
    var lists = { mismatch: "attention-mismatches", double: "attention-double",
      unknown: "attention-unknown", abnormal: "attention-abnormal",
      undelivered: "attention-undelivered" };
    ATTENTION_GROUPS.forEach(function (group) {
      clear($(lists[group]));
      $("attention-" + group + "-group").hidden = true;
    });
    $("attention-empty").hidden = true;
  }

  function loadAttention() {
    return api("GET", "/admin/attention").then(renderAttention).catch(handleError);
  }

  /* One clickable line naming an order, then details. */
  function attentionItem(no, parts) {
    var li = el("li");
    var button = el("button", "link");
    button.type = "button";
    button.appendChild(el("code", null, no));
    parts.forEach(function (part) {
      button.appendChild(document.createTextNode(" · "));
      button.appendChild(typeof part === "string" ? el("span", null, part) : part);
    });
    button.addEventListener("click", function () { openOrder(no); });
    li.appendChild(button);
    return li;
  }

  function renderAttention(a) {
    clearAttention();
    var byKind = { MISMATCH: "mismatch", DOUBLE_PAYMENT: "double", UNKNOWN_ORDER: "unknown" };
    var lists = { mismatch: $("attention-mismatches"), double: $("attention-double"),
      unknown: $("attention-unknown"), abnormal: $("attention-abnormal"),
      undelivered: $("attention-undelivered") };
    var total = 0;
    function add(group, item) {
      lists[group].appendChild(item);
      $("attention-" + group + "-group").hidden = false;
      total += 1;
    }
    (a.mismatches || []).forEach(function (m) {
      var group = byKind[m.kind] || "mismatch";
      add(group, attentionItem(m.out_trade_no, [m.detail || m.kind || "", timeNode(m.recorded_at)]));
    });
    (a.abnormal_refunds || []).forEach(function (r) {
      add("abnormal", attentionItem(r.out_trade_no, ["refund " + r.out_refund_no, yuan(r.amount),
        r.failure || r.status || "", timeNode(r.updated_at || r.created_at)]));
    });
    (a.undelivered_events || []).forEach(function (e) {
      add("undelivered", attentionItem(e.out_trade_no, [(e.kind || "") + " event " + e.event_id,
        timeNode(e.created_at)]));
    });
    var older = Number(a.undelivered_older_than_seconds);
    if (older > 0) {
      $("attention-undelivered-title").textContent =
        "Events undelivered for over " + fmtAge(older);
    }
    $("attention-empty").hidden = total > 0;
  }

  // -------------------------------------------------------------------------------------------
  // The order list

  function readFilters() {
    var params = {};
    var status = $("filter-status").value;
    if (status) { params.status = status; }
    var numberPrefix = $("filter-prefix").value.trim();
    if (numberPrefix) { params.prefix = numberPrefix; }
    var times = [["filter-from", "created_from"], ["filter-before", "created_before"]];
    for (var i = 0; i < times.length; i++) {
      var value = $(times[i][0]).value;
      if (!value) { continue; }
      var at = new Date(value);
      if (isNaN(at.getTime())) {
        return { error: "The " + (i === 0 ? "“created from”" : "“created before”") +
          " time is not a valid date and time." };
      }
      params[times[i][1]] = at.toISOString();
    }
    return { params: params };
  }

  function onFilters(event) {
    event.preventDefault();
    var read = readFilters();
    if (read.error) {
      showError(read.error);
      return;
    }
    clearBanners();
    filters = read.params;
    pageCursors = [null];
    loadOrders();
  }

  /* Loads the current page; resolves to whether it was shown. */
  function loadOrders() {
    var seq = ++listSeq;
    var params = new URLSearchParams();
    Object.keys(filters).forEach(function (key) { params.set(key, filters[key]); });
    var cursor = pageCursors[pageCursors.length - 1];
    if (cursor) { params.set("cursor", cursor); }
    var query = params.toString();
    return api("GET", "/admin/orders" + (query ? "?" + query : "")).then(function (r) {
      if (seq !== listSeq) { return false; }
      nextCursor = r.next_cursor || null;
      renderOrders(Array.isArray(r.orders) ? r.orders : []);
      return true;
    }).catch(function (error) {
      handleError(error);
      return false;
    });
  }

  function renderOrders(orders) {
    var body = $("orders").tBodies[0];
    clear(body);
    if (orders.length === 0) {
      var empty = el("tr", "empty");
      var cell = el("td", "muted", pageCursors.length > 1 ? "No more orders." : "No orders match.");
      cell.colSpan = 5;
      empty.appendChild(cell);
      body.appendChild(empty);
    }
    orders.forEach(function (order) {
      var no = String(order.out_trade_no);
      var tr = el("tr", "clickable");
      tr.dataset.order = no;
      tr.tabIndex = 0;
      tr.title = "Open order " + no;
      var numberCell = el("td");
      numberCell.appendChild(el("code", null, no));
      var statusCell = el("td");
      statusCell.appendChild(badge(order.status));
      var createdCell = el("td");
      createdCell.appendChild(timeNode(order.created_at));
      tr.appendChild(numberCell);
      tr.appendChild(statusCell);
      tr.appendChild(el("td", "num", yuan(order.amount)));
      tr.appendChild(el("td", "description", order.description || ""));
      tr.appendChild(createdCell);
      tr.addEventListener("click", function () { openOrder(no); });
      tr.addEventListener("keydown", function (event) {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          openOrder(no);
        }
      });
      body.appendChild(tr);
    });
    $("next-page").hidden = !nextCursor;
    $("prev-page").hidden = pageCursors.length <= 1;
    $("page-info").textContent = "Page " + pageCursors.length + " · " + orders.length +
      (orders.length === 1 ? " order" : " orders");
  }

  function onNextPage() {
    if (!nextCursor) { return; }
    var before = pageCursors.slice();
    pageCursors.push(nextCursor);
    loadOrders().then(function (shown) { if (!shown) { pageCursors = before; } });
  }

  function onPrevPage() {
    if (pageCursors.length <= 1) { return; }
    var before = pageCursors.slice();
    pageCursors.pop();
    loadOrders().then(function (shown) { if (!shown) { pageCursors = before; } });
  }

  function onRefresh() {
    clearBanners();
    loadOutbox();
    loadAttention();
    if (currentOrder) {
      loadOrder(currentOrder.order.out_trade_no, orderSeq).catch(handleError);
    } else {
      loadOrders();
    }
  }

  // -------------------------------------------------------------------------------------------
  // One order

  function clearOrderView() {
    clear($("order-fields"));
    clear($("refunds").tBodies[0]);
    clear($("order-events"));
    clear($("order-notifications"));
    clear($("order-mismatches"));
    $("order-title").textContent = "Order";
    $("refund-hint").textContent = "";
    $("refund-amount").value = "";
    $("refund-reason").value = "";
  }

  function loadOrder(no, seq) {
    return api("GET", orderPath(no)).then(function (detail) {
      if (seq !== orderSeq) { throw silent("stale order view"); }
      if (!detail.order) { throw failure(0, "BAD_ANSWER", "the answer has no order"); }
      currentOrder = detail;
      renderOrder(detail);
      return detail;
    });
  }

  function field(dl, label, value, id) {
    var dt = el("dt", null, label);
    var dd = el("dd");
    if (id) { dd.id = id; }
    if (value instanceof Node) {
      dd.appendChild(value);
    } else {
      dd.textContent = value === null || value === undefined || value === "" ? "—" : String(value);
    }
    dl.appendChild(dt);
    dl.appendChild(dd);
  }

  function renderOrder(detail) {
    var order = detail.order;
    var no = String(order.out_trade_no);
    var refundable = refundableFen(order);
    $("order-title").textContent = "Order " + no;

    var dl = $("order-fields");
    clear(dl);
    var code = el("code", null, no);
    field(dl, "Number", code);
    var status = badge(order.status);
    status.id = "order-status";
    field(dl, "Status", status);
    field(dl, "Amount", yuan(order.amount), "order-amount");
    field(dl, "Refunded", yuan(order.refunded_fen));
    field(dl, "Refunded or in progress", yuan(order.refund_held_fen));
    field(dl, "Refundable remainder", yuan(refundable), "order-refundable");
    field(dl, "Refunds", order.refund_count);
    field(dl, "Currency", order.currency);
    field(dl, "Provider", order.provider);
    field(dl, "Description", order.description);
    field(dl, "Payer openid", order.openid);
    field(dl, "Transaction id", order.transaction_id);
    field(dl, "Paid at", order.paid_at ? timeNode(order.paid_at) : null);
    if (order.failure_reason) { field(dl, "Failure reason", order.failure_reason); }
    field(dl, "Created", timeNode(order.created_at));
    field(dl, "Updated", timeNode(order.updated_at));

    // The refund form: default to the remainder once per order (or after a refund), so a
    // reload or a poll never overwrites what the operator is typing.
    if (refundFormFor !== no) {
      refundFormFor = no;
      $("refund-amount").value = refundable > 0 ? yuanPlain(refundable) : "";
    }
    $("refund-hint").textContent = refundable > 0
      ? "Refundable: " + yuan(refundable) + " of " + yuan(order.amount) + "."
      : "Nothing left to refund.";

    renderRefunds(Array.isArray(detail.refunds) ? detail.refunds : []);
    renderHistory(detail);
  }

  function renderRefunds(refunds) {
    var body = $("refunds").tBodies[0];
    clear(body);
    if (refunds.length === 0) {
      var empty = el("tr", "empty");
      var cell = el("td", "muted", "No refunds.");
      cell.colSpan = 8;
      empty.appendChild(cell);
      body.appendChild(empty);
      return;
    }
    refunds.forEach(function (r) {
      var tr = el("tr");
      tr.dataset.refund = String(r.out_refund_no);
      var numberCell = el("td");
      numberCell.appendChild(el("code", null, r.out_refund_no));
      var statusCell = el("td", "refund-status");
      statusCell.appendChild(badge(r.status));
      var created = el("td");
      created.appendChild(timeNode(r.created_at));
      var succeeded = el("td");
      succeeded.appendChild(timeNode(r.succeeded_at));
      tr.appendChild(numberCell);
      tr.appendChild(el("td", "num", yuan(r.amount)));
      tr.appendChild(statusCell);
      tr.appendChild(el("td", null, r.reason || "—"));
      tr.appendChild(el("td", null, r.refund_id || "—"));
      tr.appendChild(el("td", r.failure ? "failure" : null,
        r.failure || r.user_received_account || "—"));
      tr.appendChild(created);
      tr.appendChild(succeeded);
      body.appendChild(tr);
    });
  }

  function listItem(list, parts) {
    var li = el("li");
    parts.forEach(function (part, i) {
      if (i > 0) { li.appendChild(document.createTextNode(" · ")); }
      li.appendChild(typeof part === "string" ? el("span", null, part) : part);
    });
    list.appendChild(li);
  }

  function emptyItem(list, text) {
    list.appendChild(el("li", "muted", text));
  }

  function renderHistory(detail) {
    var events = $("order-events");
    clear(events);
    (detail.events || []).forEach(function (e) {
      var delivered = e.delivered_at
        ? (function () {
          var span = el("span", "delivered", "delivered ");
          span.appendChild(timeNode(e.delivered_at));
          return span;
        })()
        : el("span", "undelivered", "not delivered");
      listItem(events, [badge(e.kind), el("code", null, e.event_id), timeNode(e.created_at),
        delivered]);
    });
    if (!events.firstChild) { emptyItem(events, "No events."); }

    var notifications = $("order-notifications");
    clear(notifications);
    (detail.notifications || []).forEach(function (n) {
      listItem(notifications, [el("code", null, n.event_id), timeNode(n.received_at)]);
    });
    if (!notifications.firstChild) { emptyItem(notifications, "No notifications recorded."); }

    var mismatches = $("order-mismatches");
    clear(mismatches);
    (detail.mismatches || []).forEach(function (m) {
      listItem(mismatches, [timeNode(m.recorded_at), m.detail || ""]);
    });
    if (!mismatches.firstChild) { emptyItem(mismatches, "No mismatches."); }
  }

  // -------------------------------------------------------------------------------------------
  // Actions

  function setBusy(value) {
    busy = value;
    ["action-query", "action-close", "action-redeliver", "refund-submit", "order-reload"]
      .forEach(function (id) { $(id).disabled = value; });
  }

  function describeAction(action, r) {
    var status = r.order && r.order.status ? r.order.status : "?";
    if (action === "query") {
      return "Queried the upstream: it reports " + (r.upstream_state || "?") +
        "; the order is " + status + ".";
    }
    if (action === "close") { return "Closed: the order is " + status + "."; }
    var delivered = Array.isArray(r.delivered) ? r.delivered : [];
    var failed = Array.isArray(r.failed) ? r.failed : [];
    if (delivered.length === 0 && failed.length === 0) {
      return "Nothing to redeliver: every event of this order is delivered.";
    }
    var text = "Redelivered " + delivered.length + (delivered.length === 1 ? " event" : " events");
    if (failed.length) {
      text += "; " + failed.length + " failed: " + failed.map(function (f) {
        return f.event_id + " (" + f.error + ")";
      }).join(", ");
    }
    return text + ".";
  }

  function runAction(action) {
    if (!currentOrder || busy) { return; }
    var no = String(currentOrder.order.out_trade_no);
    var seq = orderSeq;
    if (action === "close" &&
        !window.confirm("Close order " + no + "? The payer can no longer pay it.")) {
      return;
    }
    clearBanners();
    setBusy(true);
    api("POST", orderPath(no) + "/" + action).then(function (r) {
      var text = describeAction(action, r);
      var failedSome = action === "redeliver" && Array.isArray(r.failed) && r.failed.length > 0;
      if (failedSome) { showError(text); } else { showMessage(text); }
      if (seq === orderSeq) { return loadOrder(no, seq); }
      return null;
    }).then(function () {
      if (action === "redeliver") { loadOutbox(); loadAttention(); }
    }).catch(handleError).then(function () { setBusy(false); });
  }

  function hasProcessing(detail) {
    return (detail.refunds || []).some(function (r) { return r.status === "PROCESSING"; });
  }

  function onRefund(event) {
    event.preventDefault();
    if (!currentOrder || busy) { return; }
    var order = currentOrder.order;
    var no = String(order.out_trade_no);
    var seq = orderSeq;
    var parsed = parseYuan($("refund-amount").value);
    if (parsed.error) {
      showMessage("");
      showError(parsed.error);
      return;
    }
    var refundable = refundableFen(order);
    if (parsed.fen > refundable) {
      showMessage("");
      showError("A refund of " + yuan(parsed.fen) + " exceeds the refundable remainder " +
        yuan(refundable) + ".");
      return;
    }
    var reason = $("refund-reason").value.trim();
    if (!window.confirm("Refund " + yuan(parsed.fen) + " of order " + no + " to the payer?" +
        (reason ? "\nReason: " + reason : ""))) {
      return;
    }
    var body = { amount: parsed.fen };
    if (reason) { body.reason = reason; }
    clearBanners();
    setBusy(true);
    api("POST", "/orders/" + encodeURIComponent(no) + "/refunds", body).then(function (refund) {
      showMessage("Refund " + refund.out_refund_no + " of " + yuan(refund.amount) + ": " +
        refund.status + ".");
      if (seq !== orderSeq) { return null; }
      $("refund-reason").value = "";
      refundFormFor = null; // default the amount to the new remainder
      return loadOrder(no, seq).then(function (detail) {
        if (hasProcessing(detail)) { startPolling(no, seq, refund.out_refund_no); }
      });
    }).catch(handleError).then(function () { setBusy(false); });
  }

  /* Re-reads the order every second until no refund is PROCESSING (for 20 s at most). */
  function startPolling(no, seq, refundNo) {
    stopPolling();
    var deadline = Date.now() + POLL_LIMIT_MS;
    function tick() {
      pollTimer = null;
      if (seq !== orderSeq || token === null) { return; }
      loadOrder(no, seq).then(function (detail) {
        if (!hasProcessing(detail)) {
          var settled = (detail.refunds || []).filter(function (r) {
            return r.out_refund_no === refundNo;
          })[0];
          if (settled) {
            var text = "Refund " + settled.out_refund_no + " of " + yuan(settled.amount) + ": " +
              settled.status + (settled.failure ? " (" + settled.failure + ")" : "") + ".";
            if (settled.status === "SUCCESS") { showMessage(text); } else { showError(text); }
          }
          return;
        }
        if (Date.now() >= deadline) {
          showMessage("A refund is still PROCESSING; press Reload to check again.");
          return;
        }
        pollTimer = setTimeout(tick, POLL_INTERVAL_MS);
      }).catch(handleError);
    }
    pollTimer = setTimeout(tick, POLL_INTERVAL_MS);
  }

  function stopPolling() {
    if (pollTimer !== null) {
      clearTimeout(pollTimer);
      pollTimer = null;
    }
  }

  // -------------------------------------------------------------------------------------------
  // Start

  function start() {
    $("signin").addEventListener("submit", onSignIn);
    $("signout").addEventListener("click", function () {
      forget(null);
      showMessage("Signed out: the token is forgotten.");
    });
    $("filters").addEventListener("submit", onFilters);
    $("next-page").addEventListener("click", onNextPage);
    $("prev-page").addEventListener("click", onPrevPage);
    $("refresh").addEventListener("click", onRefresh);
    $("back").addEventListener("click", function () { window.location.hash = "list"; });
    $("order-reload").addEventListener("click", function () {
      if (!currentOrder) { return; }
      clearBanners();
      loadOrder(currentOrder.order.out_trade_no, orderSeq).catch(handleError);
    });
    $("action-query").addEventListener("click", function () { runAction("query"); });
    $("action-close").addEventListener("click", function () { runAction("close"); });
    $("action-redeliver").addEventListener("click", function () { runAction("redeliver"); });
    $("refund-form").addEventListener("submit", onRefund);
    $("message").addEventListener("click", function () { showMessage(""); });
    window.addEventListener("hashchange", function () { route(true); });
    // Leaving the page forgets the token even if the browser keeps the page for "back".
    window.addEventListener("pagehide", function () { if (token !== null) { forget(null); } });

    forget(null);
    document.body.dataset.ready = "true";
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
