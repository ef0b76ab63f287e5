// zoo studio: the page. Plain JS, no build step, nothing loaded from elsewhere.
// One session per tab (the server keeps each tab's photos and sliders apart). Slider moves are sent one at a
// time: while an edit is in flight, later moves only mark the state dirty, and the latest values go next.
"use strict";

const $ = (id) => document.getElementById(id);
const S = {
  session: null, info: null, photos: new Map(), current: null,
  showBefore: false, inflight: false, dirty: false, renders: 0, lastMs: null,
};

// ------------------------------------------------------------------ server

async function api(path, opts = {}) {
  const headers = Object.assign({ "X-Zoo-Studio": "1" }, opts.headers || {});
  const res = await fetch(path, Object.assign({}, opts, { headers }));
  if (!res.ok) {
    let text = `${res.status} ${res.statusText}`;
    try { text = (await res.json()).error || text; } catch (e) { /* not JSON */ }
    throw new Error(text);
  }
  return res;
}
const photoUrl = (id, what) => `/api/sessions/${S.session}/photos/${encodeURIComponent(id)}/${what}`;

function showMessage(text) {
  const box = $("message");
  box.textContent = text;
  box.hidden = !text;
}

// ------------------------------------------------------------------ sliders (unit position <-> value)

function t(spec, v) { return spec.log ? Math.log(v) : v; }
function toUnit(spec, v) {
  const lo = t(spec, spec.low), mid = t(spec, spec.neutral), hi = t(spec, spec.high), x = t(spec, v);
  const u = x < mid ? (x - mid) / (mid - lo) : (x - mid) / (hi - mid);
  return Math.max(-1, Math.min(1, u));
}
function fromUnit(spec, u) {
  const lo = t(spec, spec.low), mid = t(spec, spec.neutral), hi = t(spec, spec.high);
  const x = u < 0 ? mid + u * (mid - lo) : mid + u * (hi - mid);
  const v = spec.log ? Math.exp(x) : x;
  return Math.max(spec.low, Math.min(spec.high, v));
}
const fmt = (v) => (Math.abs(v) < 5e-5 ? "0" : v.toFixed(Math.abs(v) >= 10 ? 1 : 3));

function buildSliders() {
  const form = $("slider-form");
  form.textContent = "";
  $("software").textContent = S.info.software ? `Sliders: ${S.info.software}` : "No sliders";
  if (!S.info.sliders.length) {
    const p = document.createElement("p");
    p.className = "muted";
    p.textContent = S.info.reason;
    form.appendChild(p);
    return;
  }
  for (const spec of S.info.sliders) {
    const row = document.createElement("div");
    row.className = "slider";
    row.dataset.name = spec.name;
    const id = `s-${spec.name.replace(/[^A-Za-z0-9_-]/g, "_")}`;
    const label = document.createElement("label");
    label.htmlFor = id;
    label.textContent = spec.name;
    label.title = `range ${spec.low} .. ${spec.high}, neutral ${spec.neutral} (double-click the slider for neutral)`;
    const out = document.createElement("output");
    out.textContent = fmt(spec.neutral);
    const input = document.createElement("input");
    Object.assign(input, { type: "range", id, min: "-1", max: "1", step: "any", value: "0", disabled: true });
    input.dataset.name = spec.name;
    input.addEventListener("input", () => onSlider(spec, input, out, row));
    input.addEventListener("dblclick", () => {
      input.value = "0";
      onSlider(spec, input, out, row);
    });
    row.append(label, out, input);
    form.appendChild(row);
  }
}

function onSlider(spec, input, out, row) {
  const photo = S.photos.get(S.current);
  if (!photo) return;
  const v = fromUnit(spec, parseFloat(input.value));
  photo.params[spec.name] = v;
  out.textContent = fmt(v);
  row.classList.toggle("changed", Math.abs(v - photo.proposal[spec.name]) > 1e-6);
  if (S.showBefore) setBefore(false);
  requestEdit();
}

function syncSliders() {
  const photo = S.photos.get(S.current);
  for (const spec of S.info.sliders) {
    const row = document.querySelector(`.slider[data-name="${CSS.escape(spec.name)}"]`);
    const input = row.querySelector("input"), out = row.querySelector("output");
    input.disabled = !photo;
    if (!photo) continue;
    const v = photo.params[spec.name];
    input.value = String(toUnit(spec, v));
    out.textContent = fmt(v);
    row.classList.toggle("changed", Math.abs(v - photo.proposal[spec.name]) > 1e-6);
  }
}

// ------------------------------------------------------------------ drawing

async function draw(blob, forId) {
  if (forId !== S.current) return false;
  const bitmap = await createImageBitmap(blob);
  const canvas = $("preview");
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  canvas.getContext("2d").drawImage(bitmap, 0, 0);
  bitmap.close();
  $("empty").hidden = true;
  S.renders += 1;
  canvas.dataset.renders = String(S.renders);
  canvas.dataset.photo = forId;
  return true;
}

async function drawUrl(url, forId) {
  const res = await api(url);
  return draw(await res.blob(), forId);
}

