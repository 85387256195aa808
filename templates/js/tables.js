// Tables: click a header to sort by that column.
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
// Tables: a filter box above a long table hides the rows that do not contain its text
// (a row's data-filter when it has one: the structure table's full module paths); while
// it filters, the table carries class wr-filtered (the structure then shows full paths).
for (const input of document.querySelectorAll("input.wr-filter")) {
  const table = input.closest(".wr-table").querySelector("table");
  const count = document.createElement("span");
  count.className = "wr-filter-count";
  input.after(count);
  input.addEventListener("input", () => {
    const words = input.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
    let shown = 0;
    const rows = table.tBodies[0].rows;
    for (const row of rows) {
      const text = (row.dataset.filter ?? row.textContent).toLowerCase();
      row.hidden = !words.every((w) => text.includes(w));
      if (!row.hidden) shown += 1;
    }
    count.textContent = words.length ? `${shown} of ${rows.length} rows` : "";
    table.classList.toggle("wr-filtered", words.length > 0);
  });
}
