document.addEventListener("alpine:init", () => {
  const HOME = {passenger: "/app/passenger", operator: "/app/operator", regulator: "/app/regulator",
                admin: "/app/operator"};
  Alpine.data("login", () => ({
    phone: "", password: "", error: "", busy: false,
    async submit() {
      this.error = ""; this.busy = true;
      try {
        const tok = await MaaS.api("POST", "/v1/auth/token", {phone: this.phone.trim(), password: this.password});
        const me = await MaaS.api("GET", "/v1/me", null, {token: tok.access_token});
        MaaS.session.set({access_token: tok.access_token, refresh_token: tok.refresh_token, role: me.role,
                          operator_id: me.operator_id || null});
        const next = new URLSearchParams(location.search).get("next");
        location.href = next && next.startsWith("/app/") && !next.startsWith("//") ? next : (HOME[me.role] || "/app/");
      } catch (e) {
        this.error = e.text || String(e);
      } finally { this.busy = false; }
    },
  }));
});
