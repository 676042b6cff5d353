// A session's power and phase currents as an SVG chart: no library, no build step.
// Power on top with a clock-time axis; below it one lane per phase (L1, L2, L3), each on its own
// baseline, so equal currents never hide one another.
"use strict";
(function () {
  const NS = "http://www.w3.org/2000/svg";
  const LEFT = 44, RIGHT = 10, TOP = 8, POWER_H = 96, LANE_H = 26, GAP = 8, AXIS_H = 18;
  const H = TOP + POWER_H + GAP + 3 * LANE_H + AXIS_H;

  function el(name, attrs, text) {
    const node = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function niceMax(value, floor) {
    const v = Math.max(value, floor);
    const step = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * step >= v) return m * step;
    return 10 * step;
  }

  // Clock ticks every 1, 2, 5, 10, 15, 30 or 60 minutes (or hours), about one per 80 px.
  function ticks(t0, t1, width) {
    const want = Math.max(1, Math.floor(width / 80));
    const steps = [60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600];
    const step = steps.find((s) => (t1 - t0) / s <= want) || 21600;
    const out = [];
    const offset = new Date(t0 * 1000).getTimezoneOffset() * 60;
    for (let t = Math.ceil((t0 - offset) / step) * step + offset; t <= t1; t += step) out.push(t);
    return out;
  }

  function clock(t) {
    const d = new Date(t * 1000);
    return `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
  }

  // points: [[time_s, power_w, [L1, L2, L3]], ...]; starting: a session has begun, its points are to come.
  function draw(svg, points, starting) {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    const W = Math.max(260, Math.round(svg.clientWidth) || 600);
    if (!points || points.length < 2) {
      svg.setAttribute("viewBox", `0 0 ${W} 40`);
      svg.setAttribute("height", 40);
      svg.appendChild(el("text", { x: W / 2, y: 24, "text-anchor": "middle", class: "empty" },
        starting || (points && points.length) ? "collecting…" : "no session to show yet"));
      return;
    }
    svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    svg.setAttribute("height", H);
    const t0 = points[0][0], t1 = Math.max(points[points.length - 1][0], t0 + 60);
    let pMax = 0, iMax = 0;
    for (const [, p, cur] of points) {
      if (p != null) pMax = Math.max(pMax, p / 1000);
      for (const a of cur || []) if (a != null) iMax = Math.max(iMax, a);
    }
    pMax = niceMax(pMax, 1); iMax = niceMax(iMax, 6);
    const x = (t) => LEFT + (t - t0) / (t1 - t0) * (W - LEFT - RIGHT);
    const yP = (kw) => TOP + POWER_H - kw / pMax * POWER_H;
    const laneTop = (n) => TOP + POWER_H + GAP + n * LANE_H;
    const yI = (n) => (a) => laneTop(n) + LANE_H - 3 - a / iMax * (LANE_H - 6);

    for (const f of [0, 0.5, 1]) {
      const y = yP(pMax * f);
      svg.appendChild(el("line", { x1: LEFT, x2: W - RIGHT, y1: y, y2: y, class: "grid" }));
      svg.appendChild(el("text", { x: LEFT - 4, y: y + 3, "text-anchor": "end" }, `${+(pMax * f).toFixed(1)} kW`));
    }
    for (let n = 0; n < 3; n++) {
      const base = laneTop(n) + LANE_H - 3;
      svg.appendChild(el("line", { x1: LEFT, x2: W - RIGHT, y1: base, y2: base, class: "grid" }));
      svg.appendChild(el("text", { x: LEFT - 4, y: base - 6, "text-anchor": "end", class: `lane L${n + 1}` }, `L${n + 1}`));
    }
    const axisY = H - AXIS_H + 12;
    for (const t of ticks(t0, t1, W - LEFT - RIGHT)) {
      svg.appendChild(el("line", { x1: x(t), x2: x(t), y1: TOP, y2: H - AXIS_H, class: "grid tick" }));
      svg.appendChild(el("text", { x: x(t), y: axisY, "text-anchor": "middle" }, clock(t)));
    }
    const line = (cls, pick, y) => {
      const coords = [];
      for (const pt of points) {
        const v = pick(pt);
        if (v != null) coords.push(`${x(pt[0]).toFixed(1)},${y(v).toFixed(1)}`);
      }
      if (coords.length > 1) svg.appendChild(el("polyline", { points: coords.join(" "), class: cls }));
    };
    const area = [];
    for (const pt of points) if (pt[1] != null) area.push(`${x(pt[0]).toFixed(1)},${yP(pt[1] / 1000).toFixed(1)}`);
    if (area.length > 1) {
      const first = area[0].split(",")[0], last = area[area.length - 1].split(",")[0];
      svg.appendChild(el("polygon", { points: `${first},${yP(0)} ${area.join(" ")} ${last},${yP(0)}`, class: "power-area" }));
    }
    line("power", (pt) => (pt[1] == null ? null : pt[1] / 1000), yP);
    for (let n = 0; n < 3; n++) {
      line(`L${n + 1}`, (pt) => (pt[2] || [])[n], yI(n));
      const lastA = [...points].reverse().map((pt) => (pt[2] || [])[n]).find((a) => a != null);
      if (lastA != null) {
        svg.appendChild(el("text", { x: W - RIGHT, y: laneTop(n) + 10, "text-anchor": "end", class: `lane L${n + 1}` },
          `${lastA.toFixed(1)} A`));
      }
    }
  }

  window.cpChart = { draw };
})();
