document.addEventListener("alpine:init", () => {
  function localInput(d) {  // a Date as the value of <input type=datetime-local>
    const p = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
  }
  function withOffset(value) {  // datetime-local -> ISO with the browser's UTC offset
    const d = new Date(value);
    const off = -d.getTimezoneOffset(), sign = off >= 0 ? "+" : "-", a = Math.abs(off);
    return `${value.length === 16 ? value + ":00" : value}${sign}${String(Math.floor(a / 60)).padStart(2, "0")}:${String(a % 60).padStart(2, "0")}`;
  }
  let mapView = null;
  const field = () => ({text: "", value: null, options: [], open: false, active: -1});

  Alpine.data("planner", () => ({
    from: field(), to: field(), whenKind: "depart", when: localInput(new Date()), optimize: "time",
    modes: ["BUS", "SUBWAY", "COACH", "RAIL", "TRAM", "FERRY"], rider: "adult",
    itineraries: [], chosen: -1, searched: false, busy: false, error: "",
    async suggest(f) {
      f.value = null;
      const q = f.text.trim();
      if (!q) { f.options = []; f.open = false; return; }
      try {
        f.options = (await MaaS.api("GET", "/v1/stops?" + new URLSearchParams({q, limit: "8"}))).stops;
        f.active = f.options.length ? 0 : -1; f.open = true;
      } catch (e) { this.error = e.text; }
    },
    move(f, d) { if (f.options.length) { f.open = true; f.active = (f.active + d + f.options.length) % f.options.length; } },
    pick(f, o) { if (!o) return; f.value = o.stop_id; f.text = o.name; f.open = false; f.options = []; },
    useLocation() {
      if (!navigator.geolocation) { this.error = MaaS.t("plan.location_unavailable"); return; }
      navigator.geolocation.getCurrentPosition(
        (p) => { this.from.value = `${p.coords.latitude.toFixed(6)},${p.coords.longitude.toFixed(6)}`;
                 this.from.text = MaaS.t("plan.my_location"); this.error = ""; },
        () => { this.error = MaaS.t("plan.location_unavailable"); }, {timeout: 10000});
    },
    operatorName(id) { return id; },
    async search() {
      this.error = "";
      if (!this.from.value || !this.to.value) { this.error = MaaS.t("plan.pick_stops"); return; }
      const params = new URLSearchParams({from: this.from.value, to: this.to.value, optimize: this.optimize,
                                          rider_category: this.rider, lang: MaaS.data.lang});
      params.set(this.whenKind === "arrive" ? "arrive_by" : "depart_at", withOffset(this.when));
      if (this.modes.length) params.set("modes", this.modes.join(","));
      this.busy = true;
      try {
        this.itineraries = (await MaaS.api("GET", "/v1/plan?" + params)).itineraries;
        this.searched = true;
        this.chosen = -1;
        if (this.itineraries.length) this.$nextTick(() => this.choose(0));
      } catch (e) { this.error = e.text; this.itineraries = []; }
      finally { this.busy = false; }
    },
    choose(i) {
      this.chosen = i;
      // the Leaflet map stays outside Alpine's reactive (proxied) state, which breaks Leaflet's objects
      if (!mapView) mapView = JourneyMap(document.getElementById("map"));
      mapView.show(JSON.parse(JSON.stringify(this.itineraries[i])));
    },
    buy(i) {
      sessionStorage.setItem("maas.itinerary", JSON.stringify({itinerary: this.itineraries[i], rider: this.rider}));
      location.href = "/app/passenger/buy";
    },
  }));
});
