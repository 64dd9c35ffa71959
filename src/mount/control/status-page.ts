/**
 * The status page a mount serves at / on --control-listen: the peers, their
 * state and lag, and a live chart of each peer's change latency (p50 per
 * second), refreshed every second from /status.json. One self-contained page:
 * no build step, no third-party script, nothing fetched from elsewhere.
 */
export const STATUS_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>mirrorfs status</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; background: #fafafa; }
  h1 { font-size: 20px; margin: 0 0 4px; }
  .meta { color: #555; margin-bottom: 16px; }
  table { border-collapse: collapse; background: white; margin-bottom: 16px; }
  th, td { border: 1px solid #ddd; padding: 4px 10px; text-align: left; white-space: nowrap; }
  td.num { text-align: right; font-variant-numeric: tabular-nums; }
  .in-sync { color: #176f2c; font-weight: 600; }
  .catching-up { color: #a15c00; font-weight: 600; }
  .down { color: #b00020; font-weight: 600; }
  .swatch { display: inline-block; width: 10px; height: 10px; margin-right: 6px; border-radius: 2px; }
  canvas { background: white; border: 1px solid #ddd; }
  #error { color: #b00020; }
</style>
</head>
<body>
<h1>mirrorfs <span id="mountpoint"></span></h1>
<div class="meta" id="meta">loading...</div>
<div id="error"></div>
<div id="progress"></div>
<table>
  <thead><tr><th>peer</th><th>route</th><th>state</th><th>connected</th><th>lag (changes)</th><th>lag (bytes)</th><th>p50 ms</th><th>p99 ms</th><th>operations</th><th>in flight</th></tr></thead>
  <tbody id="peers"></tbody>
</table>
<div>change latency per peer, p50 of each second (ms)</div>
<canvas id="chart" width="900" height="280"></canvas>
<script>
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b'];
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
const ms = (us) => (us === null || us === undefined ? '-' : (us / 1000).toFixed(2));
const bytes = (b) => (b < 1024 ? b + ' B' : b < 1048576 ? (b / 1024).toFixed(1) + ' KiB' : (b / 1048576).toFixed(1) + ' MiB');

function drawChart(series, names) {
  const c = $('chart');
  const g = c.getContext('2d');
  g.clearRect(0, 0, c.width, c.height);
  const left = 50, bottom = c.height - 24, top = 10, right = c.width - 10;
  const now = Date.now();
  const span = 120000;
  let max = 1;
  for (const n of names) for (const p of series[n] || []) if (p.t > now - span) max = Math.max(max, p.p50Us / 1000);
  max = Math.ceil(max * 1.1);
  g.strokeStyle = '#ccc'; g.fillStyle = '#555'; g.font = '11px sans-serif';
  for (let i = 0; i <= 4; i++) {
    const y = bottom - ((bottom - top) * i) / 4;
    g.beginPath(); g.moveTo(left, y); g.lineTo(right, y); g.stroke();
    g.fillText((max * i / 4).toFixed(1), 4, y + 4);
  }
  g.fillText('-120 s', left, c.height - 6); g.fillText('now', right - 24, c.height - 6);
  names.forEach((n, i) => {
    const pts = (series[n] || []).filter((p) => p.t > now - span);
    g.strokeStyle = COLORS[i % COLORS.length]; g.fillStyle = g.strokeStyle; g.lineWidth = 2;
    g.beginPath();
    pts.forEach((p, j) => {
      const x = left + ((p.t - (now - span)) / span) * (right - left);
      const y = bottom - (p.p50Us / 1000 / max) * (bottom - top);
      if (j === 0) g.moveTo(x, y); else g.lineTo(x, y);
    });
    g.stroke();
    for (const p of pts) {
      const x = left + ((p.t - (now - span)) / span) * (right - left);
      const y = bottom - (p.p50Us / 1000 / max) * (bottom - top);
      g.fillRect(x - 2, y - 2, 4, 4);
    }
  });
}

async function refresh() {
  try {
    const r = await fetch('/status.json', { cache: 'no-store' });
    const s = await r.json();
    $('error').textContent = '';
    $('mountpoint').textContent = s.mountpoint;
    const st = s.status;
    $('meta').textContent = st
      ? 'phase ' + s.phase + ' · epoch ' + st.epoch + ' · last change ' + st.seq + ' · ack ' + st.ackPolicy + ' (' + st.requiredAcks + ' of ' + st.peers.length + ') · ' + st.ackMode + ' · in flight ' + st.inFlight + (st.fenced ? ' · FENCED: ' + st.fenced : '')
      : 'phase ' + s.phase;
    const p = s.progress;
    $('progress').textContent = p && p.running ? p.job + ': ' + p.done + ' / ' + p.total + ' ' + p.unit : '';
    const names = st ? st.peers.map((x) => x.name) : [];
    $('peers').innerHTML = (st ? st.peers : []).map((x, i) =>
      '<tr data-peer="' + esc(x.name) + '">' +
      '<td><span class="swatch" style="background:' + COLORS[i % COLORS.length] + '"></span>' + esc(x.name) + '</td>' +
      '<td>' + esc(x.route) + '</td>' +
      '<td class="' + esc(x.state) + '" data-field="state">' + esc(x.state) + (x.behind ? ' (' + esc(x.behind.reason) + ')' : '') + '</td>' +
      '<td>' + (x.connected ? 'yes' : 'no') + '</td>' +
      '<td class="num" data-field="lag-ops">' + (x.behind ? x.behind.ops : 0) + '</td>' +
      '<td class="num">' + bytes(x.behind ? x.behind.bytes : 0) + '</td>' +
      '<td class="num" data-field="p50">' + ms(x.latencyUsP50) + '</td>' +
      '<td class="num">' + ms(x.latencyUsP99) + '</td>' +
      '<td class="num" data-field="operations">' + x.operations + '</td>' +
      '<td class="num">' + x.inFlight + '</td></tr>').join('');
    drawChart(s.latency || {}, names);
    document.body.dataset.updated = String(Date.now());
  } catch (err) {
    $('error').textContent = 'cannot reach the mount: ' + err.message;
  }
}
refresh();
setInterval(refresh, 1000);
</script>
</body>
</html>
`;
