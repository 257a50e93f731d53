// Time-series charts per agent with uPlot (vendored from npm into /static/vendor, no CDN).
const MAX_POINTS = 240;
const SERIES = [
  { key: "tokens", title: "tokens / run", color: "#58a6ff" },
  { key: "confidence", title: "confidence", color: "#3fb950" },
  { key: "latency_ms", title: "latency ms", color: "#d29922" },
];

export class AgentCharts {
  constructor(container) {
    this.container = container;
    this.points = [];
    this.plots = [];
    this.boxes = SERIES.map((s) => {
      const box = document.createElement("div");
      box.className = "chart";
      box.dataset.series = s.key;
      const title = document.createElement("div");
      title.className = "title";
      title.textContent = s.title;
      box.append(title);
      container.append(box);
      return box;
    });
  }

  set(points) {
    this.points = points.slice(-MAX_POINTS);
    this.draw();
  }

  push(point) {
    this.points.push(point);
    if (this.points.length > MAX_POINTS) this.points.shift();
    this.draw();
  }

  data(key) {
    const xs = this.points.map((p) => p.ts);
    const ys = this.points.map((p) => (p[key] === undefined ? null : p[key]));
    return [xs, ys];
  }

  draw() {
    if (!window.uPlot) return;
    SERIES.forEach((s, i) => {
      const data = this.data(s.key);
      const box = this.boxes[i];
      box.dataset.points = String(data[0].length);
      box.dataset.last = String(data[0].length ? data[0][data[0].length - 1] : "");
      if (this.plots[i]) { this.plots[i].setData(data); return; }
      const width = Math.max(180, box.clientWidth - 4);
      this.plots[i] = new window.uPlot({
        width, height: 120, legend: { show: false }, cursor: { show: false },
        scales: { x: { time: true } },
        axes: [{ stroke: "#8a96a3", grid: { stroke: "#2b323b" } },
               { stroke: "#8a96a3", grid: { stroke: "#2b323b" }, size: 40 }],
        series: [{}, { stroke: s.color, width: 1.5, spanGaps: true }],
      }, data, box);
    });
  }
}