async function requestEdit() {
  if (S.inflight) { S.dirty = true; return; }
  const id = S.current;
  const photo = S.photos.get(id);
  if (!photo || !photo.params) return;
  S.inflight = true;
  S.dirty = false;
  try {
    const res = await api(photoUrl(id, "edit"), {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ params: photo.params }),
    });
    S.lastMs = res.headers.get("X-Edit-Ms");
    const blob = await res.blob();
    if (!S.showBefore) await draw(blob, id);
    $("status").textContent = S.lastMs ? `preview edit ${S.lastMs} ms` : "";
  } catch (e) {
    showMessage(e.message);
  } finally {
    S.inflight = false;
  }
  if (S.dirty) requestEdit();
}

async function render() {
  const id = S.current;
  if (!id) return;
  try {
    if (S.showBefore) await drawUrl(photoUrl(id, "before"), id);
    else if (S.info.mode === "before_after") await drawUrl(photoUrl(id, "after"), id);
    else await requestEdit();
  } catch (e) {
    showMessage(e.message);
  }
}

function setBefore(on) {
  S.showBefore = on;
  const b = $("toggle");
  b.setAttribute("aria-pressed", String(on));
  b.textContent = on ? "After" : "Before";
  $("badge").hidden = !on;
  $("badge").textContent = "before";
}

// ------------------------------------------------------------------ photos

function addListItem(name) {
  const li = document.createElement("li");
  li.textContent = name;
  li.title = name;
  $("photo-list").appendChild(li);
  return li;
}

async function upload(files) {
  let first = null, refused = 0;
  for (const file of files) {
    const li = addListItem(`${file.name} …`);
    try {
      const res = await api(`/api/sessions/${S.session}/photos`, {
        method: "POST",
        headers: { "Content-Type": "application/octet-stream", "X-Filename": encodeURIComponent(file.name) },
        body: file,
      });
      const photo = await res.json();
      photo.params = photo.params || {};
      photo.proposal = photo.proposal || {};
      S.photos.set(photo.id, photo);
      li.textContent = `${photo.name} (${photo.width}×${photo.height})`;
      li.dataset.id = photo.id;
      li.addEventListener("click", () => select(photo.id));
      if (!first) first = photo.id;
    } catch (e) {
      li.textContent = `${file.name}: refused`;
      li.className = "bad";
      li.title = e.message;
      refused += 1;
      showMessage(e.message);
    }
  }
  if (first) {
    if (!refused) showMessage("");
    await select(first);
  }
}

async function select(id) {
  S.current = id;
  for (const li of document.querySelectorAll("#photo-list li")) li.classList.toggle("active", li.dataset.id === id);
  const sliders = S.info.mode !== "before_after";
  $("toggle").disabled = false;
  $("reset").disabled = !sliders;
  $("export").disabled = !sliders;
  $("exports").hidden = true;
  syncSliders();
  await render();
}

// ------------------------------------------------------------------ buttons

async function exportPhoto() {
  const id = S.current, photo = S.photos.get(id);
  if (!photo) return;
  const box = $("exports");
  $("export").disabled = true;
  $("status").textContent = "exporting at full resolution…";
  try {
    const res = await api(photoUrl(id, "export"), {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ params: photo.params }),
    });
    const data = await res.json();
    box.textContent = "Exported: ";
    for (const [kind, name] of Object.entries(data.files)) {
      if (!name) continue;
      const a = document.createElement("a");
      a.href = photoUrl(id, `files/${kind}`);
      a.download = name;
      a.textContent = name;
      a.dataset.kind = kind;
      box.appendChild(a);
    }
    if (data.note) box.append(` ${data.note}`);
    box.hidden = false;
    $("status").textContent = "exported";
  } catch (e) {
    showMessage(e.message);
    $("status").textContent = "";
  } finally {
    $("export").disabled = false;
  }
}

function wire() {
  $("file").addEventListener("change", (ev) => {
    upload(Array.from(ev.target.files));
    ev.target.value = "";
  });
  const drop = $("drop");
  drop.addEventListener("dragover", (ev) => { ev.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (ev) => {
    ev.preventDefault();
    drop.classList.remove("over");
    upload(Array.from(ev.dataTransfer.files));
  });
  $("toggle").addEventListener("click", () => { setBefore(!S.showBefore); render(); });
  $("reset").addEventListener("click", () => {
    const photo = S.photos.get(S.current);
    if (!photo) return;
    photo.params = Object.assign({}, photo.proposal);
    setBefore(false);
    syncSliders();
    render();
  });
  $("export").addEventListener("click", exportPhoto);
  document.addEventListener("keydown", (ev) => {
    if (ev.key === "b" && S.current && !ev.ctrlKey && !ev.metaKey && !ev.altKey) { setBefore(!S.showBefore); render(); }
  });
}

async function init() {
  wire();
  try {
    S.info = await (await api("/api/info")).json();
    S.session = (await (await api("/api/sessions", { method: "POST" })).json()).session;
  } catch (e) {
    showMessage(`The studio server cannot be reached: ${e.message}`);
    return;
  }
  const what = S.info.generator ? `${S.info.generator} — ${S.info.model}` : S.info.model;
  $("model").textContent = what;
  $("reason").textContent = S.info.reason;
  document.body.dataset.mode = S.info.mode;
  if (S.info.mode === "editor") $("reset").textContent = "Reset to neutral";
  buildSliders();
  document.body.dataset.ready = "1";
}

init();
