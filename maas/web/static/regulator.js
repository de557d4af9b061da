document.addEventListener("alpine:init", () => {
  Alpine.data("regulatorConsole", () => ({
    coverage: null, metrics: null, maturity: null, verified: null, busy: false, error: "",
    month: new Date().toISOString().slice(0, 7),
    async init() {
      if (!MaaS.requireRole(["regulator", "admin"])) return;
      await Promise.all([this.loadCoverage(), this.loadMetrics(), this.loadMaturity()]);
    },
    pct(x) { return x === null || x === undefined ? "—" : (Math.round(x * 1000) / 10).toFixed(1) + "%"; },
    monthParam() { return this.month ? "&period=" + encodeURIComponent(this.month) : ""; },
    async loadCoverage() { try { this.coverage = await MaaS.api("GET", "/v1/audit/coverage"); } catch (e) { this.error = e.text; } },
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
