document.addEventListener("alpine:init", () => {
  Alpine.data("operatorConsole", () => ({
    isAdmin: false, operatorId: null, runs: [], runId: "", statement: null, disputes: [], gates: [],
    recFile: null, report: null, dispute: {run_id: "", leg_id: "", line_kind: "regular", reason: ""},
    rtFeed: "", rtFile: null, rtResult: null,
    busy: false, error: "",
    async init() {
      const s = MaaS.requireRole(["operator", "admin"]);
      if (!s) return;
      this.isAdmin = s.role === "admin"; this.operatorId = s.operator_id;
      await Promise.all([this.loadRuns(), this.loadDisputes(), this.loadGates()]);
    },
    fen(amount) { return MaaS.money({amount, currency: "CNY"}); },
    async loadRuns() {
      if (!this.isAdmin) return;
      try { this.runs = await MaaS.api("GET", "/v1/settlements/runs"); } catch (e) { this.error = e.text; }
    },
    async loadDisputes() { try { this.disputes = await MaaS.api("GET", "/v1/disputes"); } catch (e) { this.error = e.text; } },
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
    async downloadCsv() {
      const st = this.statement;
      try {
        const r = await MaaS.api("GET", `/v1/settlements/runs/${encodeURIComponent(st.run_id)}/statements/${encodeURIComponent(st.operator_id)}?format=csv`, null, {raw: true});
        const url = URL.createObjectURL(await r.blob());
        const a = document.createElement("a");
        a.href = url; a.download = `statement-${st.run_id}-${st.operator_id}.csv`;
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
      this.error = ""; this.busy = true;
      try {
        await MaaS.api("POST", "/v1/disputes", {run_id: this.dispute.run_id.trim(), leg_id: this.dispute.leg_id.trim(),
                                                line_kind: this.dispute.line_kind, reason: this.dispute.reason.trim()});
        this.dispute.reason = "";
        await this.loadDisputes();
      } catch (e) { this.error = e.text; }
      finally { this.busy = false; }
    },
  }));
});
