// The live view page: pictures and figures from the WebSocket /live, the overlay drawn over the
// frame (it arrives as its own transparent PNG at the model's resolution, drawn by
// src/image/overlay.ts on the device), the
// threshold slider (POST /api/threshold: the fleet set-threshold path) and a PNG snapshot of what
// the canvas shows. Plain browser JavaScript: no framework, no build step.
'use strict';

// With a token the server answers /?token=TOKEN with a cookie and a redirect to /, and the
// cookie carries it from then on; a token still in the address (a cookie refused) is passed on.
const params = new URLSearchParams(location.search);
const token = params.get('token');
const withToken = (path) => (token ? `${path}${path.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}` : path);
const $ = (id) => document.getElementById(id);
const canvas = $('view');
const ctx = canvas.getContext('2d');
let last = null; // { frame, jpeg: ImageBitmap, overlay: ImageBitmap }
let sliderBusy = false;
let decoding = false;

function b64ToBlob(b64, type) {
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new Blob([bytes], { type });
}

function draw() {
  if (!last) return;
  if (canvas.width !== last.width || canvas.height !== last.height) {
    canvas.width = last.width;
    canvas.height = last.height;
  }
  ctx.drawImage(last.jpeg, 0, 0);
  if ($('overlay').checked) {
    // The layer comes at the model's resolution: scaled up as blocks, never blurred.
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(last.overlay, 0, 0, canvas.width, canvas.height);
  }
  canvas.dataset.frame = last.frame;
  $('frame-id').textContent = last.frame;
}

async function onFrame(m) {
  // A picture still decoding: this one is skipped, the next newest is drawn (as on the server).
  // Frozen: the picture on screen stays (to look at it, or to snapshot it).
  if (decoding || $('pause').checked) return;
  decoding = true;
  try {
    const [jpeg, overlay] = await Promise.all([
      createImageBitmap(b64ToBlob(m.jpeg, 'image/jpeg')),
      createImageBitmap(b64ToBlob(m.overlay, 'image/png')),
    ]);
    last = { frame: m.frame, width: m.width, height: m.height, jpeg, overlay };
    draw();
  } finally {
    decoding = false;
  }
}

const fmt = (v, d = 1) => (typeof v === 'number' ? v.toFixed(d) : '-');

function onState(s) {
  const m = s.model;
  $('model').textContent = m ? `${m.name ?? m.path} ${m.version ? `v ${m.version.slice(0, 12)} ` : ''}(${m.precision})` : 'model: waiting for the worker';
  $('sha256').textContent = m ? m.sha256 : '-';
  $('provider').textContent = s.provider ?? '-';
  $('fps').textContent = `${fmt(s.fps.capture)} / ${fmt(s.fps.inference)} / ${fmt(s.fps.published)}`;
  $('worker').textContent = `${s.worker.state}${s.worker.pid ? ` (pid ${s.worker.pid})` : ''}, ${s.worker.restarts} restart(s)`;
  $('lag').textContent = `${fmt(s.loopLagMs.supervisor.p99, 2)} / ${fmt(s.loopLagMs.worker.p99, 2)} ms`;
  $('queue').textContent = s.mqtt ? `${s.mqtt.queueDepth} (${s.mqtt.acked} acknowledged)` : 'no broker configured';
  const link = $('link');
  link.textContent = s.mqtt ? `MQTT ${s.mqtt.state}` : 'MQTT off';
  link.className = `pill ${s.mqtt ? (s.mqtt.state === 'online' ? 'ok' : 'bad') : ''}`;
  const health = $('health');
  health.textContent = s.worker.ready ? 'ready' : 'worker not ready';
  health.className = `pill ${s.worker.ready ? 'ok' : 'bad'}`;
  const reasons = Object.entries(s.drops.byReason);
  $('drops').textContent = reasons.length ? reasons.map(([k, v]) => `${k} ${v}`).join(', ') : '0';
  const rows = Object.entries(s.latencyMs).map(([stage, p]) => `<tr><th>${stage}</th><td>${fmt(p.p50, 2)} / ${fmt(p.p99, 2)}</td></tr>`);
  $('latency').tBodies[0].innerHTML = rows.join('');
  const events = $('events');
  events.replaceChildren(
    ...s.events.map((e) => {
      const li = document.createElement('li');
      li.className = e.severity;
      li.textContent = `${e.time.slice(11, 19)} ${e.type}: ${e.message}`;
      return li;
    }),
  );
  if (!sliderBusy && typeof s.threshold === 'number') {
    $('threshold').value = String(s.threshold);
    $('threshold-value').textContent = s.threshold.toFixed(2);
  }
}

function connect() {
  const ws = new WebSocket(withToken(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/live`));
  ws.onmessage = (ev) => {
    const m = JSON.parse(ev.data);
    if (m.type === 'frame') void onFrame(m);
    else if (m.type === 'state') onState(m.state);
  };
  ws.onclose = () => {
    $('health').textContent = 'view disconnected';
    $('health').className = 'pill bad';
    setTimeout(connect, 1000);
  };
}

$('overlay').addEventListener('change', draw);
$('threshold').addEventListener('input', () => {
  sliderBusy = true;
  $('threshold-value').textContent = Number($('threshold').value).toFixed(2);
});
$('threshold').addEventListener('change', async () => {
  const value = Number($('threshold').value);
  try {
    const r = await fetch(withToken('/api/threshold'), { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ value }) });
    if (!r.ok) alert(`threshold not set: ${await r.text()}`);
  } finally {
    sliderBusy = false;
  }
});
$('snapshot').addEventListener('click', () => {
  canvas.toBlob((blob) => {
    const a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = `lvunet-${(canvas.dataset.frame || 'frame').replace(/[^A-Za-z0-9_.-]/g, '_')}.png`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  }, 'image/png');
});
connect();
