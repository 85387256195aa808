// Charts: draw every chart. A chart that follows a layer (div[data-layered]) is drawn afresh
// from its spec, with the spec's `layer` parameter set, whenever its section shows another
// layer: every size, axis, facet and legend is then computed for the layer shown. (Setting a
// signal on the old view kept the first layer's layout: clipped axes, stale heatmap boxes.)
const specs = JSON.parse(document.getElementById("wr-specs").textContent);
const datasets = JSON.parse(document.getElementById("wr-data").textContent);
const views = new Map();
const drawings = new Map();  // element id → {layer, wanted, result, queue}
const EMBED = {actions: false, ast: true, renderer: "svg"};

// The spec's own value of its `layer` parameter (wherever the parameter is declared).
function specLayer(spec) {
  for (const p of spec.params || []) if (p.name === "layer") return p.value;
  for (const key of ["spec", "layer", "hconcat", "vconcat", "concat"]) {
    for (const sub of [].concat(spec[key] || [])) {
      const value = typeof sub === "object" ? specLayer(sub) : undefined;
      if (value !== undefined) return value;
    }
  }
  return undefined;
}

// A copy of the spec with every `layer` parameter set to `layer` (charts/common.py select_layer).
function withLayer(spec, layer) {
  const copy = Array.isArray(spec) ? spec.slice() : Object.assign({}, spec);
  if (Array.isArray(copy.params)) {
    copy.params = copy.params.map((p) => (p.name === "layer" ? Object.assign({}, p, {value: layer}) : p));
  }
  for (const key of ["spec", "layer", "hconcat", "vconcat", "concat"]) {
    if (Array.isArray(copy[key])) copy[key] = copy[key].map((sub) => withLayer(sub, layer));
    else if (copy[key] && typeof copy[key] === "object") copy[key] = withLayer(copy[key], layer);
  }
  return copy;
}

function specFor(id, layer) {
  const entry = specs[id];
  const spec = layer === undefined ? Object.assign({}, entry.spec) : withLayer(entry.spec, layer);
  if (entry.data.length) {
    spec.datasets = {};
    for (const name of entry.data) spec.datasets[name] = datasets[name];
  }
  return spec;
}

// Draw the chart in `el` for `layer` (undefined: the spec's own). Drawings of one chart run
// one after another, and one that a later request has overtaken is skipped.
function drawChart(el, layer) {
  let d = drawings.get(el.id);
  if (!d) {
    d = {layer: null, wanted: null, result: null, queue: Promise.resolve()};
    drawings.set(el.id, d);
  }
  const want = layer === undefined ? specLayer(specs[el.id].spec) : layer;
  d.wanted = want;
  d.queue = d.queue.then(() => {
    if (d.wanted !== want || (d.result && d.layer === want)) return undefined;
    if (d.result) d.result.finalize();
    return window.vegaEmbed(el, specFor(el.id, layer), EMBED)
      .then((result) => {
        d.result = result;
        d.layer = want;
        views.set(el.id, result.view);
        if (want !== undefined) el.dataset.layer = want;
      })
      .catch((err) => { el.textContent = "This chart could not be drawn: " + err; console.error(err); });
  });
  return d.queue;
}

// A promise that settles once every drawing asked for so far has been done.
function allDrawn() {
  return Promise.all(Array.from(drawings.values(), (d) => d.queue)).then(() => undefined);
}

for (const el of document.querySelectorAll("div.wr-chart")) {
  if (specs[el.id]) drawChart(el, undefined);
}
// For the page's other scripts: every chart's current Vega view by element id (a chart drawn
// afresh gets a new view), and a promise that settles once every chart has been drawn (or has
// failed to be). After a layer is chosen, window.wrChartsReady is the promise for the redrawing.
window.wrViews = views;
window.wrChartsReady = allDrawn().then(() => { document.body.dataset.chartsReady = "true"; });
// Any script selects a layer everywhere by dispatching this event (detail: {layer});
// templates/js/layers.js listens for it.
