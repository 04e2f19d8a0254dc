// Progressive enhancement only: copy buttons, confirmations, live verification progress, charts.
(function () {
  "use strict";

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    return new Promise(function (resolve, reject) {
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.style.position = "absolute";
      area.style.left = "-9999px";
      document.body.appendChild(area);
      area.select();
      var ok = document.execCommand("copy");
      document.body.removeChild(area);
      ok ? resolve() : reject(new Error("copy refused"));
    });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button.copy");
    if (button) {
      var source = document.getElementById(button.dataset.copyTarget);
      if (!source) return;
      copyText(source.textContent).then(function () {
        button.textContent = "Copied";
        button.classList.add("copied");
        setTimeout(function () { button.textContent = "Copy"; button.classList.remove("copied"); }, 2000);
      }, function () { button.textContent = "Select and copy"; });
      return;
    }
    var confirmButton = event.target.closest("[data-confirm]");
    if (confirmButton && !window.confirm(confirmButton.dataset.confirm)) {
      event.preventDefault();
    }
  });

  function describe(p) {
    if (!p.runs_total) return "queued: waiting for a verifier worker";
    var text = p.runs_done + " of " + p.runs_total + " runs done";
    if (p.current_run) {
      text += " · now: " + p.current_run;
      if (p.current_iteration) {
        text += " (iteration " + p.current_iteration + (p.current_iterations_total ? " of " + p.current_iterations_total : "") + ")";
      }
    }
    return text;
  }

  function poll(panel) {
    var url = panel.dataset.progressUrl;
    var bar = document.getElementById("progress-bar");
    var text = document.getElementById("progress-text");
    function tick() {
      fetch(url, { headers: { Accept: "application/json" }, cache: "no-store" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (p) {
          if (!p) return;
          if (p.finished) { window.location.reload(); return; }
          if (p.runs_total) { bar.max = p.runs_total; bar.value = p.runs_done; }
          text.textContent = describe(p);
          panel.dataset.status = p.status;
        })
        .catch(function () {})
        .then(function () { setTimeout(tick, Number(panel.dataset.interval || 2000)); });
    }
    setTimeout(tick, Number(panel.dataset.interval || 2000));
  }

  function fallbackImage(box) {
    var img = document.createElement("img");
    img.src = box.dataset.fallback;
    img.alt = box.getAttribute("aria-label") || "chart";
    img.width = 750; img.height = 480;
    box.replaceChildren(img);
  }

  // On a phone: one legend column and slanted density ticks, so every label stays readable.
  function forPhone(spec) {
    (spec.layer || [spec]).forEach(function (layer) {
      var enc = layer.encoding || {};
      if (enc.color && enc.color.legend) { enc.color.legend.columns = 1; enc.color.legend.labelLimit = 300; }
      if (enc.x && enc.x.axis) {
        enc.x.axis.labelAngle = -45; enc.x.axis.labelAlign = "right"; enc.x.axis.labelFlush = false; enc.x.axis.labelOverlap = false;
      }
    });
    spec.height = 300;
    return spec;
  }

  // Charts: a Vega-Lite spec fetched from data-spec and drawn by the vendored vega-embed (tooltips on
  // hover, a click on a point opens its ticket). Without JavaScript the page shows the static image.
  function embedCharts() {
    document.querySelectorAll("[data-spec]").forEach(function (box) {
      if (!window.vegaEmbed) { if (box.dataset.fallback) fallbackImage(box); return; }
      var narrow = box.clientWidth < 560;
      fetch(box.dataset.spec, { headers: { Accept: "application/json" } })
        .then(function (r) { if (!r.ok) throw new Error("chart " + r.status); return r.json(); })
        .then(function (spec) { return window.vegaEmbed(box, narrow ? forPhone(spec) : spec, {
        renderer: "svg",
        actions: { export: true, source: false, compiled: false, editor: false },
        tooltip: { theme: "light" },
      }); }).then(function (result) {
        box.vegaView = result.view;
        box.dataset.ready = "1";
      }).catch(function () {
        if (box.dataset.fallback) fallbackImage(box);
        box.dataset.ready = "fallback";
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var panel = document.getElementById("progress");
    if (panel && window.fetch) poll(panel);
    embedCharts();
  });
})();
