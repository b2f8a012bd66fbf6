// The shardfs dashboard: a page over the companion API (docs/api.md), with no outside
// resources. The token lives in this browser's localStorage.
"use strict";

const state = { token: localStorage.getItem("shardfs.token"), path: [], who: null, timer: null };
const $ = (id) => document.getElementById(id);

function encodePath(names) {
  return names.map(encodeURIComponent).join("/");
}

function human(bytes) {
  if (bytes === null || bytes === undefined) return "-";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = bytes, u = 0;
  while (v >= 1024 && u < units.length - 1) { v /= 1024; u++; }
  return (u === 0 ? v : v.toFixed(1)) + " " + units[u];
}

async function api(method, path, body) {
  const opts = { method, headers: {} };
  if (state.token) opts.headers["Authorization"] = "Bearer " + state.token;
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const res = await fetch("/api/v1" + path, opts);
  if (res.status === 401 && state.token) { logout("Your token is no longer valid."); throw new Error("401"); }
  const text = await res.text();
  const json = text ? JSON.parse(text) : null;
  if (!res.ok) throw new Error((json && json.message) || res.statusText);
  return json;
}

function showError(e) { $("error").textContent = e ? String(e.message || e) : ""; }

function logout(message) {
  localStorage.removeItem("shardfs.token");
  state.token = null;
  $("app").hidden = true;
  $("logout").hidden = true;
  $("who").textContent = "";
  $("login").hidden = false;
  $("login-error").textContent = message || "";
}

async function login(secret, name) {
  secret = secret.trim();
  if (!/^sfs_[0-9a-f]{64}$/.test(secret)) {
    const paired = await api("POST", "/pair", { code: secret, name });
    secret = paired.token;
  }
  state.token = secret;
  const who = await api("GET", "/whoami");
  localStorage.setItem("shardfs.token", secret);
  return who;
}

async function start() {
  try {
    state.who = await api("GET", "/whoami");
  } catch (e) {
    logout(state.token ? "Please log in again." : "");
    return;
  }
  $("login").hidden = true;
  $("app").hidden = false;
  $("logout").hidden = false;
  $("drive-name").textContent = state.who.drive;
  $("who").textContent = state.who.name + (state.who.read_only ? " (read-only)" : "") +
      (state.who.root !== "/" ? " in " + state.who.root : "");
  $("up").disabled = true;
  await showFiles();
}

async function showFiles() {
  showError(null);
  $("path").textContent = "/" + state.path.join("/");
  $("up").disabled = state.path.length === 0;
  const rows = [];
  let cursor = null;
  for (let page = 0; page < 20; page++) {
    const q = "?limit=1000" + (cursor ? "&cursor=" + encodeURIComponent(cursor) : "");
    const list = await api("GET", "/list/" + encodePath(state.path) + q);
    rows.push(...list.entries);
    cursor = list.next_cursor;
    if (!cursor) break;
  }
  const body = $("files").querySelector("tbody");
  body.replaceChildren();
  for (const e of rows) {
    const tr = document.createElement("tr");
    tr.dataset.name = e.name;
    const name = document.createElement("td");
    if (e.type === "folder") {
      const a = document.createElement("a");
      a.className = "folder";
      a.textContent = e.name + "/";
      a.onclick = () => { state.path.push(e.name); showFiles().catch(showError); };
      name.append(a);
    } else {
      name.textContent = e.name;
    }
    const size = document.createElement("td");
    size.textContent = e.type === "file" ? human(e.size) : "";
    const when = document.createElement("td");
    when.textContent = new Date(e.mtime).toLocaleString();
    const actions = document.createElement("td");
    if (e.type === "file") {
      const dl = document.createElement("button");
      dl.textContent = "Download";
      dl.className = "download";
      dl.onclick = () => download(state.path.concat([e.name])).catch(showError);
      actions.append(dl);
    }
    if (!state.who.read_only) {
      const del = document.createElement("button");
      del.textContent = "Delete";
      del.onclick = async () => {
        if (!confirm("Delete " + e.name + "?")) return;
        await api("DELETE", "/files/" + encodePath(state.path.concat([e.name])) + "?recursive=1").catch(showError);
        await showFiles().catch(showError);
      };
      actions.append(del);
    }
    tr.append(name, size, when, actions);
    body.append(tr);
  }
}

async function download(names) {
  const res = await fetch("/api/v1/files/" + encodePath(names), {
    headers: { Authorization: "Bearer " + state.token },
  });
  if (!res.ok) throw new Error("download failed: " + res.status);
  const blob = await res.blob();
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = names[names.length - 1];
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

function upload(file) {
  const target = state.path.concat([file.name]);
  const row = document.createElement("tr");
  const name = document.createElement("td");
  name.textContent = "/" + target.join("/");
  const bar = document.createElement("progress");
  bar.max = file.size || 1;
  bar.value = 0;
  const cell = document.createElement("td");
  cell.append(bar);
  const st = document.createElement("td");
  st.textContent = "uploading";
  row.append(name, cell, st);
  $("queue").querySelector("tbody").append(row);
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", "/api/v1/files/" + encodePath(target));
    xhr.setRequestHeader("Authorization", "Bearer " + state.token);
    xhr.setRequestHeader("X-OC-Mtime", String(file.lastModified / 1000));
    xhr.upload.onprogress = (ev) => { bar.value = ev.loaded; };
    xhr.onload = () => {
      const ok = xhr.status === 200 || xhr.status === 201;
      bar.value = bar.max;
      st.textContent = ok ? "done" : "failed: " + xhr.status + " " + xhr.responseText;
      resolve(ok);
    };
    xhr.onerror = () => { st.textContent = "failed: network"; resolve(false); };
    xhr.send(file);
  });
}

