let trendChart = null;  // outside Alpine's reactive state (its proxies break Chart.js objects)
function drawTrend(trend) {
  const el = document.getElementById("trend-chart");
  if (!el || typeof Chart === "undefined") return;
  const colours = ["#1d4ed8", "#15803d", "#b45309", "#7c3aed"];
  const data = {labels: trend.months.slice(), datasets: trend.rows.map((row, i) => ({
    label: row.key, borderColor: colours[i % colours.length], backgroundColor: colours[i % colours.length],
    data: row.cells.map((c) => (c && !c.suppressed && c.value !== null ? c.value : null)), spanGaps: false}))};
  if (trendChart) trendChart.destroy();
  trendChart = new Chart(el, {type: "line", data, options: {animation: false, maintainAspectRatio: false,
    scales: {y: {beginAtZero: true}}}});
}

// The stations of the coverage report on a Leaflet map, coloured by e-ticket coverage. With no tile URL
// configured (offline, the demo) it draws on a plain background.
const COVERED = "#15803d", UNCOVERED = "#b42318";
let coverageMap = null, coverageLayer = null;
function drawStations(stations) {
  const el = document.getElementById("coverage-map");
  if (!el || typeof L === "undefined") return;
  if (!coverageMap) {
    coverageMap = L.map(el, {attributionControl: !!MaaS.data.tile_url, zoomAnimation: false, fadeAnimation: false,
                             markerZoomAnimation: false});
    if (MaaS.data.tile_url) {
      L.tileLayer(MaaS.data.tile_url, {maxZoom: 19, attribution: MaaS.data.tile_attribution || ""}).addTo(coverageMap);
    }
  }
  const placed = stations.filter((s) => Number.isFinite(s.lat) && Number.isFinite(s.lon));
  if (coverageLayer) coverageLayer.remove();
  coverageLayer = L.featureGroup();
  for (const s of placed) {
    const colour = s.covered ? COVERED : UNCOVERED;
    L.circleMarker([s.lat, s.lon], {radius: 6, color: "#111827", weight: 1, fillColor: colour, fillOpacity: 0.9,
                                    className: "station " + (s.covered ? "st-covered" : "st-uncovered")})
      .bindTooltip(`${s.name} · ${s.covered ? MaaS.t("reg.map_covered") : MaaS.t("reg.map_uncovered")}`)
      .addTo(coverageLayer);
  }
  coverageLayer.addTo(coverageMap);
  coverageMap.invalidateSize();
  if (placed.length) coverageMap.fitBounds(coverageLayer.getBounds(), {padding: [20, 20], animate: false});
  else coverageMap.setView([0, 0], 1);
  // each marker carries its station id (tests and assistive tools find a station's marker)
  coverageLayer.getLayers().forEach((m, i) => { const p = m.getElement(); if (p) p.setAttribute("data-station", placed[i].station_id); });
}

document.addEventListener("alpine:init", () => {
  Alpine.data("regulatorConsole", () => ({
    coverage: null, stations: [], metrics: null, maturity: null, verified: null, busy: false, error: "",
    trend: {months: [], rows: []},
    month: new Date().toISOString().slice(0, 7),
    async init() {
      if (!MaaS.requireRole(["regulator", "admin"])) return;
      await Promise.all([this.loadCoverage(), this.loadStations(), this.loadMetrics(), this.loadMaturity(), this.loadTrend()]);
    },
    pct(x) { return x === null || x === undefined ? "—" : (Math.round(x * 1000) / 10).toFixed(1) + "%"; },
    monthParam() { return this.month ? "&period=" + encodeURIComponent(this.month) : ""; },
    async loadCoverage() { try { this.coverage = await MaaS.api("GET", "/v1/audit/coverage"); } catch (e) { this.error = e.text; } },
    async loadStations() {
      try {
        this.stations = (await MaaS.api("GET", "/v1/audit/coverage/stations")).stations;
        const rows = this.stations.map((x) => ({...x}));
        this.$nextTick(() => drawStations(rows));
      } catch (e) { this.error = e.text; }
    },
    stationCount(covered) { return this.stations.filter((s) => s.covered === covered).length; },
    async loadMaturity() { try { this.maturity = await MaaS.api("GET", "/v1/audit/maturity"); } catch (e) { this.error = e.text; } },
    async loadMetrics() {
      try { this.metrics = await MaaS.api("GET", "/v1/audit/metrics?" + this.monthParam().slice(1)); }
      catch (e) { this.error = e.text; }
    },
    // every k-anonymous cell of the metrics, flattened to "group.name" rows
    metricRows() {
      const rows = [];
      if (!this.metrics) return rows;
      const isCell = (v) => v && typeof v === "object" && "suppressed" in v && "value" in v;
      for (const group of ["users", "orders", "journeys", "refunds", "validations", "face"]) {
        for (const [name, v] of Object.entries(this.metrics[group] || {})) {
          if (isCell(v)) rows.push({key: `${group}.${name}`, cell: v});
          else if (Array.isArray(v)) for (const item of v) {
            const label = item.status || item.mode || item.reason || item.currency || "";
            for (const [k, c] of Object.entries(item)) if (isCell(c)) rows.push({key: `${group}.${name}.${label}.${k}`, cell: c});
          }
        }
      }
      for (const r of this.metrics.revenue || []) {
        for (const k of ["legs", "gross", "legs_refunded"]) rows.push({key: `revenue.${r.operator_id}.${k}`, cell: r[k]});
      }
      return rows;
    },
    // the last six months of a few metrics: a table (suppressed cells marked) and a Chart.js line chart
    // whose suppressed points are gaps
    async loadTrend() {
      const months = [];
      const d = new Date();
      for (let i = 5; i >= 0; i--) {
        const x = new Date(d.getFullYear(), d.getMonth() - i, 1);
        months.push(`${x.getFullYear()}-${String(x.getMonth() + 1).padStart(2, "0")}`);
      }
      const KEYS = [["journeys", "total"], ["orders", "total"], ["validations", "total"], ["users", "total"]];
      try {
        const all = await Promise.all(months.map((m) => MaaS.api("GET", "/v1/audit/metrics?period=" + m)));
        this.trend = {months, rows: KEYS.map(([g, k]) => ({key: `${g}.${k}`,
          cells: all.map((r) => (r[g] && r[g][k] && typeof r[g][k] === "object" && "suppressed" in r[g][k]) ? r[g][k] : null)}))};
        this.$nextTick(() => drawTrend(this.trend));
      } catch (e) { this.error = e.text; }
    },
    async verify() {
      this.busy = true; this.error = "";
      try { this.verified = await MaaS.api("GET", "/v1/audit/log/verify"); } catch (e) { this.error = e.text; }
      finally { this.busy = false; }
    },
    async download(path, name) {
      try {
        const r = await MaaS.api("GET", path, null, {raw: true});
        const url = URL.createObjectURL(await r.blob());
        const a = document.createElement("a");
        a.href = url; a.download = name; document.body.appendChild(a); a.click(); a.remove();
        setTimeout(() => URL.revokeObjectURL(url), 1000);
      } catch (e) { this.error = e.text; }
    },
  }));
});
