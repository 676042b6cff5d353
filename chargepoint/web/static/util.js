// Shared by the page's scripts: building DOM nodes, formatting, the API, the message line.
// Everything is built with DOM calls and textContent: nothing the station reports is parsed as HTML.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const state = { csrf: null, protected: false, loggedIn: false, actions: [], modes: [], standalone: false,
    charts: {}, source: null, cards: {}, cardNames: {}, status: null, flow: null };

  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null || v === false) continue;
      if (k === "class") node.className = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children) if (c != null) node.append(c);
    return node;
  }

  let sayTimer = null;
  function say(text, info) {
    const m = $("message");
    m.textContent = text; m.hidden = !text; m.className = info ? "info" : "error";
    clearTimeout(sayTimer);
    if (info && text) sayTimer = setTimeout(() => { m.hidden = true; }, 6000);
  }

  const pad = (n) => String(n).padStart(2, "0");
  const fmt = {
    num: (v, digits, unit) => (v == null ? "–" : `${Number(v).toFixed(digits)} ${unit}`),
    kw: (w) => (w == null ? "–" : `${(w / 1000).toFixed(Math.abs(w) < 10000 ? 2 : 1)} kW`),
    kwh: (wh) => (wh == null ? "–" : `${(wh / 1000).toFixed(2)} kWh`),
    amps: (a) => (a == null ? "–" : `${+Number(a).toFixed(1)} A`),
    dur: (s) => {
      if (s == null) return "–";
      const m = Math.floor(s / 60), hh = Math.floor(m / 60);
      return hh ? `${hh} h ${m % 60} min` : m ? `${m} min` : `${Math.floor(s)} s`;
    },
    clock: (t) => { const d = new Date(t * 1000); return `${pad(d.getHours())}:${pad(d.getMinutes())}`; },
    day: (t) => new Date(t * 1000).toLocaleDateString(undefined, { day: "numeric", month: "short" }),
    date: (t) => new Date(t * 1000).toLocaleDateString(undefined, { day: "numeric", month: "short", year: "numeric" }),
    when: (t) => {
      if (t == null) return "–";
      const today = new Date().toDateString() === new Date(t * 1000).toDateString();
      return today ? fmt.clock(t) : `${fmt.day(t)} ${fmt.clock(t)}`;
    },
    pct: (v) => (v == null ? "–" : `${Math.round(v * 100)} %`),
  };

  async function api(path, body) {
    const options = body === undefined ? {} : {
      method: "POST", body: JSON.stringify(body),
      headers: { "Content-Type": "application/json", "X-CSRF-Token": state.csrf || "" },
    };
    const response = await fetch(path, { credentials: "same-origin", ...options });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error((data.error && data.error.message) || `HTTP ${response.status}`);
    return data;
  }

  // An action button: disabled while the request runs; the outcome in the message line.
  async function act(button, name, body, done) {
    button.disabled = true;
    try {
      const result = await api(`/api/action/${name}`, body);
      if (done) say(done(result.result), true);
      return result.result;
    } catch (err) {
      say(err.message);
      return null;
    } finally {
      button.disabled = false;
    }
  }

  window.cp = { $, h, say, fmt, api, act, state };
})();
