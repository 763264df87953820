// Small enhancements on top of server-rendered pages. Everything works without this file;
// the Content-Security-Policy allows scripts from /static only, so nothing here is inline.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  // Bulk selection: a "select all" box, and a live count of what is selected.
  function updateSelection(scope) {
    var boxes = scope.querySelectorAll('input[type="checkbox"][name="ids"]');
    var checked = 0;
    boxes.forEach(function (box) { if (box.checked) checked += 1; });
    var all = scope.querySelector("[data-select-all]");
    if (all) {
      all.checked = boxes.length > 0 && checked === boxes.length;
      all.indeterminate = checked > 0 && checked < boxes.length;
    }
    var count = scope.querySelector("[data-selected-count]");
    if (count) count.textContent = checked ? checked + " selected:" : "With selected:";
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    var table = target.closest && target.closest("#jobs-table");
    if (!table) return;
    if (target.matches("[data-select-all]")) {
      table.querySelectorAll('input[type="checkbox"][name="' + target.dataset.selectAll + '"]').forEach(function (box) {
        box.checked = target.checked;
      });
    }
    if (target.matches("[data-select-all], input[name=ids]")) updateSelection(table);
  });

  // Payload editor: say at once whether the JSON parses; the server checks again on save.
  function checkJson(area) {
    var status = document.getElementById(area.dataset.json);
    if (!status) return;
    var text = area.value.trim();
    if (!text) { status.textContent = "Empty: the target gets {}."; area.removeAttribute("aria-invalid"); status.classList.remove("bad"); return; }
    try {
      var value = JSON.parse(text);
      if (value === null || typeof value !== "object" || Array.isArray(value)) throw new Error("the payload must be a JSON object, like {\"key\": \"value\"}");
      status.textContent = "Valid JSON.";
      status.classList.remove("bad");
      area.removeAttribute("aria-invalid");
    } catch (error) {
      status.textContent = "Not valid JSON yet: " + error.message;
      status.classList.add("bad");
      area.setAttribute("aria-invalid", "true");
    }
  }

  document.addEventListener("input", function (event) {
    if (event.target.matches && event.target.matches("textarea[data-json]")) checkJson(event.target);
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-format-json]");
    if (!button) return;
    var area = document.getElementById(button.dataset.formatJson);
    try {
      area.value = JSON.stringify(JSON.parse(area.value), null, 2);
    } catch (error) { /* checkJson explains */ }
    checkJson(area);
    area.focus();
  });

  // A run row polls itself and is replaced on every answer, and the history is replaced when
  // new runs arrive: keep open what was open.
  var openRuns = new Set();
  document.addEventListener("toggle", function (event) {
    var run = event.target.parentElement;
    if (!run || !run.classList || !run.classList.contains("run") || !run.id) return;
    if (event.target.open) openRuns.add(run.id); else openRuns.delete(run.id);
  }, true);
  document.addEventListener("htmx:load", function (event) {
    var element = event.detail.elt;
    if (!element.querySelectorAll) return;
    var runs = element.matches("li.run") ? [element] : element.querySelectorAll("li.run");
    runs.forEach(function (run) {
      var details = openRuns.has(run.id) && run.querySelector("details");
      if (details) details.open = true;
    });
  });

  // After a rejected form, put the keyboard on the list of problems.
  document.addEventListener("DOMContentLoaded", function () {
    var summary = document.getElementById("form-errors") || document.getElementById("conflict");
    if (summary) { summary.setAttribute("tabindex", "-1"); summary.focus(); }
  });
})();
