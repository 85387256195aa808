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
for (const table of document.querySelectorAll("table.wr-sortable")) {
  const heads = table.querySelectorAll("thead th");
  heads.forEach((th, col) => {
    th.addEventListener("click", () => {
      const body = table.tBodies[0];
      const asc = th.getAttribute("aria-sort") !== "ascending";
      heads.forEach((h) => h.removeAttribute("aria-sort"));
      th.setAttribute("aria-sort", asc ? "ascending" : "descending");
      const key = (row) => row.cells[col].dataset.sort ?? row.cells[col].textContent;
      const rows = Array.from(body.rows);
      rows.sort((a, b) => {
        const x = key(a), y = key(b);
        const nx = parseFloat(x), ny = parseFloat(y);
        let c;
        if (x === "" || y === "") c = (x === "") - (y === "");
        else if (!isNaN(nx) && !isNaN(ny)) c = nx - ny;
        else c = x.localeCompare(y);
        return asc ? c : -c;
      });
      for (const r of rows) body.appendChild(r);
    });
  });
}
Promise.all(pending).then(() => { document.body.dataset.chartsReady = "true"; });
