// The public tender list: the first page of the front end; the rest is built on it.
const API = "/api/v1";

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text;
  row.append(td);
}

async function showTenders(main) {
  const response = await fetch(`${API}/tenders?page_size=50`);
  if (!response.ok) {
    main.textContent = `The tenders could not be loaded (HTTP ${response.status}).`;
    return;
  }
  const { items } = await response.json();
  const table = document.createElement("table");
  const head = table.createTHead().insertRow();
  for (const title of ["Reference", "Title", "Deadline", "Status"]) {
    const th = document.createElement("th");
    th.textContent = title;
    head.append(th);
  }
  const body = table.createTBody();
  for (const tender of items) {
    const row = body.insertRow();
    cell(row, tender.reference);
    cell(row, tender.title);
    cell(row, new Date(tender.bid_deadline).toLocaleString());
    cell(row, tender.status);
  }
  main.replaceChildren(table);
}

showTenders(document.getElementById("app"));
