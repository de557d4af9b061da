document.addEventListener("alpine:init", () => {
  const KEY = "maas.gate";          // the device (sessionStorage: gone with the tab)
  const QUEUE = "maas.gate.taps";   // offline taps waiting for upload (localStorage: survive a reload)
  const field = () => ({text: "", value: null, options: [], open: false, active: -1});
  const b64 = (file) => new Promise((ok, fail) => {
    const r = new FileReader();
    r.onload = () => ok(String(r.result).split(",", 2)[1]); r.onerror = fail; r.readAsDataURL(file);
  });

  Alpine.data("gate", () => {
    const saved = JSON.parse(sessionStorage.getItem(KEY) || "{}");
    const stop = field();
    if (saved.stop) { stop.value = saved.stop.value; stop.text = saved.stop.text; }
    return {
      gateId: saved.gateId || "", token: saved.token || "", offline: !!saved.offline, stop,
      payload: "", idNumber: "", faceTicket: "", facePhoto: null, photoUrl: "", method: "qr", result: null, error: "", busy: false,
      queue: JSON.parse(localStorage.getItem(QUEUE) || "[]"), uploaded: "",
      cameraSupported: "BarcodeDetector" in window && !!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia),
      scanning: false,
      save() {
        sessionStorage.setItem(KEY, JSON.stringify({gateId: this.gateId.trim(), token: this.token.trim(), offline: this.offline,
                                                    stop: {value: this.stop.value, text: this.stop.text}}));
      },
      // stop autocomplete (the same stop search as the passenger pages)
      async suggest(f) {
        f.value = null;
        const q = f.text.trim();
        if (!q) { f.options = []; f.open = false; return; }
        try { f.options = (await MaaS.api("GET", "/v1/stops?" + new URLSearchParams({q, limit: "8"}))).stops;
              f.active = f.options.length ? 0 : -1; f.open = true; }
        catch (e) { this.error = e.text; }
      },
      move(f, d) { if (f.options.length) { f.open = true; f.active = (f.active + d + f.options.length) % f.options.length; } },
      pick(f, o) { if (!o) return; f.value = o.stop_id; f.text = o.name; f.open = false; f.options = []; this.save(); },
      pickPhoto(file) {  // the photo presented, shown next to the verdict (a blob URL: it never leaves the page)
        if (this.photoUrl) URL.revokeObjectURL(this.photoUrl);
        this.facePhoto = file; this.photoUrl = file ? URL.createObjectURL(file) : "";
      },
      reasonText(code) {
        const key = "reason." + code;
        return Object.prototype.hasOwnProperty.call(MaaS.data.messages, key) ? MaaS.t(key) : code;
      },
      ready() {
        this.error = "";
        if (!this.gateId.trim() || !this.token.trim() || !this.stop.value) { this.error = MaaS.t("gate.setup_first"); return false; }
        this.save();
        return true;
      },
      async send(credential, method) {
        this.busy = true; this.result = null; this.method = method;
        try {
          this.result = await MaaS.api("POST", "/v1/gates/validate",
            {gate_id: this.gateId.trim(), stop_id: this.stop.value, ...credential}, {token: this.token.trim()});
        } catch (e) { this.error = e.text; }
        finally { this.busy = false; }
      },
      async validateQr() {
        if (!this.ready()) return;
        const payload = this.payload.trim();
        if (this.offline) {
          this.queue.push({tap_id: MaaS.uuid(), payload, scanned_at: new Date().toISOString(), stop_id: this.stop.value});
          localStorage.setItem(QUEUE, JSON.stringify(this.queue));
          this.result = null; this.uploaded = "";
          this.payload = "";
          return;
        }
        await this.send({payload}, "qr");
        this.payload = "";
      },
      async validateId() { if (this.ready()) await this.send({id_number: this.idNumber.trim().toUpperCase()}, "id"); },
      async validateFace() {
        if (!this.ready()) return;
        await this.send({ticket_id: this.faceTicket.trim(), face_image: await b64(this.facePhoto)}, "face");
      },
      async upload() {
        if (!this.ready()) return;
        this.busy = true;
        try {
          const here = this.queue.filter((t) => t.stop_id === this.stop.value);
          const r = await MaaS.api("POST", "/v1/gates/taps", {gate_id: this.gateId.trim(), stop_id: this.stop.value,
            taps: here.map(({tap_id, payload, scanned_at}) => ({tap_id, payload, scanned_at}))}, {token: this.token.trim()});
          this.queue = this.queue.filter((t) => t.stop_id !== this.stop.value);
          localStorage.setItem(QUEUE, JSON.stringify(this.queue));
          this.uploaded = MaaS.t("gate.uploaded", {accepted: r.accepted, flagged: r.flagged, rejected: r.rejected,
                                                   duplicates: r.duplicates});
        } catch (e) { this.error = e.text; }
        finally { this.busy = false; }
      },
      async scanCamera() {  // BarcodeDetector where the browser has it; pasting the payload works everywhere
        this.error = "";
        try {
          const stream = await navigator.mediaDevices.getUserMedia({video: {facingMode: "environment"}});
          const video = this.$refs.video;
          video.srcObject = stream; await video.play(); this.scanning = true;
          const detector = new BarcodeDetector({formats: ["qr_code"]});
          const started = Date.now();
          while (this.scanning && Date.now() - started < 30000) {
            const codes = await detector.detect(video);
            if (codes.length) { this.payload = codes[0].rawValue; break; }
            await new Promise((r) => setTimeout(r, 200));
          }
          stream.getTracks().forEach((t) => t.stop()); this.scanning = false;
          if (this.payload) await this.validateQr();
        } catch (e) { this.scanning = false; this.error = MaaS.t("gate.camera_unavailable"); }
      },
    };
  });
});
