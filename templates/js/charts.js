// Charts: draw every chart, and follow the layer selectors.
const specs = JSON.parse(document.getElementById("wr-specs").textContent);
const datasets = JSON.parse(document.getElementById("wr-data").textContent);
const views = new Map();
const pending = [];
for (const el of document.querySelectorAll("div.wr-chart")) {
  const entry = specs[el.id];
  if (!entry) continue;
  const spec = Object.assign({}, entry.spec);
  if (entry.data.length) {
    spec.datasets = {};
    for (const name of entry.data) spec.datasets[name] = datasets[name];
  }
  pending.push(window.vegaEmbed(el, spec, {actions: false, ast: true, renderer: "svg"})
    .then((result) => { views.set(el.id, result.view); })
    .catch((err) => { el.textContent = "This chart could not be drawn: " + err; console.error(err); }));
}
for (const select of document.querySelectorAll("select.wr-layer")) {
  select.addEventListener("change", () => {
    const section = document.getElementById(select.dataset.section);
    for (const el of section.querySelectorAll("div.wr-chart[data-layered]")) {
      const view = views.get(el.id);
      if (view) view.signal("layer", select.value).runAsync();
    }
  });
}
for (const link of document.querySelectorAll("a.wr-see[data-layer]")) {
  link.addEventListener("click", () => {
    const select = document.querySelector(`select.wr-layer[data-section="${link.hash.slice(1)}"]`);
    if (!select || !Array.from(select.options).some((o) => o.value === link.dataset.layer)) return;
    select.value = link.dataset.layer;
    select.dispatchEvent(new Event("change"));
  });
}
// For the page's other scripts: every chart's Vega view by element id, and a promise
// that settles once every chart has been drawn (or has failed to be).
window.wrViews = views;
window.wrChartsReady = Promise.all(pending).then(() => { document.body.dataset.chartsReady = "true"; });
// Any script selects a layer everywhere by dispatching this event (detail: {layer}).
document.addEventListener("wr-select-layer", (event) => {
  const layer = event.detail && event.detail.layer;
  for (const select of document.querySelectorAll("select.wr-layer")) {
    if (!Array.from(select.options).some((o) => o.value === layer)) continue;
    select.value = layer;
    select.dispatchEvent(new Event("change"));
  }
});
