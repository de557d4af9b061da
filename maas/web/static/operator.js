// Charts of the operator's validations and revenue (Chart.js), kept outside Alpine's reactive state
// (its proxies break Chart.js objects). The data are the API's integers: validations, revenue in minor units.
const opCharts = {};
function drawStats(stats, labels) {
  if (typeof Chart === "undefined") return;
  const money = (v) => MaaS.money({amount: Math.round(v), currency: stats.currency});
  const specs = [
    ["chart-validations", [["validations", MaaS.t("op.validations"), "#1d4ed8"], ["rejected", MaaS.t("op.rejected"), "#b42318"]], null],
    ["chart-revenue", [["revenue", MaaS.t("op.revenue"), "#15803d"]], money],
  ];
  for (const [id, series, fmt] of specs) {
    const el = document.getElementById(id);
    if (!el) continue;
    const data = {labels: labels.slice(), datasets: series.map(([key, label, colour]) => ({
      key, label, backgroundColor: colour, borderColor: colour, data: stats.rows.map((r) => r[key])}))};
    if (opCharts[id]) opCharts[id].destroy();
    const y = {beginAtZero: true, ticks: fmt ? {callback: fmt} : {precision: 0}};
    opCharts[id] = new Chart(el, {type: "bar", data, options: {animation: false, maintainAspectRatio: false, scales: {y},
      plugins: {tooltip: fmt ? {callbacks: {label: (c) => `${c.dataset.label}: ${fmt(c.parsed.y)}`}} : {}}}});
  }
}

function isoDay(d) { return d.toISOString().slice(0, 10); }
function addDays(iso, n) { const d = new Date(iso + "T00:00:00Z"); d.setUTCDate(d.getUTCDate() + n); return isoDay(d); }