async function refreshStatus() {
  const s = await api("GET", "/status");
  const p = s.usage.pending_uploads;
  $("pending").textContent = p.bytes > 0
      ? human(p.bytes) + " in " + p.files + " file(s) wait to be stored on the nodes" +
        (p.last_error ? " (last error: " + p.last_error + ")" : "")
      : "Everything is stored on the nodes.";
  const ups = $("server-uploads").querySelector("tbody");
  ups.replaceChildren();
  for (const u of s.uploads) {
    const tr = document.createElement("tr");
    for (const v of [u.path, human(u.received), human(u.total)]) {
      const td = document.createElement("td");
      td.textContent = v;
      tr.append(td);
    }
    ups.append(tr);
  }
  const nodes = $("nodes").querySelector("tbody");
  nodes.replaceChildren();
  for (const n of s.nodes) {
    const tr = document.createElement("tr");
    const latency = n.rtt_ms !== null ? n.rtt_ms.toFixed(1) + " ms"
        : n.latency_ms > 0 ? n.latency_ms.toFixed(1) + " ms" : "-";
    for (const v of [n.address, n.state, latency, human(n.free), n.reputation.toFixed(2)]) {
      const td = document.createElement("td");
      td.textContent = v;
      tr.append(td);
    }
    nodes.append(tr);
  }
  const d = s.durability;
  if (d) {
    $("durability-summary").textContent = d.packs + " packs: " + d.full + " full, " + d.degraded +
        " degraded, " + d.endangered + " endangered, " + d.lost + " unreadable.";
    const tb = $("durability").querySelector("tbody");
    tb.replaceChildren();
    for (const [healthy, packs] of Object.entries(d.packs_by_healthy_shards)) {
      const tr = document.createElement("tr");
      for (const v of [healthy, packs]) {
        const td = document.createElement("td");
        td.textContent = v;
        tr.append(td);
      }
      tb.append(tr);
    }
  }
  $("fingerprint").textContent = (s.server && s.server.fingerprint) || "(plain HTTP)";
}

async function showDevices() {
  const body = $("devices").querySelector("tbody");
  body.replaceChildren();
  if (!state.who.owner) {
    const tr = document.createElement("tr");
    const td = document.createElement("td");
    td.colSpan = 6;
    td.textContent = "Only the owner's devices (the whole drive, read-write) manage devices.";
    tr.append(td);
    body.append(tr);
    return;
  }
  const list = await api("GET", "/devices");
  for (const d of list.devices) {
    const tr = document.createElement("tr");
    tr.dataset.id = d.id;
    for (const v of [d.id, d.name, d.read_only ? "read-only" : "read-write", d.root,
                     d.last_used ? new Date(d.last_used).toLocaleString() : "never"]) {
      const td = document.createElement("td");
      td.textContent = v;
      tr.append(td);
    }
    const td = document.createElement("td");
    if (d.revoked) {
      td.textContent = "revoked";
    } else {
      const b = document.createElement("button");
      b.textContent = "Revoke";
      b.className = "revoke";
      b.onclick = async () => {
        await api("DELETE", "/devices/" + d.id).catch(showError);
        await showDevices().catch(showError);
      };
      td.append(b);
    }
    tr.append(td);
    body.append(tr);
  }
}

function selectTab(name) {
  for (const b of document.querySelectorAll(".tab")) b.classList.toggle("active", b.dataset.tab === name);
  for (const p of document.querySelectorAll(".panel")) p.hidden = p.id !== "tab-" + name;
  clearInterval(state.timer);
  if (name === "files") showFiles().catch(showError);
  if (name === "devices") { showDevices().catch(showError); refreshStatus().catch(showError); }
  if (name === "uploads" || name === "nodes" || name === "durability") {
    refreshStatus().catch(showError);
    state.timer = setInterval(() => refreshStatus().catch(showError), 3000);
  }
}

$("login-form").onsubmit = async (ev) => {
  ev.preventDefault();
  $("login-error").textContent = "";
  try {
    await login($("login-secret").value, $("login-name").value);
    $("login-secret").value = "";
    await start();
  } catch (e) {
    state.token = null;
    $("login-error").textContent = "Could not log in: " + (e.message || e);
  }
};
$("logout").onclick = () => logout("");
$("up").onclick = () => { state.path.pop(); showFiles().catch(showError); };
$("new-folder").onclick = async () => {
  const name = prompt("Folder name");
  if (!name) return;
  await api("POST", "/folders/" + encodePath(state.path.concat([name]))).catch(showError);
  await showFiles().catch(showError);
};
$("upload-input").onchange = async (ev) => {
  const files = Array.from(ev.target.files);
  ev.target.value = "";
  for (const f of files) await upload(f);
  await showFiles().catch(showError);
};
for (const b of document.querySelectorAll(".tab")) b.onclick = () => selectTab(b.dataset.tab);

if (state.token) start(); else logout("");
