// The house's energy flow, the charging mode buttons and the words for a connector's limit.
"use strict";
(function () {
  const { $, h, fmt, act, say, state } = window.cp;

  const MODES = {
    off: ["Off", "No charging."],
    pv: ["PV", "Charges from solar surplus only; pauses when there is not enough."],
    minpv: ["Min+PV", "Charges at least 6 A and adds the solar surplus."],
    fast: ["Fast", "Charges at full power, solar or not."],
  };

  // One tile of the flow: what, how much, and a word on the direction.
  function tile(id, label, watts, note, cls) {
    return h("div", { class: `tile ${cls || ""}`, id: `flow-${id}` },
      h("span", { class: "tile-label" }, label),
      h("strong", { class: "tile-value", id: `flow-${id}-w` }, fmt.kw(watts == null ? null : Math.abs(watts))),
      h("span", { class: "tile-note" }, note || ""));
  }

  // What share of the car's power comes from the sun now: all of it unless the house imports.
  function solarShareNow(f) {
    if (!f.station_w) return null;
    return Math.min(1, Math.max(0, 1 - Math.max(f.grid_w, 0) / f.station_w));
  }

  // energy.power: grid_w (+ import, - export), station_w, surplus_w, house_net_w, pv_w (null: no PV meter).
  function renderFlow(energy) {
    const section = $("energy");
    section.hidden = !energy;
    if (!energy) return;
    const f = energy.power;
    const tiles = [];
    if (f && f.grid_w != null) {
      if (f.pv_w != null) {
        tiles.push(tile("pv", "Solar", f.pv_w, "producing", "pv"));
        tiles.push(tile("house", "House", f.house_net_w + f.pv_w, "using", "house"));
      } else {
        // Without a PV meter the house and the PV are seen together: what the sun leaves over, or what
        // the house takes beyond it.
        tiles.push(f.house_net_w < 0 ? tile("house", "Solar left over", f.house_net_w, "after the house", "pv")
          : tile("house", "House", f.house_net_w, "beyond what the sun gives", "house"));
      }
      tiles.push(tile("grid", "Grid", f.grid_w, f.grid_w < 0 ? "exporting" : f.grid_w > 0 ? "importing" : "balanced",
        f.grid_w < 0 ? "export" : "import"));
      const share = solarShareNow(f);
      const cars = (energy.connectors || []).length > 1 ? "Cars" : "Car";
      tiles.push(tile("car", cars, f.station_w, share == null ? "not charging" : `${fmt.pct(share)} from the sun now`, "car"));
      tiles.push(tile("surplus", "Surplus", f.surplus_w, "for the car", "surplus"));
    } else {
      const meter = energy.grid_meter;
      tiles.push(h("p", { class: "muted" }, `Grid meter: ${meter.state}${meter.last_error ? ` (${meter.last_error})` : ""}`));
    }
    $("flow").replaceChildren(...tiles);
    renderModes(energy.mode);
  }

  function renderModes(mode) {
    const box = $("modes");
    const known = state.modes.length ? state.modes : Object.keys(MODES).filter((m) => m !== "off");
    const canAct = state.loggedIn && state.actions.includes("mode");
    if (box.dataset.shape !== `${known}|${canAct}`) {
      box.dataset.shape = `${known}|${canAct}`;
      box.replaceChildren(...known.map((m) => h("button", {
        type: "button", id: `mode-${m}`, class: "mode", "data-mode": m, disabled: !canAct,
        title: canAct ? MODES[m][1] : "log in to change the mode",
        onclick: (event) => act(event.currentTarget, "mode", { mode: m }, () => `Charging mode: ${MODES[m][0]}`),
      }, MODES[m][0])));
    }
    for (const button of box.children) {
      const on = button.dataset.mode === mode;
      button.setAttribute("aria-pressed", on ? "true" : "false");
      button.classList.toggle("on", on);
    }
    $("mode-help").textContent = MODES[mode] ? MODES[mode][1] : mode;
  }

  // Which claim binds a connector's current, and why, in words (the station's own words when it has them).
  function limitWords(c, energy) {
    if (c.limit.words) return c.limit.words;
    const amps = c.limit.amps, binding = c.limit.binding;
    if (amps == null) return "no limit";
    const paused = amps < 6;
    const a = fmt.amps(amps);
    const solar = energy && (energy.connectors || []).find((x) => x.id === c.id);
    switch (binding) {
      case "solar":
        return paused ? (solar && solar.solar.startsWith("paused") ? `solar: ${solar.solar}` : "solar: paused")
          : `solar: ${a} from ${fmt.kw(energy ? energy.surplus_w : null)} surplus`;
      case "load_manager":
        return paused ? `house fuse: paused, the house needs the ${energy ? energy.main_fuse_a : "?"} A fuse`
          : `house fuse: ${a} left under the ${energy ? energy.main_fuse_a : "?"} A main fuse`;
      case "operator": return paused ? `your limit: ${a}, so the car is paused` : `your limit: ${a}`;
      case "cable": return `the cable: rated ${a}`;
      case "station": return `the station's rating: ${a}`;
      case "smart_charging": {
        const at = c.limit.smart_charging_changes_at;
        return `the operator's schedule: ${a}${at ? ` until ${fmt.clock(at)}` : ""}`;
      }
      default: return `${String(binding || "").replace(/_/g, " ")}: ${a}`;
    }
  }

  // The next HH:MM in this browser's local time, as epoch seconds.
  function nextTime(value) {
    const [hh, mm] = value.split(":").map(Number);
    const now = new Date(), when = new Date(now);
    when.setHours(hh, mm, 0, 0);
    if (when <= now) when.setDate(when.getDate() + 1);
    return when.getTime() / 1000;
  }

  // A departure plan: "N kWh by HH:MM", solar first and the grid as needed; both fields must be filled.
  function planControl(c, plan) {
    const form = h("form", { class: "plan", id: `c${c.id}-plan-form`, novalidate: true });
    const kwh = h("input", { id: `c${c.id}-plan-kwh`, type: "number", min: "1", max: "200", step: "1", inputmode: "numeric",
      placeholder: "kWh", "aria-label": `Energy to charge by the departure on connector ${c.id}, in kWh` });
    const by = h("input", { id: `c${c.id}-plan-by`, type: "time", "aria-label": `Departure time on connector ${c.id}` });
    const set = h("button", { type: "submit", id: `c${c.id}-plan-set` }, "Plan");
    form.append(h("span", { class: "form-label" }, "Plan"), kwh, h("span", { class: "muted" }, "by"), by, set);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const energy = Number(kwh.value.trim()), at = by.value;
      if (!kwh.value.trim() || !Number.isFinite(energy) || energy <= 0 || !at) {
        say("A plan needs the energy (kWh) and the departure time.");
        (kwh.value.trim() ? by : kwh).focus();
        return;
      }
      act(set, "plan", { connector: c.id, energy_kwh: energy, deadline: nextTime(at) }, () => `Plan: ${energy} kWh by ${at}`);
    });
    if (plan && (plan.state === "solar" || plan.state === "grid")) {
      form.append(h("button", { type: "button", id: `c${c.id}-plan-clear`,
        onclick: (e) => act(e.currentTarget, "plan", { connector: c.id, clear: true }, () => "Plan removed") }, "Clear plan"));
    }
    return form;
  }

  window.cpPanels = { renderFlow, limitWords, planControl, MODES };
})();
