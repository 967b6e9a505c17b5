// Sample HIS page for `sscard serve` (docs/reader-service.md): plain JavaScript, no build.
//
// What to copy: `api()` (every call sends X-SSCard-Request: 1 and, when paired, the
// bearer token; errors come back as {code, message_en, message_zh}); `connectEvents()`
// (the /v1/events WebSocket with ?auto_read=1: the service reads the card on insert
// and sends it, masked unless this origin is configured for full data); reconnect
// with back-off, because the service may restart while the page stays open. The
// "read" button asks on that socket ({"type": "read"}): a fetch from a page costs the
// browser ~4 ms of its own work on a small PC, a socket message ~1 ms (measured).
"use strict";

const SERVICE = new URLSearchParams(location.search).get("service") || "http://127.0.0.1:27301";
const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem("sscard-token") || "";
let paired = false;
let socket = null;
let connected = false;  // the socket said hello (and, when paired, took the token)
let nextReadId = 1;
const pendingReads = new Map();  // read id -> its timeout (the service answers every read)
let retryMs = 500;

function showError(body) {
  $("error").textContent = body
    ? `[${body.code}] ${body.message_zh || ""} / ${body.message_en || ""}`
    : "";
}

async function api(path, body) {
  const headers = { "X-SSCard-Request": "1" };
  if (token) headers.Authorization = "Bearer " + token;
  const init = { method: body === undefined ? "GET" : "POST", headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(SERVICE + path, init);
  } catch (err) {
    // A network error: the service is down, or refused this page (CORS / Origin).
    setStatus(false, "读卡服务不可用或拒绝本页 / service unreachable or refused this page");
    throw err;
  }
  const data = await response.json();
  if (data.code === -9002) showPairing();
  return data;
}

function setStatus(ok, text) {
  $("status").className = ok ? "ok" : "bad";
  $("status").textContent = text;
}

function renderReaders(readers) {
  const list = $("readers");
  list.replaceChildren();
  for (const r of readers) {
    const li = document.createElement("li");
    li.className = "reader";
    li.textContent = r.name;
    const badge = document.createElement("span");
    badge.className = "badge " + r.state;
    badge.textContent = { empty: "无卡 empty", card: "有卡 card", error: "错误 error" }[r.state];
    li.append(badge);
    list.append(li);
  }
  if (!readers.length) list.innerHTML = '<li class="hint">无读卡器 / no reader</li>';
}

async function refreshReaders() {
  const data = await api("/v1/readers");
  if (data.code === 0) renderReaders(data.readers);
  else showError(data);
}

function clearCard() {
  $("card").hidden = true;
  $("masked").hidden = true;
  $("card-empty").hidden = false;
  $("pin-result").textContent = "";
  $("identity-result").replaceChildren();
}

function renderCard(data) {
  if (data.code !== 0) {
    showError(data);
    return;
  }
  showError(null);
  const card = data.card;
  const holder = card.holder || {};
  $("card-name").textContent = holder.name || "—";
  $("card-ssn").textContent = holder.ssn || "—";
  $("card-sex").textContent = holder.sex_zh ? `${holder.sex_zh} ${holder.sex_en}` : "—";
  $("card-birth").textContent = holder.birth_date || "—";
  $("card-number").textContent = card.issuer.card_number;
  $("card-region").textContent = `${card.issuer.region_zh} ${card.issuer.region_en}`;
  $("card-expiry").textContent = card.issuer.expiry_date + (card.expired ? " 已过期 EXPIRED" : "");
  $("card-genuine").innerHTML = card.genuine
    ? '<span class="ok">✓ 真卡 genuine</span>'
    : '<span class="bad">未验证 not checked</span>';
  $("card-bas").textContent = data.ireadcardbas.code === 0
    ? data.ireadcardbas.out
    : `[${data.ireadcardbas.code}]`;
  $("masked").hidden = !data.masked;
  $("card").hidden = false;
  $("card-empty").hidden = true;
}

