// Layer pickers: each section's picker lists the layers it has data for (grouped by module
// path). Choosing a layer in any of them, through a finding's link (a.wr-see[data-layer]) or by
// a wr-select-layer event shows it in every section: the layer itself, else a parameter's
// module ("conv1" for "conv1.weight"), a reused module's call's module ("relu" for "relu#2")
// or a module's parameter ("conv1.weight" for "conv1"), else a line saying the section has
// no data for it, with its per-layer charts hidden. An option's text is the layer's label
// ("relu (call 2)"), its value the recorded name.
// (A block, so its names stay out of the page's other scripts, which share one module.)
{
const FILTER_DELAY_MS = 250;

// What a section offering `names` (a Set) shows for `name`; null when it has nothing for it.
function counterpart(name, names, order) {
  if (names.has(name)) return name;
  const call = /^(.+)#[1-9][0-9]*$/.exec(name);
  if (call && names.has(call[1])) return call[1];
  const dot = name.lastIndexOf(".");
  if (dot > 0 && names.has(name.slice(0, dot))) return name.slice(0, dot);
  if (names.has(name + ".weight")) return name + ".weight";
  const prefix = name + ".";
  return order.find((n) => n.startsWith(prefix) && !n.slice(prefix.length).includes(".")) || null;
}

function makePicker(box) {
  const select = box.querySelector("select.wr-layer");
  const entries = Array.from(select.options, (o) => ({
    name: o.value, label: o.text, group: o.parentElement.tagName === "OPTGROUP" ? o.parentElement.label : null}));
  const order = entries.map((e) => e.name);
  return {
    box, select, entries, order, names: new Set(order), shown: order,
    section: document.getElementById(box.dataset.section),
    filter: box.querySelector("input.wr-pick-filter"),
    count: box.querySelector(".wr-count"),
    note: box.querySelector(".wr-layer-note"),
    current: select.value, timer: 0,
  };
}

// Fill the select with `entries`, in their groups.
function fill(p, entries) {
  const nodes = [];
  let group = null;
  for (const e of entries) {
    const option = new Option(e.label, e.name);
    if (e.group === null) { nodes.push(option); group = null; continue; }
    if (!group || group.label !== e.group) {
      group = document.createElement("optgroup");
      group.label = e.group;
      nodes.push(group);
    }
    group.append(option);
  }
  p.select.replaceChildren(...nodes);
  p.shown = entries.map((e) => e.name);
}

function layers(n) { return n === 1 ? "1 layer" : `${n} layers`; }

function matcher(text) {
  const terms = text.toLowerCase().split(/\s+/).filter(Boolean);
  return (name) => terms.every((t) => name.toLowerCase().includes(t));
}

function clearFilter(p) {
  if (!p.filter || !p.filter.value) return;
  p.filter.value = "";
  fill(p, p.entries);
  p.count.textContent = `(${layers(p.order.length)})`;
}

// Show `chosen` (or its counterpart) in picker `p`'s section.
function show(p, chosen) {
  const layer = counterpart(chosen, p.names, p.order);
  if (layer !== null && !p.shown.includes(layer)) clearFilter(p);
  p.select.value = layer === null ? "" : layer;
  if (layer === null) p.select.selectedIndex = -1;
  if (layer === null) {
    p.note.textContent = `No data here for ${chosen}: choose one of this section's ${layers(p.order.length)} above.`;
  } else if (layer !== chosen) {
    p.note.textContent = chosen.startsWith(layer + ".") || chosen.startsWith(layer + "#") ? `The module of ${chosen}.`
      : `A parameter of the chosen module ${chosen}.`;
  }
  p.note.hidden = layer === chosen;
  for (const el of p.section.querySelectorAll("div.wr-chart[data-layered]")) {
    (el.closest("figure") || el).hidden = layer === null;
    if (layer !== null) drawChart(el, layer);
  }
  if (layer !== null) p.current = layer;
}

const pickers = Array.from(document.querySelectorAll("div.wr-picker"), makePicker);

// Choose `name` everywhere; a name that no section has is ignored.
function chooseLayer(name) {
  if (typeof name !== "string" || !pickers.some((p) => counterpart(name, p.names, p.order) !== null)) return;
  for (const p of pickers) show(p, name);
  window.wrChartsReady = allDrawn();
}

function refilter(p) {
  const match = matcher(p.filter.value);
  const entries = p.entries.filter((e) => match(`${e.name} ${e.label}`));
  fill(p, entries);
  p.count.textContent = p.filter.value ? `(${entries.length} of ${layers(p.order.length)})` : `(${layers(p.order.length)})`;
  clearTimeout(p.timer);
  if (!entries.length) return;
  if (p.shown.includes(p.current)) p.select.value = p.current;
  else p.timer = setTimeout(() => chooseLayer(entries[0].name), FILTER_DELAY_MS);
}

for (const p of pickers) {
  p.box.querySelector(".wr-picker-tools").hidden = false;
  p.select.addEventListener("change", () => chooseLayer(p.select.value));
  for (const button of p.box.querySelectorAll("button.wr-step")) {
    button.addEventListener("click", () => {
      const at = p.shown.indexOf(p.current);
      const next = p.shown[Math.min(p.shown.length - 1, Math.max(0, at + Number(button.dataset.step)))];
      if (next !== undefined) chooseLayer(next);
    });
  }
  p.filter.addEventListener("input", () => refilter(p));
  p.filter.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && p.shown.length) {
      clearTimeout(p.timer);
      chooseLayer(p.shown[0]);
    } else if (event.key === "Escape") {
      clearFilter(p);
      if (p.names.has(p.current)) p.select.value = p.current;
    }
  });
}
for (const link of document.querySelectorAll("a.wr-see[data-layer]")) {
  link.addEventListener("click", () => chooseLayer(link.dataset.layer));
}
document.addEventListener("wr-select-layer", (event) => chooseLayer(event.detail && event.detail.layer));
}
