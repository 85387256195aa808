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
