// The dashboard: live state by server-sent events (/api/live), actions through /api/action/*.
// Everything is built with DOM calls and textContent: nothing the station reports is parsed as HTML.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const state = { csrf: null, protected: false, loggedIn: false, charts: {}, source: null, connectors: {},
    cards: {} };

  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v; else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v);
    }
    for (const c of children) if (c != null) node.append(c);
    return node;
  }

  function say(text, info) {
    const m = $("message");
    m.textContent = text; m.hidden = !text; m.className = info ? "info" : "";
  }

  const fmt = {
    num: (v, digits, unit) => (v == null ? "–" : `${Number(v).toFixed(digits)} ${unit}`),
    kwh: (wh) => (wh == null ? "–" : `${(wh / 1000).toFixed(2)} kWh`),
    dur: (s) => {
      if (s == null) return "–";
      const m = Math.floor(s / 60), hh = Math.floor(m / 60);
      return hh ? `${hh} h ${m % 60} min` : m ? `${m} min ${Math.floor(s % 60)} s` : `${Math.floor(s)} s`;
    },
    time: (t) => (t == null ? "–" : new Date(t * 1000).toLocaleString()),
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

  // ------------------------------------------------------------------ rendering
  function rows(c) {
    const session = c.session, tx = session && session.transaction;
    const meter = c.meter || {};
    const currents = (meter.currents_a || []).map((a, i) => `L${i + 1} ${a == null ? "–" : a.toFixed(1)}`);
    return [
      ["IEC state", c.iec_state || "–", "iec"],
      ["activity", c.activity, "activity"],
      ["session", session ? `${session.id_tag}${tx ? ` · ${tx.local_id}` : " · waiting"}` : "none", "session"],
      ["energy (session)", tx ? fmt.kwh(tx.energy_wh) : "–", "session-energy"],
      ["offered", fmt.num(c.offered_a, 1, "A"), "offered"],
      ["limit", `${fmt.num(c.limit.amps, 1, "A")}${c.limit.binding ? ` (${c.limit.binding})` : ""}`, "limit"],
      ["drawn", currents.length ? `${currents.join("  ")} A` : "–", "currents"],
      ["power", fmt.num(meter.power_w == null ? null : meter.power_w / 1000, 2, "kW"), "power"],
      ["meter", fmt.kwh(meter.energy_wh), "meter-energy"],
      ["contactor", c.contactor.closed ? "closed" : "open", "contactor"],
    ];
  }

  // What decides a card's shape (its buttons, its fault line); the values in it change in place.
  function shape(c) {
    const limited = !!(c.limit.claims && c.limit.claims.operator != null);
    return JSON.stringify([!!c.session, c.operative, c.scheduled_operative, state.loggedIn, c.faults, c.error, limited]);
  }

  function connectorCard(c) {
    const id = c.id;
    const dl = h("dl");
    for (const [label, value, key] of rows(c)) {
      dl.append(h("dt", {}, label), h("dd", { id: `c${id}-${key}` }, value));
    }
    const card = h("article", { class: "card", id: `connector-${id}` },
      h("h2", {}, `Connector ${id}`, h("span", { class: "status", id: `c${id}-status` }, c.ocpp_status)),
      dl);
    const faults = (c.faults || []).concat(c.error ? [c.error] : []);
    if (faults.length) card.append(h("p", { class: "faults", id: `c${id}-faults` }, `Fault: ${faults.join(", ")}`));
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("class", "chart"); svg.id = `c${id}-chart`;
    card.append(svg, h("div", { class: "legend" }, h("span", { class: "power" }, "power"),
      h("span", { class: "L1" }, "L1"), h("span", { class: "L2" }, "L2"), h("span", { class: "L3" }, "L3")));
    if (state.loggedIn) card.append(actions(c));
    return card;
  }

  function updateCard(c) {
    const known = state.cards[c.id];
    const now = shape(c);
    if (!known || known.shape !== now) {
      const card = connectorCard(c);
      if (known) known.node.replaceWith(card); else $("connectors").append(card);
      state.cards[c.id] = { node: card, shape: now };
    } else {
      for (const [, value, key] of rows(c)) {
        const dd = $(`c${c.id}-${key}`);
        if (dd.textContent !== value) dd.textContent = value;
      }
    }
    const badge = $(`c${c.id}-status`);
    badge.textContent = c.ocpp_status;
    badge.className = `status ${String(c.ocpp_status).toLowerCase()}`;
  }

  function actions(c) {
    const box = h("div", { class: "actions" });
    const run = (name, body) => async (event) => {
      event.target.disabled = true;
      try {
        await api(`/api/action/${name}`, body());
        say(`${name}: done`, true);
      } catch (err) {
        say(`${name}: ${err.message}`);
      } finally {
        event.target.disabled = false;
      }
    };
    if (c.session) {
      box.append(h("button", { class: "danger", id: `c${c.id}-stop`, onclick: run("stop", () => ({ connector: c.id })) }, "Stop"));
    } else {
      const tag = h("input", { id: `c${c.id}-tag`, placeholder: "card (optional)", maxlength: "20" });
      box.append(tag, h("button", { class: "primary", id: `c${c.id}-start`,
        onclick: run("start", () => (tag.value ? { connector: c.id, id_tag: tag.value } : { connector: c.id })) }, "Start"));
    }
    const amps = h("input", { id: `c${c.id}-limit-amps`, type: "number", min: "0", max: "80", step: "1",
      placeholder: "A", class: "amps" });
    box.append(amps, h("button", { id: `c${c.id}-limit-set`,
      onclick: run("limit", () => ({ connector: c.id, amps: Number(amps.value) })) }, "Limit"));
    if (c.limit.claims && c.limit.claims.operator != null) {
      box.append(h("button", { id: `c${c.id}-limit-clear`,
        onclick: run("limit", () => ({ connector: c.id, amps: null })) }, "Clear limit"));
    }
    const operative = c.scheduled_operative == null ? c.operative : c.scheduled_operative;
    box.append(h("button", { id: `c${c.id}-availability`,
      onclick: run("availability", () => ({ connector: c.id, operative: !operative })) },
      operative ? "Make unavailable" : "Make available"));
    return box;
  }

  function renderStatus(status) {
    $("identity").textContent = status.identity;
    // As the CLI's header: the worst connector's status when one is faulted, out of service or in use.
    const worst = status.worst_connector || {};
    $("station-status").textContent = worst.severity
      ? worst.ocpp_status + (status.connectors.length !== 1 ? ` (connector ${worst.id})` : "")
      : status.station_status;
    const link = status.connection;
    const pill = $("link");
    pill.textContent = link.standalone ? "standalone (no CSMS)"
      : link.connected ? `CSMS connected (${link.ocpp_version || "?"})` : "CSMS offline";
    pill.className = `pill ${link.standalone ? "" : link.connected ? "ok" : "bad"}`;
    pill.title = link.last_error || link.csms_url;
    const q = status.queue;
    $("queue").textContent = `queue ${q.length}${q.oldest_age_s ? ` (oldest ${fmt.dur(q.oldest_age_s)})` : ""}`;
    $("queue").className = `pill ${q.length ? "warn" : ""}`;
    renderSupervisor(status.supervisor);
    renderDisplay(status.display);
    for (const c of status.connectors) {
      updateCard(c);
      state.connectors[c.id] = c;
      window.cpChart.draw($(`c${c.id}-chart`), (state.charts[c.id] || {}).points);
    }
  }

  // The safety supervisor, the process that drives the hardware: answering, how fast it steps, and a
  // connector charging on its own while the daemon restarts (the grace left).
  function renderSupervisor(s) {
    const pill = $("safety");
    pill.hidden = !s;
    if (!s) return;
    if (!s.connected) {
      pill.textContent = "safety supervisor not answering";
      pill.className = "pill bad";
      pill.title = `no answer on ${s.channel}: the connectors are faulted`;
      return;
    }
    const orphan = s.orphan_left_s != null;
    pill.textContent = orphan ? `charging without the daemon: ${Math.round(s.orphan_left_s)} s left`
      : `safety ok, step ≤ ${s.step_p99_ms} ms`;
    pill.className = `pill ${orphan || !s.loops_alive ? "warn" : "ok"}`;
    pill.title = `safety supervisor pid ${s.pid}, up ${fmt.dur(s.up_s || 0)}, longest step ${s.step_max_ms} ms, ` +
      `scheduling ${s.sched}, memory ${s.memory_locked ? "locked" : "not locked"}, ` +
      `${s.heartbeat ? "hardware heartbeat" : "no hardware heartbeat"}`;
  }

  // The operator's display messages (set by the CSMS): priority, validity, and which the display shows now.
  function renderDisplay(d) {
    const messages = (d && d.messages) || [];
    $("display-section").hidden = !messages.length;
    $("display-state").textContent = d ? `station ${d.state}` : "";
    $("display").tBodies[0].replaceChildren(...messages.map((m) => h("tr", { class: m.shown ? "shown" : "" },
      h("td", {}, String(m.id)), h("td", {}, m.text), h("td", {}, m.priority.replace(/_/g, " ")),
      h("td", {}, m.state || "any"), h("td", {}, m.start ? fmt.time(m.start) : "–"),
      h("td", {}, m.end ? fmt.time(m.end) : "–"), h("td", {}, m.transaction || "–"),
      h("td", {}, m.shown ? "yes" : "no"))));
  }

  function renderSessions(sessions) {
    const body = $("sessions").tBodies[0];
    const rows = [];
    for (const s of sessions.running) {
      rows.push(h("tr", {}, h("td", {}, String(s.connector)), h("td", {}, fmt.time(s.started_at)),
        h("td", {}, fmt.dur(s.duration_s)), h("td", {}, s.id_tag), h("td", {}, fmt.kwh(s.energy_wh)),
        h("td", {}, "running")));
    }
    for (const s of sessions.finished) {
      rows.push(h("tr", {}, h("td", {}, String(s.connector)), h("td", {}, fmt.time(s.started_at)),
        h("td", {}, fmt.dur(s.duration_s)), h("td", {}, s.id_tag || "–"), h("td", {}, fmt.kwh(s.energy_wh)),
        h("td", {}, s.reason || "–")));
    }
    body.replaceChildren(...rows);
  }

  function renderEvents(events) {
    $("events").replaceChildren(...events.slice().reverse().map((e) =>
      h("li", { class: e.level }, `${new Date(e.time * 1000).toLocaleTimeString()} ${e.level} ${e.source}: ${e.text}`)));
  }

  // ------------------------------------------------------------------ live feed
  function onFull(data) {
    for (const [id, chart] of Object.entries(data.charts)) state.charts[id] = chart;
    renderStatus(data.status);
    renderSessions(data.sessions);
    renderEvents(data.events);
  }

  function onUpdate(data) {
    for (const [id, p] of Object.entries(data.points)) {
      const chart = state.charts[id];
      if (!chart || chart.local_id !== p.local_id) state.charts[id] = { local_id: p.local_id, points: [p.point] };
      else chart.points.push(p.point);
    }
    renderStatus(data.status);
    if (data.sessions) renderSessions(data.sessions);
    renderEvents(data.events);
  }

  function connect() {
    if (state.source) state.source.close();
    const source = new EventSource("/api/live");
    state.source = source;
    source.addEventListener("full", (e) => { $("live").textContent = "live"; $("live").className = "pill ok"; onFull(JSON.parse(e.data)); });
    source.addEventListener("update", (e) => onUpdate(JSON.parse(e.data)));
    source.onerror = () => { $("live").textContent = "reconnecting…"; $("live").className = "pill warn"; };
  }

  // ------------------------------------------------------------------ login
  function showAccount() {
    $("login-form").hidden = !state.protected || state.loggedIn;
    $("logout-button").hidden = !state.loggedIn;
  }

  async function start() {
    const session = await api("/api/session");
    state.protected = session.protected; state.loggedIn = session.logged_in; state.csrf = session.csrf;
    $("identity").textContent = session.identity;
    showAccount();
    if (state.protected && !state.loggedIn) {
      $("live").textContent = "log in to see the station";
      return;
    }
    connect();
  }

  $("login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const result = await api("/api/login", { password: $("password").value });
      state.loggedIn = true; state.csrf = result.csrf;
      for (const id of Object.keys(state.cards)) state.cards[id].shape = null;
      $("password").value = "";
      say("logged in", true);
      showAccount();
      connect();
    } catch (err) {
      $("password").value = "";
      say(`login: ${err.message}`);
    }
  });

  $("logout-button").addEventListener("click", async () => {
    try { await api("/api/logout", {}); } catch (err) { /* the session is gone either way */ }
    location.reload();
  });

  start().catch((err) => say(`cannot reach the station: ${err.message}`));
})();
