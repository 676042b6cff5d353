// The running session's power and phase currents as an SVG chart: no library, no build step.
"use strict";
(function () {
  const NS = "http://www.w3.org/2000/svg";
  const H = 160, LEFT = 40, RIGHT = 34, TOP = 8, BOTTOM = 18;

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

  // points: [[time_s, power_w, [L1, L2, L3]], ...]; power on the left axis (kW), current on the right (A).
  function draw(svg, points) {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    // The drawing's width follows the element's, so the text keeps its shape at any size.
    const W = Math.max(200, Math.round(svg.clientWidth / Math.max(svg.clientHeight, 1) * H) || 600);
    svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    if (!points || points.length < 2) {
      svg.appendChild(el("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, "no session running"));
      return;
    }
    const t0 = points[0][0], t1 = points[points.length - 1][0];
    const span = Math.max(t1 - t0, 1);
    let pMax = 0, iMax = 0;
    for (const [, p, cur] of points) {
      if (p != null) pMax = Math.max(pMax, p / 1000);
      for (const a of cur || []) if (a != null) iMax = Math.max(iMax, a);
    }
    pMax = niceMax(pMax, 1); iMax = niceMax(iMax, 6);
    const x = (t) => LEFT + (t - t0) / span * (W - LEFT - RIGHT);
    const yP = (kw) => H - BOTTOM - kw / pMax * (H - TOP - BOTTOM);
    const yI = (a) => H - BOTTOM - a / iMax * (H - TOP - BOTTOM);
    for (const f of [0, 0.5, 1]) {
      const y = H - BOTTOM - f * (H - TOP - BOTTOM);
      svg.appendChild(el("line", { x1: LEFT, x2: W - RIGHT, y1: y, y2: y, class: "grid" }));
      svg.appendChild(el("text", { x: LEFT - 4, y: y + 3, "text-anchor": "end" }, `${+(pMax * f).toFixed(1)} kW`));
      svg.appendChild(el("text", { x: W - RIGHT + 4, y: y + 3 }, `${+(iMax * f).toFixed(1)} A`));
    }
    const minutes = span / 60;
    svg.appendChild(el("text", { x: W - RIGHT, y: H - 4, "text-anchor": "end" },
      minutes >= 2 ? `${minutes.toFixed(0)} min` : `${span.toFixed(0)} s`));
    const line = (cls, pick, y) => {
      const coords = [];
      for (const pt of points) {
        const v = pick(pt);
        if (v != null) coords.push(`${x(pt[0]).toFixed(1)},${y(v).toFixed(1)}`);
      }
      if (coords.length > 1) svg.appendChild(el("polyline", { points: coords.join(" "), class: cls }));
    };
    for (let phase = 0; phase < 3; phase++) {
      line(`L${phase + 1}`, (pt) => (pt[2] || [])[phase], yI);
    }
    line("power", (pt) => (pt[1] == null ? null : pt[1] / 1000), yP);
  }

  window.cpChart = { draw };
})();