function connectEvents() {
  const url = SERVICE.replace(/^http/, "ws") + "/v1/events?auto_read=1";
  socket = new WebSocket(url);
  socket.onopen = () => {
    if (token) socket.send(JSON.stringify({ type: "auth", token }));
  };
  socket.onmessage = (message) => {
    const event = JSON.parse(message.data);
    if (event.type === "hello") {
      connected = true;
      retryMs = 500;
      setStatus(true, `读卡服务已连接 / connected (sscard ${event.version})`);
      renderReaders(event.readers);
      if (event.pcsc !== "ok") setStatus(false, "PC/SC 服务不可用 / PC/SC unavailable");
    } else if (event.type === "card" && event.event === "inserted") {
      $("card-empty").textContent = "正在读卡… / reading…";
      refreshReaders();
    } else if (event.type === "card" && event.event === "removed") {
      $("card-empty").textContent = "请插入社保卡 / Please insert the card";
      clearCard();
      refreshReaders();
    } else if (event.type === "read") {
      if (event.id != null) {
        clearTimeout(pendingReads.get(event.id));
        pendingReads.delete(event.id);
      }
      renderCard(event);
    } else if (event.type === "reader") {
      refreshReaders();
    } else if (event.type === "status") {
      setStatus(event.pcsc === "ok", event.pcsc === "ok"
        ? "读卡服务已连接 / connected"
        : "PC/SC 服务不可用 / PC/SC unavailable");
    } else if (event.type === "error") {
      showError(event);
    }
  };
  socket.onclose = () => {
    connected = false;
    for (const timer of pendingReads.values()) clearTimeout(timer);
    pendingReads.clear();  // the status line says the service is gone
    setStatus(false, "读卡服务未连接 / reader service not connected");
    setTimeout(connectEvents, retryMs);
    retryMs = Math.min(retryMs * 2, 10000);
  };
}

function showPairing() {
  $("pair-form").hidden = false;
}

$("pair-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const data = await api("/v1/pair", { code: $("pair-code").value });
  if (data.code !== 0) return showError(data);
  token = data.token;
  sessionStorage.setItem("sscard-token", token);
  $("pair-form").hidden = true;
  showError(null);
  if (socket) socket.close();
});

$("read-btn").addEventListener("click", async () => {
  if (connected && socket.readyState === WebSocket.OPEN) {
    // the answer comes back as {"type": "read", "id": ...} and is shown by onmessage;
    // the service answers within its operation timeout (20 s), so 25 s means lost
    const id = nextReadId++;
    pendingReads.set(id, setTimeout(() => {
      pendingReads.delete(id);
      showError({ code: -9005, message_zh: "读卡无应答", message_en: "no answer to the read" });
    }, 25000));
    socket.send(JSON.stringify({ type: "read", id }));
  } else {
    renderCard(await api("/v1/card/read", {}));
  }
});

$("pin-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const pin = $("pin").value;
  $("pin").value = "";  // never keep the PIN on the page
  const data = await api("/v1/card/pin/verify", { pin });
  const out = $("pin-result");
  if (data.code === 0) {
    out.innerHTML = '<span class="ok">✓ 密码正确 / PIN correct</span>';
  } else {
    out.innerHTML = "";
    const span = document.createElement("span");
    span.className = "bad";
    span.textContent = `✗ [${data.code}] ${data.message_zh} / ${data.message_en}`;
    out.append(span);
  }
});

$("hotel-btn").addEventListener("click", async () => {
  const data = await api("/v1/identity/check", { scenario: "hotel" });
  const box = $("identity-result");
  box.replaceChildren();
  if (data.code !== 0) return showError(data);
  const verdict = document.createElement("p");
  verdict.className = data.outcome === "accepted" ? "ok" : "bad";
  verdict.textContent = data.outcome === "accepted" ? "✓ 核验通过 / accepted" : "✗ 拒绝 / refused: " + data.reasons.join(", ");
  box.append(verdict);
  const table = document.createElement("table");
  for (const [key, value] of Object.entries(data.released)) {
    const row = table.insertRow();
    row.insertCell().textContent = key;
    row.insertCell().textContent = value;
  }
  box.append(table);
  for (const note of data.notes) {
    const p = document.createElement("p");
    p.className = "hint";
    p.textContent = `! ${note.message_zh} / ${note.message_en}`;
    box.append(p);
  }
});

(async function start() {
  try {
    const version = await (await fetch(SERVICE + "/v1/version")).json();
    paired = !version.pairing || !!token;
    $("test-keys").hidden = !version.test_keys;  // the service says when its keys are TEST keys
    if (!paired) showPairing();
    connectEvents();
    if (paired) await refreshReaders();
  } catch (err) {
    setStatus(false, "读卡服务不可用或拒绝本页 / service unreachable or refused this page");
    showError({ code: -9001, message_zh: "无法连接读卡服务", message_en: "cannot reach the reader service" });
  }
})();
