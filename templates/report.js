/* report.html behaviour: filter and sort. Inlined by sgadvisor.render.html and allowed by the page's CSP
   through its hash. It is static: it reads only the page's text and data-* attributes, writes only the
   hidden flag, aria-sort, the open flag and the counter text, and never parses markup. */
(function () {
  "use strict";

  var query = document.getElementById("q");
  var actionFilter = document.getElementById("f-action");
  var coverageFilter = document.getElementById("f-coverage");
  var counter = document.getElementById("shown");
  var groups = Array.prototype.slice.call(document.querySelectorAll("details.group"));
  var overviewRows = {};
  var textCache = new WeakMap();
  var timer = 0;

  Array.prototype.forEach.call(document.querySelectorAll("tr[data-group]"), function (row) {
    overviewRows[row.getAttribute("data-group")] = row;
  });

  /* Lower-cased text of an element, computed once: the page does not change its text. */
  function textOf(element) {
    var text = textCache.get(element);
    if (text === undefined) {
      text = element.textContent.toLowerCase();
      textCache.set(element, text);
    }
    return text;
  }

  function current() {
    return { q: query.value.trim().toLowerCase(), action: actionFilter.value, coverage: coverageFilter.value };
  }

  function actionMatches(group, wanted) {
    if (!wanted) {
      return true;
    }
    var actions = (group.getAttribute("data-actions") || "").split(" ");
    var changed = actions.some(function (a) { return a === "narrow" || a === "remove" || a === "add"; });
    if (wanted === "changes") {
      return changed;
    }
    if (wanted === "unchanged") {
      return !changed;
    }
    return actions.indexOf(wanted) >= 0;
  }

  /* A group's searchable text: what it shows, plus its edge table, which is built only when opened. */
  function groupText(group) {
    var text = textCache.get(group);
    if (text === undefined) {
      var edges = group.querySelector("details.edges");
      text = group.textContent.toLowerCase();
      if (edges) {
        text += "\n" + (edges.getAttribute("data-enis") + "\n" + edges.getAttribute("data-edges")).toLowerCase();
      }
      textCache.set(group, text);
    }
    return text;
  }

  function groupMatches(group, state) {
    if (state.coverage && group.getAttribute("data-coverage") !== state.coverage) {
      return false;
    }
    if (!actionMatches(group, state.action)) {
      return false;
    }
    return !state.q || groupText(group).indexOf(state.q) >= 0;
  }

  function addCell(row, text, className) {
    var cell = document.createElement("td");
    if (className) {
      cell.className = className;
    }
    cell.textContent = text;
    row.appendChild(cell);
    return cell;
  }

  /* An id (or address) with its Name tag beside it, as the server-side markup shows them. */
  function addIdCell(row, id, name) {
    var cell = document.createElement("td");
    var code = document.createElement("code");
    code.textContent = id;
    cell.appendChild(code);
    if (name) {
      var label = document.createElement("span");
      label.className = "lbl";
      label.textContent = name;
      cell.appendChild(document.createTextNode(" "));
      cell.appendChild(label);
    }
    row.appendChild(cell);
  }

  var EDGE_CLASSES = { initiated: true, reply: true, unknown: true };

  /* The edge table from its data attributes (one tab-separated line per edge), built once, with
     textContent only: the data is never parsed as markup. */
  function buildEdges(box) {
    if (box.hasAttribute("data-built")) {
      return;
    }
    var enis = (box.getAttribute("data-enis") || "").split("\n").map(function (line) { return line.split("\t"); });
    var fragment = document.createDocumentFragment();
    (box.getAttribute("data-edges") || "").split("\n").forEach(function (line) {
      if (!line) {
        return;
      }
      var f = line.split("\t");
      var eni = enis[Number(f[0])] || [f[0], ""];
      var row = document.createElement("tr");
      row.className = "row";
      addIdCell(row, eni[0], eni[1]);
      addIdCell(row, f[1] || "", f[2] || "");
      addCell(row, f[3] || "");
      addCell(row, f[4] || "", "num");
      var cls = document.createElement("span");
      cls.className = EDGE_CLASSES[f[5]] === true ? "cls " + f[5] : "cls";
      cls.textContent = f[5] || "";
      addCell(row, "").appendChild(cls);
      addCell(row, f[6] || "");
      fragment.appendChild(row);
    });
    box.querySelector("tbody").appendChild(fragment);
    box.setAttribute("data-built", "");
  }

  /* Rows of the tables under `scope` that do not mention the query are hidden, unless the query names
     the group itself (then all of its rows are relevant). */
  function filterRows(scope, q, showAll) {
    Array.prototype.forEach.call(scope.querySelectorAll("tbody > tr.row"), function (row) {
      row.hidden = Boolean(q) && !showAll && textOf(row).indexOf(q) < 0;
    });
  }

  function filterGroupRows(group, q) {
    var summary = group.querySelector("summary");
    filterRows(group.querySelector(".body"), q, Boolean(summary) && textOf(summary).indexOf(q) >= 0);
  }

  function apply() {
    var state = current();
    var shown = 0;
    groups.forEach(function (group) {
      var visible = groupMatches(group, state);
      group.hidden = !visible;
      var row = overviewRows[group.id];
      if (row) {
        row.hidden = !visible;
      }
      if (visible) {
        shown += 1;
        if (group.open) {
          filterGroupRows(group, state.q);
        }
      }
    });
    Array.prototype.forEach.call(document.querySelectorAll("main > section:not(#overview):not(#groups)"),
      function (section) { filterRows(section, state.q, false); });
    counter.textContent = shown + " of " + groups.length + " groups";
  }

  function schedule() {
    window.clearTimeout(timer);
    timer = window.setTimeout(apply, groups.length > 200 ? 120 : 30);
  }

  /* Rows of a closed group are filtered when it opens, and its edge table is built when that opens:
     a search stays cheap on a large estate. */
  document.addEventListener("toggle", function (event) {
    var box = event.target;
    if (!box.classList || !box.open) {
      return;
    }
    if (box.classList.contains("edges")) {
      buildEdges(box);
    }
    var group = box.closest("details.group");
    if (group) {
      filterGroupRows(group, current().q);
    }
  }, true);

  function cellValue(row, index) {
    var cell = row.cells[index];
    if (!cell) {
      return "";
    }
    var value = cell.getAttribute("data-sort");
    return value === null ? cell.textContent.trim() : value;
  }

  function asNumber(value) {
    var cleaned = value.replace(/,/g, "");
    return cleaned !== "" && isFinite(cleaned) ? Number(cleaned) : NaN;
  }

  /* Sort a table body by one column: numeric when every non-empty cell is a number, else by text. */
  function sortBy(header) {
    var table = header.closest("table");
    var index = Array.prototype.indexOf.call(header.parentNode.children, header);
    var ascending = header.getAttribute("aria-sort") !== "ascending";
    Array.prototype.forEach.call(table.querySelectorAll("th[aria-sort]"), function (th) {
      th.removeAttribute("aria-sort");
    });
    header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows).map(function (row, position) {
      var value = cellValue(row, index);
      return { row: row, position: position, text: value, number: asNumber(value) };
    });
    var numeric = rows.every(function (r) {
      return r.text === "" || r.text === "\u2014" || !isNaN(r.number);
    });
    var direction = ascending ? 1 : -1;
    rows.sort(function (a, b) {
      var order;
      if (numeric) {
        order = (isNaN(a.number) ? -Infinity : a.number) - (isNaN(b.number) ? -Infinity : b.number);
      } else {
        order = a.text < b.text ? -1 : a.text > b.text ? 1 : 0;  /* code points: ids sort as written */
      }
      return order * direction || a.position - b.position;
    });
    var fragment = document.createDocumentFragment();
    rows.forEach(function (r) { fragment.appendChild(r.row); });
    body.appendChild(fragment);
  }

  document.addEventListener("click", function (event) {
    var header = event.target.closest ? event.target.closest("th.sortable") : null;
    if (header) {
      sortBy(header);
    }
  });

  function setOpen(open) {
    groups.forEach(function (group) {
      if (!group.hidden || !open) {
        group.open = open;
      }
    });
  }

  /* A link to a group or to one of its rules opens the group it points into. */
  function openTarget() {
    var id;
    try {
      id = decodeURIComponent(window.location.hash.slice(1));
    } catch (error) {
      return;
    }
    var target = id ? document.getElementById(id) : null;
    var group = target ? target.closest("details.group") : null;
    if (group) {
      group.open = true;
      target.scrollIntoView();
    }
  }

  query.addEventListener("input", schedule);
  actionFilter.addEventListener("change", apply);
  coverageFilter.addEventListener("change", apply);
  document.getElementById("expand").addEventListener("click", function () { setOpen(true); });
  document.getElementById("collapse").addEventListener("click", function () { setOpen(false); });
  window.addEventListener("hashchange", openTarget);
  document.addEventListener("keydown", function (event) {
    if (event.key === "/" && document.activeElement !== query) {
      event.preventDefault();
      query.focus();
    }
  });
  openTarget();
  if (query.value || actionFilter.value || coverageFilter.value) {
    apply();
  }
}());
