document.addEventListener("alpine:init", () => {
  let keys = 0;
  const traveler = (rider) => ({key: ++keys, name: "", id_type: "cn_resident_id", id_number: "", rider_category: rider || "adult",
                                disability_certificate: false, touched: false});
  Alpine.data("buy", () => {
    const saved = JSON.parse(sessionStorage.getItem("maas.itinerary") || "null");
    return {
      itinerary: saved && saved.itinerary, travelers: [traveler(saved && saved.rider)], offer: null, order: null,
      paid: false, busy: false, error: "", orderKey: MaaS.uuid(),
      init() { if (!MaaS.requireRole(["passenger"])) return; },
      add() { this.travelers.push(traveler()); this.offer = null; },
      idError(tr) {
        const v = tr.id_number.trim();
        if (!v) return tr.touched ? MaaS.t("buy.fix_errors") : "";
        if (tr.id_type === "cn_resident_id" && v.length >= 18 && !MaaS.cnResidentIdValid(v)) return MaaS.t("buy.id_invalid");
        if (tr.id_type === "cn_resident_id" && tr.touched && !MaaS.cnResidentIdValid(v)) return MaaS.t("buy.id_invalid");
        return "";
      },
      valid() {
        this.travelers.forEach((tr) => { tr.touched = true; });
        return this.travelers.every((tr) => tr.name.trim() && tr.id_number.trim() && !this.idError(tr));
      },
      async quote() {
        this.error = "";
        if (!this.valid()) { this.error = MaaS.t("buy.fix_errors"); return; }
        this.busy = true;
        try {
          this.offer = await MaaS.api("POST", "/v1/offers", {itinerary: this.itinerary,
            travelers: this.travelers.map((tr) => ({rider_category: tr.rider_category}))});
          this.orderKey = MaaS.uuid();
        } catch (e) { this.error = e.text; }
        finally { this.busy = false; }
      },
      async pay() {
        this.error = ""; this.busy = true;
        try {
          if (!this.order) {
            this.order = await MaaS.api("POST", "/v1/orders", {offer_id: this.offer.offer_id,
              travelers: this.travelers.map((tr) => ({name: tr.name.trim(), id_type: tr.id_type,
                id_number: tr.id_number.trim().toUpperCase(), rider_category: tr.rider_category,
                disability_certificate: tr.disability_certificate}))}, {headers: {"Idempotency-Key": this.orderKey}});
          }
          if (this.order.payment && this.order.payment.provider === "sandbox") {
            await MaaS.api("POST", `/v1/payments/sandbox/${encodeURIComponent(this.order.order_id)}/confirm`);
          }
          for (let i = 0; i < 20; i++) {  // Stripe: the webhook marks the order paid
            this.order = await MaaS.api("GET", `/v1/orders/${encodeURIComponent(this.order.order_id)}`);
            if (this.order.status === "ticketed") break;
            await new Promise((r) => setTimeout(r, 1000));
          }
          this.paid = this.order.status === "ticketed";
          if (this.paid) sessionStorage.removeItem("maas.itinerary");
        } catch (e) { this.error = e.text; }
        finally { this.busy = false; }
      },
    };
  });
});