document.addEventListener("alpine:init", () => {
  Alpine.data("operatorConsole", () => ({
    isAdmin: false, operatorId: null, runs: [], runId: "", statement: null, disputes: [], gates: [],
    recFile: null, report: null, dispute: {run_id: "", leg_id: "", line_kind: "regular", reason: "", claimed: ""},
    disputeFilter: "", raised: "", resolving: null, resolveAmount: "", resolveNote: "",
    stats: null, statsFrom: "", statsTo: "", statsGroup: "day", statsOp: null, operators: [],
    rtFeed: "", rtFile: null, rtResult: null,
    busy: false, error: "",
    async init() {
      const s = MaaS.requireRole(["operator", "admin"]);
      if (!s) return;
      this.isAdmin = s.role === "admin"; this.operatorId = s.operator_id; this.statsOp = s.operator_id || null;
      if (this.isAdmin) await this.loadOperators();
      await Promise.all([this.loadRuns(), this.loadDisputes(), this.loadGates(), this.loadStats()]);
    },
    fen(amount, currency) { return MaaS.money({amount, currency: currency || "CNY"}); },
    lastDay(endExclusive) { return addDays(endExclusive, -1); },
    async loadRuns() {
      try {
        this.runs = this.isAdmin ? await MaaS.api("GET", "/v1/settlements/runs")
          : await MaaS.api("GET", `/v1/operators/${encodeURIComponent(this.operatorId)}/settlements`);
      } catch (e) { this.error = e.text; }
    },
    async loadDisputes() {
      const q = this.disputeFilter ? "?status=" + encodeURIComponent(this.disputeFilter) : "";
      try { this.disputes = await MaaS.api("GET", "/v1/disputes" + q); } catch (e) { this.error = e.text; }
    },
    pickLine(l) {
      this.dispute.run_id = this.statement.run_id; this.dispute.leg_id = l.leg_id;
      this.dispute.line_kind = l.kind === "adjustment" ? "adjustment" : "regular";
      this.$nextTick(() => document.getElementById("d-reason").focus());
    },
    // an amount in yuan ("12.5", "-3" where signed), optional; minor units for the API (NaN when malformed)
    yuanToFen(value, signed) {
      const v = String(value || "").trim();
      if (!v) return null;
      const m = (signed ? /^(-?)(\d{1,9})(?:\.(\d{1,2}))?$/ : /^()(\d{1,9})(?:\.(\d{1,2}))?$/).exec(v);
      if (!m) return NaN;
      const fen = Number(m[2]) * 100 + Number(((m[3] || "") + "00").slice(0, 2));
      return m[1] ? -fen : fen;
    },
    claimFen() { return this.yuanToFen(this.dispute.claimed, false); },
    claimError() { return Number.isNaN(this.claimFen()) ? MaaS.t("op.claimed_invalid") : ""; },
    resolveError() { return Number.isNaN(this.yuanToFen(this.resolveAmount, true)) ? MaaS.t("op.claimed_invalid") : ""; },
    startResolve(d) {
      this.resolving = d; this.resolveNote = "";
      this.resolveAmount = d.claimed_amount !== null ? (d.claimed_amount / 100).toFixed(2) : "";
      this.$nextTick(() => document.getElementById("r-amount").focus());
    },
    async resolve(decision) {
      this.error = ""; this.busy = true;
      try {
        const body = {decision};
        if (decision === "accept") body.amount = this.yuanToFen(this.resolveAmount, true) || 0;
        if (this.resolveNote.trim()) body.note = this.resolveNote.trim();
        await MaaS.api("POST", `/v1/disputes/${encodeURIComponent(this.resolving.dispute_id)}/resolve`, body);
        this.resolving = null;
        await this.loadDisputes();
      } catch (e) { this.error = e.text; }
      finally { this.busy = false; }
    },
    label(row) { return this.statsGroup === "line" ? (row.route_name ? `${row.route_name} (${row.route_id})` : row.key) : row.key; },
    async loadOperators() {  // admins: whose figures to chart
      try {
        this.operators = await MaaS.api("GET", "/v1/admin/operators");
        this.statsOp = this.operators.length ? this.operators[0].operator_id : null;
      } catch (e) { this.error = e.text; }
    },
    async loadStats() {
      if (!this.statsOp) return;
      const q = new URLSearchParams({group: this.statsGroup});
      if (this.statsFrom) q.set("period_start", this.statsFrom);
      if (this.statsTo) q.set("period_end", addDays(this.statsTo, 1));
      try {
        const stats = await MaaS.api("GET", `/v1/operators/${encodeURIComponent(this.statsOp)}/stats?` + q);
        this.stats = stats;
        this.statsFrom = stats.period_start; this.statsTo = addDays(stats.period_end, -1);
        const labels = stats.rows.map((r) => this.label(r));
        this.$nextTick(() => drawStats(stats, labels));
      } catch (e) { this.error = e.text; }
    },
    async loadGates() {
      if (!this.operatorId) return;
      try {
        const r = await MaaS.api("GET", `/v1/operators/${encodeURIComponent(this.operatorId)}/gates`);
        this.gates = Array.isArray(r) ? r : (r.gates || []);
      } catch (e) { this.error = e.text; }
    },
    async openRun(runId) {
      this.error = ""; runId = String(runId || "").trim();
      if (!runId) return;
      this.runId = runId; this.dispute.run_id = runId;
      let op = this.operatorId;
      try {
        if (!op) {  // admin: the run's first operator (each has its own statement)
          const run = await MaaS.api("GET", `/v1/settlements/runs/${encodeURIComponent(runId)}`);
          op = run.operators.length ? run.operators[0].operator_id : null;
          if (!op) { this.statement = null; return; }
        }
        this.statement = await MaaS.api("GET", `/v1/settlements/runs/${encodeURIComponent(runId)}/statements/${encodeURIComponent(op)}`);
      } catch (e) { this.error = e.text; this.statement = null; }
    },
    async downloadCsv(runId, op) {
      this.error = "";
      try {
        const r = await MaaS.api("GET", `/v1/settlements/runs/${encodeURIComponent(runId)}/statements/${encodeURIComponent(op)}?format=csv`, null, {raw: true});
        const url = URL.createObjectURL(await r.blob());
        const a = document.createElement("a");
        a.href = url; a.download = `statement-${runId}-${op}.csv`;
        document.body.appendChild(a); a.click(); a.remove();
        setTimeout(() => URL.revokeObjectURL(url), 1000);
      } catch (e) { this.error = e.text; }
    },
    async reconcile() {
      this.error = ""; this.busy = true; this.report = null;
      try {
        const text = await this.recFile.text();
        this.report = await MaaS.api("POST", "/v1/reconciliations", text, {headers: {"Content-Type": "text/csv"}});
      } catch (e) { this.error = e.text; }
      finally { this.busy = false; }
    },
    async uploadRealtime() {
      this.error = ""; this.busy = true; this.rtResult = null;
      try {
        this.rtResult = await MaaS.api("POST", `/v1/realtime/${encodeURIComponent(this.rtFeed.trim())}`, this.rtFile,
                                       {headers: {"Content-Type": "application/x-protobuf"}});
      } catch (e) { this.error = e.text; }
      finally { this.busy = false; }
    },
    async raise() {
      this.error = ""; this.busy = true; this.raised = "";
      try {
        const body = {run_id: this.dispute.run_id.trim(), leg_id: this.dispute.leg_id.trim(),
                      line_kind: this.dispute.line_kind, reason: this.dispute.reason.trim()};
        if (this.claimFen() !== null) body.claimed_amount = this.claimFen();
        const d = await MaaS.api("POST", "/v1/disputes", body);
        this.dispute.reason = ""; this.dispute.claimed = "";
        this.raised = MaaS.t("op.dispute_raised", {leg: d.leg_id});
        await this.loadDisputes();
      } catch (e) { this.error = e.text; }
      finally { this.busy = false; }
    },
  }));
});
