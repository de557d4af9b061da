// A Leaflet map of one itinerary: legs' geometry coloured by mode, their stops as dots. With no tile URL
// configured (offline, the demo) it draws on a plain background.
(function () {
  const COLOURS = {WALK: "#6b7280", BUS: "#15803d", SUBWAY: "#1d4ed8", COACH: "#b45309", RAIL: "#7c3aed",
                   TRAM: "#0f766e", FERRY: "#0369a1"};
  const visible = (el) => el.clientWidth > 0 && el.clientHeight > 0;

  window.JourneyMap = function (element) {
    let map = null, layer = null;
    function create() {
      // no animations: nothing moves by itself (and no animation frame outlives a hidden or replaced map)
      map = L.map(element, {zoomControl: true, attributionControl: !!MaaS.data.tile_url, zoomAnimation: false,
                            fadeAnimation: false, markerZoomAnimation: false});
      if (MaaS.data.tile_url) {
        L.tileLayer(MaaS.data.tile_url, {maxZoom: 19, attribution: MaaS.data.tile_attribution || ""}).addTo(map);
      }
    }
    function draw(it) {
      const lines = it.legs.map((leg) => ({leg, coords: leg.geometry && leg.geometry.coordinates && leg.geometry.coordinates.length
        ? leg.geometry.coordinates.map(([lon, lat]) => [lat, lon])
        : [[leg.from.lat, leg.from.lon], [leg.to.lat, leg.to.lon]]}));
      const bounds = L.latLngBounds(lines.flatMap((l) => l.coords));
      if (!bounds.isValid()) return;
      map.invalidateSize();
      map.fitBounds(bounds, {padding: [20, 20], animate: false});  // a view first, then the layers
      if (layer) layer.remove();
      layer = L.featureGroup();
      for (const {leg, coords} of lines) {
        L.polyline(coords, {color: COLOURS[leg.mode] || "#111827", weight: leg.mode === "WALK" ? 3 : 5,
                            dashArray: leg.mode === "WALK" ? "4 6" : null}).addTo(layer);
        for (const s of [leg.from, ...(leg.intermediate_stops || []), leg.to]) {
          if (s && Number.isFinite(s.lat) && Number.isFinite(s.lon)) {
            L.circleMarker([s.lat, s.lon], {radius: 4, color: "#111827", weight: 1, fillColor: "#fff", fillOpacity: 1})
              .bindTooltip(s.name || "").addTo(layer);
          }
        }
      }
      layer.addTo(map);
    }
    return {
      show(it) {
        let tries = 0;
        const attempt = () => {  // a hidden container has no size: wait until it is shown
          if (!visible(element)) { if (++tries < 120) requestAnimationFrame(attempt); return; }
          if (!map) create();
          draw(it);
        };
        attempt();
      },
    };
  };
})();
