// phone-enrich report.html: hands each chart configuration (built in Python, see
// pipeline/report_charts.py) to Chart.js. Labels are drawn on canvas: no HTML is built
// from the data here.
(function () {
  "use strict";
  var configs = JSON.parse(document.getElementById("report-charts").textContent);
  var holder = document.getElementById("charts");
  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;
  configs.forEach(function (config, i) {
    var box = document.createElement("div");
    box.className = "chart";
    var canvas = document.createElement("canvas");
    canvas.id = "chart-" + i;
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label", config.options.plugins.title.text);
    box.appendChild(canvas);
    holder.appendChild(box);
    new Chart(canvas, config);
  });
  document.body.setAttribute("data-charts-rendered", String(configs.length));
})();
