// The dashboard: live state by server-sent events (/api/live), actions through /api/action/*.
"use strict";
(function () {
  const { $, h, say, fmt, api, act, state } = window.cp;
  const { renderFlow, limitWords, planControl } = window.cpPanels;

  const ACTIVITY = { idle: "ready", authorized: "waiting for the car", starting: "starting", charging: "charging",
    suspended_ev: "the car takes no power", suspended_evse: "paused by the station", finishing: "finished" };

  // ------------------------------------------------------------------ a connector
  // A cost as the station gives it: decimal text rounded as a bill shows it, taxes included.
  function money(cost) {
    try {
      return new Intl.NumberFormat(undefined, { style: "currency", currency: cost.currency }).format(Number(cost.incl_tax));
    } catch (err) {
      return `${cost.incl_tax} ${cost.currency}`;
    }
  }

  function sessionWords(c) {
    const session = c.session, tx = session && session.transaction;
    if (!session) return c.iec_state && c.iec_state !== "A" ? "car plugged in, no session" : "no car";
    const who = session.card_name || state.cardNames[session.id_tag] || session.id_tag;
    return tx ? `${who} · since ${fmt.when(tx.started_at)}` : `${who} · waiting for the car`;
  }

  function rows(c) {
    const meter = c.meter || {}, tx = c.session && c.session.transaction;
    const energy = state.status && state.status.energy;
    const mine = energy && (energy.connectors || []).find((x) => x.id === c.id);
    const solar = mine && energy.mode !== "fast" ? mine : null;
    let charged = tx ? fmt.kwh(tx.energy_wh) : "–";
    if (tx && tx.solar_share != null) charged += ` · ${fmt.pct(tx.solar_share)} solar`;
    if (tx && tx.cost) charged += ` · ${money(tx.cost)}`;
    return [
      ["Now", ACTIVITY[c.activity] || c.activity, "activity"],
      ["Session", sessionWords(c), "session"],
      ["Charged", charged, "session-energy"],
      ["Power", fmt.kw(meter.power_w), "power"],
      solar ? ["Solar", solar.solar, "solar"] : null,
      mine && mine.plan !== undefined ? ["Plan", mine.plan ? mine.plan.words : "none", "plan"] : null,
      ["Limit", limitWords(c, energy), "limit"],
    ].filter(Boolean);
  }

  function details(c) {
    const meter = c.meter || {};
    const currents = (meter.currents_a || []).map((a, i) => `L${i + 1} ${a == null ? "–" : a.toFixed(1)}`);
    return [
      ["IEC 61851 state", c.iec_state || "–", "iec"],
      ["Offered", fmt.amps(c.offered_a), "offered"],
      ["Drawn", currents.length ? `${currents.join("  ")} A` : "–", "currents"],
      ["Meter", fmt.kwh(meter.energy_wh), "meter-energy"],
      ["Contactor", c.contactor.closed ? "closed" : "open", "contactor"],
    ];
  }

  // The connector's departure plan (null: none; undefined: the station has no plans, no grid meter).
  function planOf(c) {
    const energy = state.status && state.status.energy;
    const mine = energy && (energy.connectors || []).find((x) => x.id === c.id);
    return mine ? mine.plan : undefined;
  }

  // What decides a card's shape (its buttons, its fault line, its rows); the values in it change in place.
  function shape(c) {
    const limited = !!(c.limit.claims && c.limit.claims.operator != null);
    const plan = planOf(c), planned = !!(plan && (plan.state === "solar" || plan.state === "grid"));
    return JSON.stringify([!!c.session, c.operative, c.scheduled_operative, state.loggedIn, c.faults, c.error, limited, planned,
      rows(c).map((r) => r[2]), Object.keys(state.cardNames).length]);
  }

  function dl(list, id) {
    const node = h("dl");
    for (const [label, value, key] of list) node.append(h("dt", {}, label), h("dd", { id: `c${id}-${key}` }, value));
    return node;
  }

  function connectorCard(c) {
    const id = c.id;
    const card = h("article", { class: "card connector", id: `connector-${id}`, "aria-labelledby": `c${id}-title` },
      h("h2", { id: `c${id}-title` }, `Connector ${id}`, h("span", { class: "status", id: `c${id}-status` }, c.ocpp_status)),
      dl(rows(c), id));
    const faults = (c.faults || []).concat(c.error ? [c.error] : []);
    if (faults.length) card.append(h("p", { class: "faults", id: `c${id}-faults` }, `Fault: ${faults.join(", ")}`));
    if (state.loggedIn) card.append(actions(c));
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("class", "chart"); svg.id = `c${id}-chart`;
    svg.setAttribute("role", "img"); svg.setAttribute("aria-labelledby", `c${id}-chart-title`);
    card.append(h("h3", { class: "chart-title", id: `c${id}-chart-title` }, "Session"), svg,
      h("div", { class: "legend", "aria-hidden": "true" }, h("span", { class: "power" }, "power"),
        h("span", { class: "L1" }, "L1"), h("span", { class: "L2" }, "L2"), h("span", { class: "L3" }, "L3")));
    card.append(h("details", {}, h("summary", {}, "Technical details"), dl(details(c), id)));
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
      for (const [, value, key] of rows(c).concat(details(c))) {
        const dd = $(`c${c.id}-${key}`);
        if (dd && dd.textContent !== value) dd.textContent = value;
      }
    }
    const badge = $(`c${c.id}-status`);
    badge.textContent = c.ocpp_status;
    badge.className = `status ${String(c.ocpp_status).split(" ")[0].toLowerCase()} ${c.activity}`;
  }

  // The chart shows the running session, or the last one labelled as such.
  function drawChart(c) {
    const chart = state.charts[c.id] || {};
    const tx = c.session && c.session.transaction;
    const running = tx && chart.local_id === tx.local_id;
    const points = chart.points || [];
    const title = $(`c${c.id}-chart-title`);
    const words = tx ? "This session" : points.length
      ? `Last session, ended ${fmt.when(points[points.length - 1][0])}` : "Session";
    if (title.textContent !== words) title.textContent = words;
    window.cpChart.draw($(`c${c.id}-chart`), running || !tx ? points : [], !!tx);
  }

  function actions(c) {
    const box = h("div", { class: "actions" });
    const done = (what) => () => what;
    if (c.session) {
      box.append(h("button", { type: "button", class: "danger", id: `c${c.id}-stop`,
        onclick: (e) => act(e.currentTarget, "stop", { connector: c.id }, done("Stopped")) }, "Stop"));
    } else {
      const tags = Object.entries(state.cardNames);
      const pick = h("select", { id: `c${c.id}-tag`, "aria-label": "Card for this session" },
        h("option", { value: "" }, state.standalone ? "without a card" : "no card"),
        ...tags.map(([tag, name]) => h("option", { value: tag }, name)));
      box.append(h("button", { type: "button", class: "primary", id: `c${c.id}-start`,
        onclick: (e) => act(e.currentTarget, "start", pick.value ? { connector: c.id, id_tag: pick.value } : { connector: c.id },
          done("Started: plug in the car if it is not")) }, "Start"), pick);
    }
    const operative = c.scheduled_operative == null ? c.operative : c.scheduled_operative;
    box.append(h("button", { type: "button", id: `c${c.id}-availability`,
      onclick: (e) => act(e.currentTarget, "availability", { connector: c.id, operative: !operative },
        done(operative ? "Connector made unavailable" : "Connector available")) },
    operative ? "Make unavailable" : "Make available"));
    box.append(limitControl(c));
    const mine = planOf(c);
    if (mine !== undefined && state.actions.includes("plan")) box.append(planControl(c, mine));
    return box;
  }

  // The operator's limit: an empty field sends nothing (it is not 0 A), "No limit" removes it.
  function limitControl(c) {
    const form = h("form", { class: "limit", id: `c${c.id}-limit-form`, novalidate: true });
    const amps = h("input", { id: `c${c.id}-limit-amps`, type: "number", min: "0", max: "80", step: "1", inputmode: "numeric",
      placeholder: "A", class: "amps", "aria-label": `Current limit for connector ${c.id} in amperes` });
    const set = h("button", { type: "submit", id: `c${c.id}-limit-set` }, "Set limit");
    form.append(h("span", { class: "form-label" }, "Limit"), amps, set);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const text = amps.value.trim();
      if (text === "" || !Number.isFinite(Number(text))) {
        say("Type a current in amperes first (0 pauses the car; “No limit” removes the limit).");
        amps.focus();
        return;
      }
      act(set, "limit", { connector: c.id, amps: Number(text) }, () => `Limit: ${Number(text)} A`);
    });
    if (c.limit.claims && c.limit.claims.operator != null) {
      form.append(h("button", { type: "button", id: `c${c.id}-limit-clear`,
        onclick: (e) => act(e.currentTarget, "limit", { connector: c.id, amps: null }, () => "Limit removed") }, "No limit"));
    }
    return form;
  }

  // ------------------------------------------------------------------ the station
  function renderStatus(status) {
    state.status = status;
    $("identity").textContent = status.identity;
    if (document.title !== `${status.identity} · charger`) document.title = `${status.identity} · charger`;
    const worst = status.worst_connector || {};
    $("station-status").textContent = worst.severity
      ? worst.ocpp_status + (status.connectors.length !== 1 ? ` (connector ${worst.id})` : "")
      : status.station_status;
    const link = status.connection;
    const pill = $("link");
    pill.hidden = false;
    pill.textContent = link.standalone ? "home station (no CSMS)"
      : link.connected ? `CSMS connected (${link.ocpp_version || "?"})` : "CSMS offline";
    pill.className = `pill ${link.standalone ? "" : link.connected ? "ok" : "bad"}`;
    pill.title = link.last_error || link.csms_url || "";
    const q = status.queue;
    $("queue").hidden = link.standalone && !q.length;
    $("queue").textContent = `queue ${q.length}${q.oldest_age_s ? ` (oldest ${fmt.dur(q.oldest_age_s)})` : ""}`;
    $("queue").className = `pill ${q.length ? "warn" : ""}`;
    renderSupervisor(status.supervisor);
    renderDisplay(status.display);
    renderFlow(status.energy);
    for (const c of status.connectors) {
      updateCard(c);
      drawChart(c);
    }
  }

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
    pill.textContent = orphan ? `charging without the daemon: ${Math.round(s.orphan_left_s)} s left` : "safety ok";
    pill.className = `pill ${orphan || !s.loops_alive ? "warn" : "ok"}`;
    pill.title = `safety supervisor pid ${s.pid}, up ${fmt.dur(s.up_s || 0)}, step ≤ ${s.step_p99_ms} ms (longest ` +
      `${s.step_max_ms} ms), scheduling ${s.sched}, memory ${s.memory_locked ? "locked" : "not locked"}, ` +
      `${s.heartbeat ? "hardware heartbeat" : "no hardware heartbeat"}`;
  }

  function renderDisplay(d) {
    const messages = (d && d.messages) || [];
    $("display-section").hidden = !messages.length;
    $("display-state").textContent = d ? `station ${d.state}` : "";
    $("display").tBodies[0].replaceChildren(...messages.map((m) => h("tr", { class: m.shown ? "shown" : "" },
      h("td", {}, String(m.id)), h("td", {}, m.text), h("td", {}, m.priority.replace(/_/g, " ")),
      h("td", {}, m.state || "any"), h("td", {}, m.start ? fmt.when(m.start) : "–"),
      h("td", {}, m.end ? fmt.when(m.end) : "–"), h("td", {}, m.shown ? "yes" : "no"))));
  }

  const REASONS = { local: "stopped here", ev_disconnected: "car unplugged", remote: "stopped remotely",
    power_loss: "power cut", reboot: "restart", deauthorized: "card invalid", stopped_by_ev: "by the car" };

  function sessionRow(s, running) {
    const who = s.card_name || state.cardNames[s.id_tag] || s.id_tag || "–";
    const energy = h("td", {}, fmt.kwh(s.energy_wh));
    // The solar share and the cost, where the station keeps them for the session.
    if (s.solar_share != null) energy.append(h("br"), h("small", { class: "solar" }, `${fmt.pct(s.solar_share)} solar`));
    if (s.cost) energy.append(h("br"), h("small", {}, money(s.cost)));
    return h("tr", { class: running ? "running" : "" },
      h("td", {}, fmt.when(s.started_at), h("br"), h("small", {}, fmt.dur(s.duration_s))),
      h("td", { class: "who" }, who, h("br"), h("small", {}, `connector ${s.connector}`)),
      energy,
      h("td", {}, running ? "charging" : (REASONS[s.reason] || String(s.reason || "–").replace(/_/g, " "))));
  }

  function renderSessions(sessions) {
    const all = sessions.running.map((s) => sessionRow(s, true)).concat(sessions.finished.map((s) => sessionRow(s, false)));
    $("sessions").tBodies[0].replaceChildren(...all);
    $("sessions").hidden = !all.length;
    $("sessions-empty").hidden = !!all.length;
  }

  function renderEvents(events) {
    $("events").replaceChildren(...events.slice().reverse().map((e) =>
      h("li", { class: e.level }, h("time", {}, fmt.when(e.time)), " ", e.text)));
  }

  // ------------------------------------------------------------------ live feed
  function onFull(data) {
    for (const [id, chart] of Object.entries(data.charts)) state.charts[id] = chart;
    $("main").hidden = false;
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
    const hint = $("hint");
    hint.hidden = state.loggedIn;
    hint.textContent = state.protected
      ? "Log in to see the station and to start, stop or change how it charges."
      : "View only: no dashboard password is set. To control the station from this page, set one on the " +
        "station with “chargepoint web passwd”.";
  }

  async function start() {
    const session = await api("/api/session");
    state.protected = session.protected; state.loggedIn = session.logged_in; state.csrf = session.csrf;
    state.actions = session.actions; state.modes = session.modes; state.standalone = session.standalone;
    $("identity").textContent = session.identity;
    showAccount();
    if (state.protected && !state.loggedIn) {
      $("live").textContent = "logged out";
      return;
    }
    await window.cpCards.load();
    connect();
  }

  // A card list that changed renames sessions and the start choices: rebuild the connector cards.
  document.addEventListener("cp-cards", () => {
    for (const id of Object.keys(state.cards)) state.cards[id].shape = null;
  });

  $("login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const result = await api("/api/login", { password: $("password").value });
      state.loggedIn = true; state.csrf = result.csrf; state.actions = result.actions;
      for (const id of Object.keys(state.cards)) state.cards[id].shape = null;
      $("password").value = "";
      say("Logged in", true);
      showAccount();
      await window.cpCards.load();
      connect();
    } catch (err) {
      $("password").value = "";
      say(`Login: ${err.message}`);
    }
  });

  $("logout-button").addEventListener("click", async () => {
    try { await api("/api/logout", {}); } catch (err) { /* the session is gone either way */ }
    location.reload();
  });

  start().catch((err) => say(`Cannot reach the station: ${err.message}`));
})();
