// IncidentOS pages: keyboard navigation, and the live investigation stream over Server-Sent Events.
// Every piece of text from the server is placed with textContent (never innerHTML): alert text and
// model output are untrusted. The browser's EventSource reconnects by itself after a dropped
// connection and sends Last-Event-ID (the last event's seq); the server resumes right after it.
"use strict";

(function () {
  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  // keyboard: j/k move between rows, Enter opens a row, g then i/m/b/a goes to a page
  function keyboard() {
    let pendingG = false;
    const pages = { i: 0, m: 1, b: 2, a: 3 };
    document.addEventListener("keydown", function (event) {
      const target = event.target;
      if (target && /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName)) return;
      if (event.ctrlKey || event.metaKey || event.altKey) return;
      const rows = Array.from(document.querySelectorAll("[data-nav]"));
      const at = rows.indexOf(document.activeElement);
      if (pendingG && event.key in pages) {
        const link = document.querySelectorAll("header.top nav a")[pages[event.key]];
        if (link) link.click();
        pendingG = false;
        return;
      }
      pendingG = event.key === "g";
      if ((event.key === "j" || event.key === "k") && rows.length) {
        const next = event.key === "j" ? Math.min(at + 1, rows.length - 1) : Math.max(at - 1, 0);
        rows[next].focus();
        rows[next].scrollIntoView({ block: "nearest" });
        event.preventDefault();
      } else if (event.key === "Enter" && at >= 0) {
        const href = rows[at].getAttribute("data-href");
        const link = rows[at].querySelector("a[href]");
        if (href) window.location.assign(href);
        else if (link) link.click();
      }
    });
  }

  function fillRows(tbody, rows) {
    if (!tbody) return;
    const fresh = rows.map(function (pair) {
      const tr = el("tr");
      tr.appendChild(el(tbody.id.endsWith("-summary") ? "th" : "td", pair[0]));
      tr.appendChild(el("td", pair[1], "num"));
      return tr;
    });
    tbody.replaceChildren.apply(tbody, fresh);
  }

  function fillPanel(investigationId, panel) {
    ["summary", "by_task", "by_model", "calls_by_tier"].forEach(function (name) {
      fillRows(document.getElementById("inv-" + investigationId + "-" + name), panel[name] || []);
    });
  }

  function fillAnalysis(analysis) {
    const body = document.querySelector("[data-analysis-body]");
    if (!body || !analysis) return;
    const root = el("p", analysis.root_cause, "root");
    root.setAttribute("data-root-cause", "");
    const parts = [root];
    const confidence = analysis.confidence || {};
    const line = el("p");
    line.appendChild(el("span", "category "));
    const category = el("strong", analysis.category);
    category.setAttribute("data-category", "");
    line.appendChild(category);
    line.appendChild(el("span", " · confidence: "));
    const stated = el("span", confidence.supporting + " of " + confidence.active +
      " active findings support it" + (confidence.validated_by ? "; validated answer by " + confidence.validated_by
        : "; analyzers' answer (no model answer passed validation)"));
    stated.setAttribute("data-confidence", "");
    line.appendChild(stated);
    if (analysis.stopped_by) line.appendChild(el("span", " · stopped by " + analysis.stopped_by));
    parts.push(line, el("h3", "Actions"));
    const actions = el("ul");
    actions.setAttribute("data-actions", "");
    (analysis.remediation || []).forEach(function (step) { actions.appendChild(el("li", step)); });
    (analysis.runbooks || []).forEach(function (r) { actions.appendChild(el("li", "runbook: " + r)); });
    actions.appendChild(el("li", "read-only tools called: " + (analysis.tool_calls || []).join(", ")));
    parts.push(actions, el("h3", "Findings and their evidence"));
    const findings = el("ol");
    findings.setAttribute("data-findings", "");
    (analysis.findings || []).forEach(function (finding) {
      const item = el("li");
      const own = el("a", finding.active ? "ACTIVE" : "recovered");
      own.href = "#" + finding.anchor;
      item.append(own, " " + finding.statement);
      const cites = el("ul", null, "evidence");
      (finding.evidence || []).forEach(function (cite) {
        const li = el("li");
        if (cite.anchor) {
          const link = el("a", cite.kind);
          link.href = "#" + cite.anchor;
          li.appendChild(link);
        } else {
          li.appendChild(el("span", cite.kind));
        }
        li.append(": " + cite.quote);
        cites.appendChild(li);
      });
      item.appendChild(cites);
      findings.appendChild(item);
    });
    parts.push(findings);
    body.replaceChildren.apply(body, parts);
  }

  function stream() {
    const list = document.querySelector("ol[data-stream][data-stream-url]");
    if (!list || !window.EventSource) return;
    const box = list.parentElement;
    const status = document.querySelector("[data-status]");
    const after = Number(list.getAttribute("data-last-seq") || "0");
    const source = new EventSource(list.getAttribute("data-stream-url") + "?after=" + after);
    source.addEventListener("investigation", function (message) {
      const body = JSON.parse(message.data);
      const line = body.line;
      const atBottom = box.scrollTop + box.clientHeight >= box.scrollHeight - 8;
      const item = el("li", null, line.tone);
      item.id = line.anchor;
      item.setAttribute("data-seq", String(line.seq));
      item.append(el("span", "[" + line.tag + "]", "tag"), el("span", line.text, "text"));
      list.appendChild(item);
      list.setAttribute("data-last-seq", String(line.seq));
      if (atBottom) box.scrollTop = box.scrollHeight;
      if (body.panel) fillPanel(body.event.investigation_id, body.panel);
      if (body.analysis) fillAnalysis(body.analysis);
      if (status) status.textContent = line.type === "investigation_finished" ? "finished" : "running";
    });
    source.addEventListener("end", function () {
      source.close();
      list.setAttribute("data-stream-ended", "true");
      if (status && status.textContent === "running") status.textContent = "ended";
    });
  }

  function start() {
    keyboard();
    stream();
  }
  // deferred, or inline at the end of the body (the snapshot): the document is parsed either way
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start, { once: true });
  else start();
})();
