// The network at a glance: a click on a layer's mark in a whole-network chart selects
// that layer in every section (the mark's datum carries the layer's name as `tensor`; a row
// standing for several layers carries them as `members`, and its cells the one each names as
// `at`), and every whole-network chart outlines the selected layer's row.
window.wrChartsReady.then(() => {
  const glance = [];
  for (const el of document.querySelectorAll("div.wr-chart[data-glance]")) {
    const view = window.wrViews.get(el.id);
    if (!view) continue;
    glance.push(view);
    view.addEventListener("click", (event, item) => {
      const datum = (item && item.datum) || {};
      // a row of several layers (a diff's chunk) selects the layer a cell names, else its first
      const layer = typeof datum.at === "string" && datum.at ? datum.at
        : Array.isArray(datum.members) && datum.members.length ? datum.members[0] : datum.tensor;
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
