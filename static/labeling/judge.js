// Keyboard-first judging: digits grade, s marks the selected text as evidence, x can't judge, e explanation,
// u undo, j/k next/previous, ? help. Without this script the pane is a plain form that works the same.
(function () {
  "use strict";
  document.documentElement.classList.add("js");
  let spans = [];
  let started = performance.now();
  let busy = false;

  const $ = (id) => document.getElementById(id);

  function init() {
    started = performance.now();
    const input = $("evidence-input");
    try {
      spans = input ? JSON.parse(input.value || "[]") : [];
      if (!Array.isArray(spans)) spans = [];
    } catch (e) {
      spans = [];
    }
    render();
  }

  function render() {
    const input = $("evidence-input");
    const list = $("span-list");
    const text = $("passage-text");
    if (!input || !list) return;
    input.value = JSON.stringify(spans);
    list.replaceChildren();
    const full = text ? text.textContent : "";
    spans.forEach(([s, e]) => {
      const li = document.createElement("li");
      li.textContent = s + "–" + e + ": “" + full.slice(s, e) + "”"; // textContent: never markup
      list.appendChild(li);
    });
  }

  function offsetIn(container, node, off) {
    const r = document.createRange();
    r.setStart(container, 0);
    r.setEnd(node, off);
    return r.toString().length; // characters of the passage text, whatever <mark> elements sit between
  }

  function markSelection() {
    const sel = window.getSelection();
    const text = $("passage-text");
    if (!sel || sel.rangeCount === 0 || !text) return;
    const r = sel.getRangeAt(0);
    if (r.collapsed || !text.contains(r.startContainer) || !text.contains(r.endContainer)) return;
    const full = text.textContent;
    let s = offsetIn(text, r.startContainer, r.startOffset);
    let e = offsetIn(text, r.endContainer, r.endOffset);
    while (s < e && /\s/.test(full[s])) s++;
    while (e > s && /\s/.test(full[e - 1])) e--;
    if (e <= s) return;
    spans.push([s, e]);
    sel.removeAllRanges();
    render();
  }

  function stampSeconds(form) {
    const field = form && form.querySelector("input[name=seconds]");
    if (field) field.value = ((performance.now() - started) / 1000).toFixed(2);
  }

  function submitGrade(grade) {
    const form = $("judge-form");
    if (!form) return;
    const button = form.querySelector('button[name=grade][value="' + grade + '"]');
    if (!button) return;
    const cant = $("cant-judge");
    if (cant) cant.checked = false;
    render();
    button.click(); // a click, so htmx (and a plain form) sends the button's grade
  }

  function submitCant() {
    const form = $("judge-form");
    const cant = $("cant-judge");
    if (!form || !cant) return;
    cant.checked = true;
    form.querySelector("button[name=cant]").click();
  }

  function go(url, method) {
    if (!url || busy) return;
    htmx.ajax(method || "GET", url, { source: "#judge-pane", target: "#judge-pane", swap: "outerHTML" });
  }

  function toggleHelp(show) {
    const help = $("shortcut-help");
    if (help) help.hidden = show === undefined ? !help.hidden : !show;
  }

  document.addEventListener("submit", (ev) => stampSeconds(ev.target), true);
  document.addEventListener("htmx:beforeRequest", () => { busy = true; });
  document.addEventListener("htmx:afterRequest", () => { busy = false; });
  document.addEventListener("htmx:afterSwap", init);
  document.addEventListener("DOMContentLoaded", init);
  document.addEventListener("click", (ev) => {
    if (ev.target.closest("[data-close-help]")) toggleHelp(false);
  });

  document.addEventListener("keydown", (ev) => {
    const pane = $("judge-pane");
    if (!pane || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const target = ev.target;
    const typing = target && (target.tagName === "TEXTAREA" || target.tagName === "SELECT" ||
      (target.tagName === "INPUT" && !["checkbox", "radio", "button", "submit"].includes(target.type)));
    if (typing) {
      if (ev.key === "Escape") target.blur();
      else if (ev.key === "Enter" && target.id === "cant-reason") { ev.preventDefault(); submitCant(); }
      return;
    }
    if (busy) { ev.preventDefault(); return; }
    const grades = (pane.dataset.grades || "").split(",");
    if (grades.includes(ev.key)) { ev.preventDefault(); submitGrade(ev.key); return; }
    switch (ev.key) {
      case "s": ev.preventDefault(); markSelection(); break;
      case "x": {
        ev.preventDefault();
        const box = $("cant-box");
        if (box) { box.open = true; $("cant-judge").checked = true; $("cant-reason").focus(); }
        break;
      }
      case "e": {
        ev.preventDefault();
        const box = $("explanation-box");
        if (box) { box.open = true; $("explanation").focus(); }
        break;
      }
      case "u":
        ev.preventDefault();
        if (spans.length) { spans.pop(); render(); } else go(pane.dataset.undoUrl, "POST");
        break;
      case "j": ev.preventDefault(); go(pane.dataset.nextUrl); break;
      case "k": ev.preventDefault(); go(pane.dataset.prevUrl); break;
      case "?": ev.preventDefault(); toggleHelp(); break;
      case "Escape": toggleHelp(false); break;
    }
  });
})();
