// Keyboard-first answer review. Every action is also a plain form control; this only drives them from the keyboard.
// The form is swapped by htmx after each save, so everything is looked up again on each key press.
(function () {
  "use strict";
  var current = 0;
  var touchedHallucination = false;
  var started = performance.now();

  function form() { return document.getElementById("review-form"); }
  function items() { var f = form(); return f ? Array.prototype.slice.call(f.querySelectorAll(".item")) : []; }

  function focusItem(i) {
    var all = items();
    if (!all.length) return;
    current = Math.max(0, Math.min(all.length - 1, i));
    all.forEach(function (el, k) { el.classList.toggle("current", k === current); });
    all[current].scrollIntoView({ block: "nearest" });
  }

  function check(scope, name, value) {
    var input = scope.querySelector('input[type=radio][name="' + name + '"][value="' + value + '"]');
    if (input) { input.checked = true; }
    return !!input;
  }

  function checked(scope, name) {
    var input = scope.querySelector('input[type=radio][name="' + name + '"]:checked');
    return input ? input.value : null;
  }

  function toggle(name) {
    var f = form();
    check(f, name, checked(f, name) === "yes" ? "no" : "yes");
  }

  // Hallucination follows the claim labels until the reviewer sets it by hand.
  function deriveHallucination() {
    if (touchedHallucination) return;
    var f = form();
    var claims = f.querySelectorAll(".claim-item");
    var any = false, all = true;
    claims.forEach(function (el) {
      var v = checked(el, "claim_" + el.dataset.claim);
      if (v === null) all = false;
      if (v === "unsupported" || v === "contradicted") any = true;
    });
    if (any) check(f, "hallucination", "yes");
    else if (all && claims.length) check(f, "hallucination", "no");
  }

  function cycleSupportedBy(el) {
    var radios = Array.prototype.slice.call(el.querySelectorAll('input[name="by_' + el.dataset.claim + '"]'));
    if (!radios.length) return;
    var i = radios.findIndex(function (r) { return r.checked; });
    radios[(i + 1) % radios.length].checked = true;
  }

  function flag(el, target) {
    var f = form();
    if (!el) return;
    var retrieved = el.dataset.retrieved ? el.dataset.retrieved.split(",")[0] : "";
    if (el.dataset.kind === "claim") {
      var by = checked(el, "by_" + el.dataset.claim);
      if (by) retrieved = by;
    }
    var status = document.getElementById("flag-status");
    if (!retrieved) { status.textContent = "This claim cites no passage."; return; }
    var body = new URLSearchParams();
    body.set("answer", f.dataset.answer);
    body.set("retrieved", retrieved);
    body.set("claim", el.dataset.claim || "");
    body.set("target", target);
    body.set("reason", "flagged during answer review");
    body.set("csrfmiddlewaretoken", f.querySelector("input[name=csrfmiddlewaretoken]").value);
    fetch(f.dataset.flagUrl, { method: "POST", body: body, headers: { "HX-Request": "true" }, credentials: "same-origin" })
      .then(function (r) { return r.text().then(function (t) { return [r.ok, t]; }); })
      .then(function (res) {
        var tmp = document.createElement("div");
        tmp.innerHTML = res[1];  // the server escapes everything it echoes
        status.textContent = tmp.textContent;
        status.className = res[0] ? "flag-done" : "error";
      });
  }

  function setSeconds() {
    var f = form();
    if (f) f.querySelector("input[name=seconds]").value = ((performance.now() - started) / 1000).toFixed(1);
  }

  document.addEventListener("submit", function (e) { if (e.target === form()) setSeconds(); }, true);
  document.addEventListener("htmx:configRequest", function (e) {
    if (e.detail.elt === form()) e.detail.parameters["seconds"] = ((performance.now() - started) / 1000).toFixed(1);
  });
  document.addEventListener("htmx:afterSwap", function () {
    current = 0; touchedHallucination = false; started = performance.now(); focusItem(0);
  });
  document.addEventListener("DOMContentLoaded", function () { focusItem(0); });

  document.addEventListener("keydown", function (e) {
    var f = form();
    if (!f || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.target.matches && e.target.matches("input[type=text], textarea, select")) return;
    var all = items();
    var el = all[current];
    var kind = el ? el.dataset.kind : "";
    var k = e.key;
    var claimKeys = { s: "supported", p: "partial", u: "unsupported", x: "contradicted" };
    var citationKeys = { c: "correct", w: "wrong", i: "irrelevant" };
    var handled = true;
    if (k === "j" || k === "ArrowDown") focusItem(current + 1);
    else if (k === "k" || k === "ArrowUp") focusItem(current - 1);
    else if (kind === "claim" && claimKeys[k]) { check(el, "claim_" + el.dataset.claim, claimKeys[k]); deriveHallucination(); focusItem(current + 1); }
    else if (kind === "claim" && k === "b") cycleSupportedBy(el);
    else if (kind === "citation" && citationKeys[k]) { el.querySelector('input[value="' + citationKeys[k] + '"]').checked = true; focusItem(current + 1); }
    else if (k === "h") { toggle("hallucination"); touchedHallucination = true; }
    else if (k === "a") toggle("should_abstain");
    else if (k.length === 1 && "12345".indexOf(k) >= 0) check(f, "usefulness", k);
    else if (k === "f" || k === "g") flag(el, k === "f" ? "judging" : "audit");
    else if (k === "Enter") { setSeconds(); f.requestSubmit(); }
    else handled = false;
    if (handled) e.preventDefault();
  });
})();
