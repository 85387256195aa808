// The network at a glance: a click on a layer's mark in a whole-network chart selects
// that layer in every section (the mark's datum carries the layer's name as `tensor`),
// and every whole-network chart outlines the selected layer's row.
window.wrChartsReady.then(() => {
  const glance = [];
  for (const el of document.querySelectorAll("div.wr-chart[data-glance]")) {
    const view = window.wrViews.get(el.id);
    if (!view) continue;
    glance.push(view);
    view.addEventListener("click", (event, item) => {
      const layer = item && item.datum && item.datum.tensor;
      if (typeof layer !== "string" || !layer) return;
      document.dispatchEvent(new CustomEvent("wr-select-layer", {detail: {layer}}));
    });
  }
  document.addEventListener("wr-select-layer", (event) => {
    const layer = event.detail && event.detail.layer;
    if (typeof layer !== "string") return;
    for (const view of glance) view.signal("glance_layer", layer).runAsync();
  });
});
