// Charts of the evaluation page. Data comes from the json_script block #eval-data; labels (configuration and slice
// names, which users choose) only ever reach the canvas as text, never HTML.
(function () {
  "use strict";
  const source = document.getElementById("eval-data");
  if (!source || typeof Chart === "undefined") return;
  const data = JSON.parse(source.textContent);
  const palette = ["#2f5bd3", "#d9822b", "#1f7a3f", "#b42318", "#7a3fb4", "#0e8a8a", "#8a6d0e", "#5d6677"];
  const colour = (i) => palette[i % palette.length];

  // Error bars: a vertical line with caps from low to high over each bar (the 95 % CI of the mean).
  const errorBars = {
    id: "errorBars",
    afterDatasetsDraw(chart) {
      const ctx = chart.ctx;
      const y = chart.scales.y;
      chart.data.datasets.forEach((ds, i) => {
        if (!ds.errorBars || !chart.isDatasetVisible(i)) return;
        chart.getDatasetMeta(i).data.forEach((bar, j) => {
          const e = ds.errorBars[j];
          if (!e || e.low === null || e.high === null) return;
          const top = y.getPixelForValue(e.high);
          const bottom = y.getPixelForValue(e.low);
          const cap = Math.min(6, (bar.width || 8) / 3);
          ctx.save();
          ctx.strokeStyle = "#1d2330";
          ctx.lineWidth = 1.2;
          ctx.beginPath();
          ctx.moveTo(bar.x, top); ctx.lineTo(bar.x, bottom);
          ctx.moveTo(bar.x - cap, top); ctx.lineTo(bar.x + cap, top);
          ctx.moveTo(bar.x - cap, bottom); ctx.lineTo(bar.x + cap, bottom);
          ctx.stroke();
          ctx.restore();
        });
      });
    },
  };

  const common = { responsive: true, maintainAspectRatio: false, animation: false };

  const recallCanvas = document.getElementById("chart-recall");
  if (recallCanvas) {
    new Chart(recallCanvas, {
      type: "line",
      data: {
        labels: data.recall.ks.map((k) => "@" + k),
        datasets: data.configs.map((label, i) => ({
          label: label, data: data.recall.series[label], borderColor: colour(i), backgroundColor: colour(i), tension: 0,
        })),
      },
      options: { ...common, scales: { y: { min: 0, max: 1, title: { display: true, text: "mean recall" } } } },
    });
  }

  const sliceCanvas = document.getElementById("chart-slices");
  const sliceSelect = document.getElementById("slice-metric");
  if (sliceCanvas) {
    const datasetsFor = (metric) => data.configs.map((label, i) => {
      const values = data.slices.values[metric][label];
      return {
        label: label,
        data: values.map((v) => v.mean),
        errorBars: values.map((v) => ({ low: v.low, high: v.high })),
        backgroundColor: colour(i) + "99",
        borderColor: colour(i),
        borderWidth: 1,
      };
    });
    const initial = sliceSelect ? sliceSelect.value : data.slices.default_metric;
    const sliceChart = new Chart(sliceCanvas, {
      type: "bar",
      data: { labels: data.slices.names, datasets: datasetsFor(initial in data.slices.values ? initial : data.slices.default_metric) },
      options: { ...common, scales: { y: { min: 0, max: 1 } } },
      plugins: [errorBars],
    });
    if (sliceSelect) {
      sliceSelect.addEventListener("change", () => {
        sliceChart.data.datasets = datasetsFor(sliceSelect.value);
        sliceChart.update();
      });
    }
  }

  const diffCanvas = document.getElementById("chart-diff");
  if (diffCanvas) {
    const labels = Object.keys(data.diff.series);
    if (labels.length === 0) {
      diffCanvas.replaceWith(Object.assign(document.createElement("p"), { className: "muted", textContent: "Only one configuration: nothing to compare." }));
    } else {
      new Chart(diffCanvas, {
        type: "bar",
        data: {
          labels: data.diff.centers.map((c) => (c > 0 ? "+" : "") + c.toFixed(1)),
          datasets: labels.map((label, i) => ({
            label: label + " − " + data.baseline, data: data.diff.series[label], backgroundColor: colour(data.configs.indexOf(label)) + "99",
          })),
        },
        options: { ...common, scales: { x: { title: { display: true, text: "candidate − baseline (bin centre)" } }, y: { title: { display: true, text: "queries" } } } },
      });
    }
  }

  const top1 = document.getElementById("top1-charts");
  if (top1) {
    data.configs.forEach((label, i) => {
      const h = data.top1[label];
      if (!h) return;
      const box = document.createElement("div");
      const title = document.createElement("div");
      title.className = "muted";
      title.textContent = label + " (median " + h.median.toPrecision(4) + ")";
      const wrap = document.createElement("div");
      wrap.className = "chart-box";
      const canvas = document.createElement("canvas");
      wrap.appendChild(canvas);
      box.append(title, wrap);
      top1.appendChild(box);
      new Chart(canvas, {
        type: "bar",
        data: { labels: h.centers.map(String), datasets: [{ label: "queries", data: h.counts, backgroundColor: colour(i) + "99" }] },
        options: { ...common, plugins: { legend: { display: false } }, scales: { x: { title: { display: true, text: "top-1 score" } } } },
      });
    });
  }
})();
