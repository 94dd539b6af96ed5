// Chart of a job's metrics (a training loss by step). Data comes from the json_script block #job-metric-data:
// {name: [[step, value], ...]}, already downsampled by the server; names reach the canvas only as text.
(function () {
  "use strict";
  const source = document.getElementById("job-metric-data");
  const canvas = document.getElementById("job-metric-chart");
  if (!source || !canvas || typeof Chart === "undefined") return;
  const series = JSON.parse(source.textContent);
  const palette = ["#2f5bd3", "#d9822b", "#1f7a3f", "#b42318", "#7a3fb4", "#0e8a8a", "#8a6d0e", "#5d6677"];
  const datasets = Object.keys(series).map((name, i) => ({
    label: name,
    data: series[name].map(([step, value]) => ({ x: step, y: value })),
    borderColor: palette[i % palette.length],
    backgroundColor: palette[i % palette.length],
    pointRadius: series[name].length > 60 ? 0 : 2,
    borderWidth: 1.5,
    tension: 0,
  }));
  new Chart(canvas, {
    type: "line",
    data: { datasets },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      parsing: false,
      interaction: { mode: "nearest", intersect: false },
      scales: { x: { type: "linear", title: { display: true, text: "step" } }, y: { title: { display: true, text: "value" } } },
    },
  });
})();
