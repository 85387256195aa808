// The network at a glance: a click on a layer's mark in a whole-network chart selects
// that layer in every section (the mark's datum carries the layer's name as `tensor`).
window.wrChartsReady.then(() => {
  for (const el of document.querySelectorAll("div.wr-chart[data-glance]")) {
    const view = window.wrViews.get(el.id);
    if (!view) continue;
    view.addEventListener("click", (event, item) => {
      const layer = item && item.datum && item.datum.tensor;
      if (typeof layer !== "string" || !layer) return;
      document.dispatchEvent(new CustomEvent("wr-select-layer", {detail: {layer}}));
    });
  }
});
