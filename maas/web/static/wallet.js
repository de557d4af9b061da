document.addEventListener("alpine:init", () => {
  Alpine.data("wallet", () => ({
    tickets: [], loaded: false, error: "", notice: "", busy: false,
    qrFor: null, qrUrl: "", qrLeft: 0, qrExpires: 0, qrFetched: 0, qrRotation: 0, timer: null,
    refunding: null, refundLegs: [], quote: null,
    faceFor: null, faceConsent: false, facePhoto: null, faceStatus: "",
    async init() {
      if (!MaaS.requireRole(["passenger"])) return;
      // back from the background (timers paused): a code shown may be stale, fetch a fresh one at once
      document.addEventListener("visibilitychange", () => {
        if (document.visibilityState === "visible" && this.qrFor && Date.now() >= this.qrExpires - 3000) this.fetchQr();
      });
      await this.load();
    },
    async load() {
      try {
        const r = await MaaS.api("GET", "/v1/tickets");
        const tickets = Array.isArray(r) ? r : (r.tickets || []);
        for (const tk of tickets) for (const leg of tk.legs) {
          leg.from_name = await MaaS.stopName(leg.from_stop_id);
          leg.to_name = await MaaS.stopName(leg.to_stop_id);
        }
        this.tickets = tickets;
      } catch (e) { this.error = e.text; }
      this.loaded = true;
    },
    legLabel(leg) { return `${leg.from_name || leg.from_stop_id} → ${leg.to_name || leg.to_stop_id} · ${leg.service_date}`; },
    // The code on screen is short-lived (the API signs it for qr_ttl_s seconds): it is replaced a few
    // seconds before it expires, so a screenshot or a photo of it goes stale at the gate (reason expired_qr).
    async showQr(tk) {
      this.qrFor = tk.ticket_id; this.qrRotation = 0;
      clearInterval(this.timer);
      await this.fetchQr();
      this.timer = setInterval(() => {
        this.qrLeft = Math.max(0, Math.round((this.qrExpires - Date.now()) / 1000));
        if (this.qrLeft <= 3 && !this.busyQr) this.fetchQr();  // rotate a little before the code expires
      }, 1000);
    },
    qrPercent() {
      const span = this.qrExpires - this.qrFetched;
      return span > 0 ? Math.max(0, Math.min(100, Math.round(100 * this.qrLeft * 1000 / span))) : 0;
    },
    async fetchQr() {
      this.busyQr = true;
      try {
        const r = await MaaS.api("GET", `/v1/tickets/${encodeURIComponent(this.qrFor)}/qr?format=svg`, null, {raw: true});
        const expires = r.headers.get("X-QR-Expires-At");
        const blob = await r.blob();
        if (this.qrUrl) URL.revokeObjectURL(this.qrUrl);
        this.qrUrl = URL.createObjectURL(blob);
        // the server's expiry, but never later than one rotation period from now (a device clock may be off)
        const ttl = Date.now() + MaaS.data.qr_ttl_s * 1000;
        this.qrFetched = Date.now();
        this.qrExpires = expires ? Math.min(Date.parse(expires), ttl) : ttl;
        this.qrRotation += 1;
        this.qrLeft = Math.max(0, Math.round((this.qrExpires - Date.now()) / 1000));
      } catch (e) { this.error = e.text; clearInterval(this.timer); this.qrFor = null; }
      finally { this.busyQr = false; }
    },
    openFace(tk) {
      clearInterval(this.timer); this.qrFor = null; this.stopRefund();
      this.faceFor = tk.ticket_id; this.faceConsent = false; this.facePhoto = null; this.faceStatus = ""; this.error = "";
    },
    async enrolFace(tk) {
      this.error = ""; this.busy = true;
      try {
        const image = await new Promise((ok, fail) => {
          const r = new FileReader();
          r.onload = () => ok(String(r.result).split(",", 2)[1]); r.onerror = fail; r.readAsDataURL(this.facePhoto);
        });
        const r = await MaaS.api("POST", `/v1/travelers/${encodeURIComponent(tk.traveler.traveler_id)}/face`,
                                 {consent: this.faceConsent === true, image});
        this.faceStatus = MaaS.t("face.enrolled", {until: MaaS.localTime(r.delete_after, true)});
      } catch (e) { this.error = e.text; }
      finally { this.busy = false; }
    },
    async withdrawFace(tk) {
      this.error = ""; this.busy = true;
      try {
        const r = await MaaS.api("DELETE", `/v1/travelers/${encodeURIComponent(tk.traveler.traveler_id)}/face`);
        this.faceStatus = r.template_deleted ? MaaS.t("face.deleted") : MaaS.t("face.nothing");
        this.faceConsent = false;
      } catch (e) { this.error = e.text; }
      finally { this.busy = false; }
    },
    startRefund(tk) {
      clearInterval(this.timer); this.qrFor = null; this.notice = ""; this.error = "";
      this.refunding = tk.ticket_id; this.quote = null;
      this.refundLegs = tk.legs.filter((l) => l.status === "unused").map((l) => l.leg_id);
    },
    stopRefund() { this.refunding = null; this.quote = null; this.refundLegs = []; },
    async getQuote(tk) {
      this.error = ""; this.busy = true;
      try {
        const q = new URLSearchParams(); this.refundLegs.forEach((id) => q.append("leg_ids", id));
        this.quote = await MaaS.api("GET", `/v1/orders/${encodeURIComponent(tk.order_id)}/refund-quote?${q}`);
      } catch (e) { this.error = e.text; }
      finally { this.busy = false; }
    },
    async confirmRefund(tk) {
      this.error = ""; this.busy = true;
      try {
        const r = await MaaS.api("POST", `/v1/orders/${encodeURIComponent(tk.order_id)}/refunds`, {leg_ids: this.refundLegs});
        this.stopRefund();
        await this.load();
        this.notice = MaaS.t("wallet.refund_done", {amount: MaaS.money(r.amount), fee: MaaS.money(r.fee)});
      } catch (e) { this.error = e.text; }
      finally { this.busy = false; }
    },
  }));
});
