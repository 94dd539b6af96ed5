// Drift charts of a release page: daily median top-1 score and weekly histograms (data from json_script).
(function () {
  const node = document.getElementById("drift-data");
  if (!node || typeof Chart === "undefined") return;
  const data = JSON.parse(node.textContent);
  const median = document.getElementById("chart-drift-median");
  if (median && data.days.length) {
    new Chart(median, {
      type: "line",
      data: { labels: data.days, datasets: [{ label: "median top-1 score", data: data.medians, tension: 0.2 }] },
      options: { animation: false, maintainAspectRatio: false },
    });
  }
  const hist = document.getElementById("chart-drift-hist");
  const weeks = Object.keys(data.weeks || {});
  if (hist && weeks.length) {
    const labels = data.edges.slice(0, -1).map((e, i) => `${e.toFixed(2)}–${data.edges[i + 1].toFixed(2)}`);
    new Chart(hist, {
      type: "bar",
      data: { labels, datasets: weeks.map((w) => ({ label: w, data: data.weeks[w] })) },
      options: { animation: false, maintainAspectRatio: false },
    });
  }
})();
