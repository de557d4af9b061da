// Shared helpers of the /app front ends: texts, the signed-in session, API calls, formatting.
// Loaded before Alpine (both deferred, in order), so components can use them.
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("page-data").textContent);
  const M = data.messages;

  function t(key, vars) {
    let s = Object.prototype.hasOwnProperty.call(M, key) ? M[key] : key;
    if (vars) for (const [k, v] of Object.entries(vars)) s = s.split("{" + k + "}").join(String(v));
    return s;
  }

  const KEY = "maas.session";
  const session = {
    get() { try { return JSON.parse(sessionStorage.getItem(KEY)) || null; } catch (e) { return null; } },
    set(value) { sessionStorage.setItem(KEY, JSON.stringify(value)); },
    clear() { sessionStorage.removeItem(KEY); },
  };

  class ApiError extends Error {
    constructor(status, code, message, details) {
      super(message); this.status = status; this.code = code; this.details = details || {};
    }
    // A readable text: the code's own translation when there is one, else the API's message.
    get text() {
      const key = "error." + this.code;
      return Object.prototype.hasOwnProperty.call(M, key) ? M[key] : (this.message || t("error.generic"));
    }
  }

  async function refresh(s) {
    if (!s || !s.refresh_token) return false;
    const r = await fetch("/v1/auth/refresh", {method: "POST", headers: {"Content-Type": "application/json"},
                                               body: JSON.stringify({refresh_token: s.refresh_token})});
    if (!r.ok) return false;
    const tok = await r.json();
    session.set({...s, access_token: tok.access_token, refresh_token: tok.refresh_token || s.refresh_token});
    return true;
  }

  // fetch a /v1 API path; JSON in and out; errors become ApiError with the API's code.
  async function api(method, path, body, opts) {
    opts = opts || {};
    for (let attempt = 0; attempt < 2; attempt++) {
      const headers = Object.assign({}, opts.headers || {});
      const s = session.get();
      const bearer = opts.token || (s && s.access_token);
      if (bearer) headers["Authorization"] = "Bearer " + bearer;
      let payload;
      if (body instanceof FormData || body instanceof Blob || typeof body === "string") payload = body;
      else if (body !== undefined && body !== null) { headers["Content-Type"] = "application/json"; payload = JSON.stringify(body); }
      let r;
      try { r = await fetch(path, {method, headers, body: payload}); }
      catch (e) { throw new ApiError(0, "network", t("error.network")); }
      if (r.status === 401 && attempt === 0 && !opts.token && await refresh(s)) continue;
      if (opts.raw) { if (r.ok) return r; }
      else if (r.ok) return r.status === 204 ? null : (r.headers.get("content-type") || "").includes("json") ? r.json() : r.text();
      let err = {};
      try { err = (await r.json()).error || {}; } catch (e) { /* not JSON */ }
      throw new ApiError(r.status, err.code || "http_" + r.status, err.message || r.statusText, err.details);
    }
  }

  function money(m) {
    if (!m || m.amount === undefined || m.amount === null) return "—";
    const sign = m.amount < 0 ? "-" : "";
    const v = Math.abs(m.amount);
    return sign + (m.currency === "CNY" || !m.currency ? "¥" : m.currency + " ") + Math.floor(v / 100) + "." + String(v % 100).padStart(2, "0");
  }
  // Wall-clock time of an ISO string in its own offset (the city's local time).
  function hhmm(iso) { return iso ? String(iso).slice(11, 16) : "—"; }
  // An instant in the device's time zone (ticket validity, offer expiry: stored in UTC).
  function localTime(iso, withDate) {
    if (!iso) return "—";
    const opts = {hour: "2-digit", minute: "2-digit", hour12: false};
    if (withDate) Object.assign(opts, {month: "2-digit", day: "2-digit"});
    return new Intl.DateTimeFormat(data.lang, opts).format(new Date(iso));
  }
  // Stop names by id, through the stop search (cached per page).
  const stopNames = {};
  async function stopName(id) {
    if (!(id in stopNames)) {
      stopNames[id] = id;
      try {
        const hit = (await api("GET", "/v1/stops?" + new URLSearchParams({q: id, limit: "1"}))).stops[0];
        if (hit && hit.stop_id === id) stopNames[id] = hit.name;
      } catch (e) { /* the id stays */ }
    }
    return stopNames[id];
  }
  function duration(s) {
    const m = Math.round(s / 60);
    return m >= 60 ? t("fmt.hours_minutes", {h: Math.floor(m / 60), m: m % 60}) : t("fmt.minutes", {m});
  }
  function uuid() {
    if (crypto.randomUUID) return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  }
  // GB 11643-1999: 17 digits and a check character from weights 2^(17-i) mod 11.
  function cnResidentIdValid(value) {
    const v = String(value || "").trim().toUpperCase();
    if (!/^\d{17}[\dX]$/.test(v)) return false;
    const w = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum = 0;
    for (let i = 0; i < 17; i++) sum += Number(v[i]) * w[i];
    if ("10X98765432"[sum % 11] !== v[17]) return false;
    const y = +v.slice(6, 10), mo = +v.slice(10, 12), d = +v.slice(12, 14);
    const date = new Date(Date.UTC(y, mo - 1, d));
    return date.getUTCFullYear() === y && date.getUTCMonth() === mo - 1 && date.getUTCDate() === d && y >= 1900;
  }
  function requireRole(roles) {
    const s = session.get();
    if (!s || (roles && !roles.includes(s.role))) {
      location.href = "/app/login?next=" + encodeURIComponent(location.pathname);
      return null;
    }
    return s;
  }
  async function logout() {
    const s = session.get();
    if (s && s.refresh_token) {
      try { await api("POST", "/v1/auth/revoke", {refresh_token: s.refresh_token}); } catch (e) { /* already gone */ }
    }
    session.clear();
    location.href = "/app/login";
  }

  window.MaaS = {data, t, session, api, ApiError, money, hhmm, localTime, stopName, duration, uuid, cnResidentIdValid, requireRole, logout};
})();
