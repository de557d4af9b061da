// Stripe.js from Stripe (never self-hosted, as Stripe requires), loaded only when the server uses Stripe.
function loadStripeJs() {
  if (window.Stripe) return Promise.resolve(window.Stripe);
  return new Promise((ok, fail) => {
    const s = document.createElement("script");
    s.src = "https://js.stripe.com/v3/";
    s.onload = () => (window.Stripe ? ok(window.Stripe) : fail(new Error("Stripe.js did not define Stripe")));
    s.onerror = () => fail(new Error("Stripe.js could not be loaded"));
    document.head.appendChild(s);
  });
}

document.addEventListener("alpine:init", () => {
  let keys = 0;
  const traveler = (rider) => ({key: ++keys, name: "", id_type: "cn_resident_id", id_number: "", rider_category: rider || "adult",
                                disability_certificate: false, touched: false});
  Alpine.data("buy", () => {
    const saved = JSON.parse(sessionStorage.getItem("maas.itinerary") || "null");
    return {
      itinerary: saved && saved.itinerary, travelers: [traveler(saved && saved.rider)], offer: null, order: null,
      seatMap: null, seatWho: {}, payment: null,
      stripeKey: MaaS.data.stripe_publishable_key, stripe: null, elements: null, stripeLoading: false, stripeWaiting: false,
      paid: false, busy: false, error: "", orderKey: MaaS.uuid(),
      init() { if (!MaaS.requireRole(["passenger"])) return; },
      add() { this.travelers.push(traveler()); this.offer = null; this.seatMap = null; },
      // seats: reserved-seat (coach) legs of the offer; 2 + aisle + 2 per row, numbered 1..capacity
      async loadSeats() {
        this.seatMap = null; this.seatWho = {};
        if (!this.offer.legs.some((l) => l.seats)) return;
        this.seatMap = await MaaS.api("GET", `/v1/offers/${encodeURIComponent(this.offer.offer_id)}/seats`);
      },
      seatRows(leg) {
        const rows = [];
        for (let n = 1; n <= leg.capacity; n += 4) rows.push([n, n + 1, n + 2, n + 3].filter((x) => x <= leg.capacity));
        return rows;
      },
      seatState(leg, n) { return leg.mine.includes(n) ? "mine" : leg.taken.includes(n) ? "taken" : "free"; },
      travelerName(i) { const tr = this.travelers[i]; return (tr && tr.name.trim()) || MaaS.t("buy.traveler_n", {n: i + 1}); },
      seatLabel(leg, n) {
        const i = leg.mine.indexOf(n);
        const side = (n - 1) % 4 === 0 || (n - 1) % 4 === 3 ? MaaS.t("buy.window") : MaaS.t("buy.aisle");
        const state = i >= 0 ? MaaS.t("buy.seat_of", {who: this.travelerName(i)})
          : leg.taken.includes(n) ? MaaS.t("buy.seat_taken_state") : "";
        return [MaaS.t("buy.seat_button", {n}), side, state].filter(Boolean).join(", ");
      },
      legName(leg) {
        const it = this.itinerary.legs[leg.leg_index];
        return it ? `${it.route_name || ""} ${it.from.name} → ${it.to.name}` : "";
      },
      seatsOf(leg) {  // the seats held on an itinerary leg, as text ("3, 4")
        if (!this.seatMap) return "";
        const idx = this.itinerary.legs.indexOf(leg);
        const m = this.seatMap.legs.find((x) => x.leg_index === idx);
        return m ? m.mine.join(", ") : "";
      },
      async pickSeat(leg, n) {
        if (this.order || leg.taken.includes(n)) return;
        const who = this.seatWho[leg.leg_index] || 0;
        const mine = [...leg.mine];
        const j = mine.indexOf(n);
        if (j === who) return;
        if (j >= 0) mine[j] = mine[who];  // another traveller's seat: the two swap
        mine[who] = n;
        this.error = ""; this.busy = true;
        try {
          this.seatMap = await MaaS.api("PUT", `/v1/offers/${encodeURIComponent(this.offer.offer_id)}/seats`,
                                        {leg_index: leg.leg_index, seats: mine});
          this.seatWho = {...this.seatWho, [leg.leg_index]: (who + 1) % mine.length};
        } catch (e) {
          this.error = e.text;
          if (e.code === "seat_taken") await this.loadSeats();
        } finally { this.busy = false; }
      },
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
          await this.loadSeats();
        } catch (e) { this.error = e.text; }
        finally { this.busy = false; }
      },
      // Pay: the sandbox rail confirms at once (demo, no network); with Stripe configured the first press
      // creates the order (a PaymentIntent) and mounts Stripe's Payment Element with its client_secret, the
      // second confirms it with Stripe.js; the signed webhook then tickets the order (and a sync asks Stripe).
      async pay() {
        this.error = ""; this.busy = true;
        try {
          if (!this.order) {
            this.order = await MaaS.api("POST", "/v1/orders", {offer_id: this.offer.offer_id,
              travelers: this.travelers.map((tr) => ({name: tr.name.trim(), id_type: tr.id_type,
                id_number: tr.id_number.trim().toUpperCase(), rider_category: tr.rider_category,
                disability_certificate: tr.disability_certificate}))}, {headers: {"Idempotency-Key": this.orderKey}});
            this.payment = this.order.payment;
          }
          const id = encodeURIComponent(this.order.order_id);
          if (this.payment && this.payment.provider === "sandbox") {
            await MaaS.api("POST", `/v1/payments/sandbox/${id}/confirm`);
          } else if (this.payment && this.payment.provider === "stripe") {
            if (!this.stripe) { await this.mountStripe(); return; }
            const r = await this.stripe.confirmPayment({elements: this.elements, redirect: "if_required",
              confirmParams: {return_url: location.origin + "/app/passenger/tickets"}});
            if (r.error) { this.error = r.error.message || MaaS.t("error.generic"); return; }
            this.stripeWaiting = true;
            try { await MaaS.api("POST", `/v1/orders/${id}/payment/sync`); } catch (e) { /* the webhook will come */ }
          }
          for (let i = 0; i < 60; i++) {  // Stripe: the webhook marks the order paid
            this.order = await MaaS.api("GET", `/v1/orders/${id}`);
            if (this.order.status === "ticketed") break;
            await new Promise((r) => setTimeout(r, 1000));
          }
          this.paid = this.order.status === "ticketed";
          if (this.paid) { sessionStorage.removeItem("maas.itinerary"); this.stripeWaiting = false; }
        } catch (e) { this.error = e.text || e.message; }
        finally { this.busy = false; }
      },
      async mountStripe() {
        if (!this.stripeKey || !this.payment.client_secret) { this.error = MaaS.t("buy.stripe_unavailable"); return; }
        this.stripeLoading = true;
        try {
          const StripeJs = await loadStripeJs();
          this.stripe = StripeJs(this.stripeKey, {locale: MaaS.data.lang === "en" ? "en" : "zh"});
          this.elements = this.stripe.elements({clientSecret: this.payment.client_secret});
          this.elements.create("payment").mount("#stripe-payment-element");
        } catch (e) { this.stripe = null; this.error = MaaS.t("buy.stripe_unavailable"); }
        finally { this.stripeLoading = false; }
      },
    };
  });
});
