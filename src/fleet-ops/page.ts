/**
 * The fleet page: devices (state, model, health, last error) and rollouts (each wave's devices and
 * outcomes) as one server-rendered HTML document, from the same rows as `fleet status --json`.
 * No frames or images: the fleet link carries none unless a device is asked for a snapshot.
 */
import type { RolloutDeviceRow, RolloutRow } from './db/fleet-db.js';
import type { DeviceStatus } from './status.js';

export interface RolloutView {
  rollout: RolloutRow;
  devices: RolloutDeviceRow[];
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
/** Everything on the page comes from devices or operators: escaped, always. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

const cell = (v: string | number | null | undefined): string => `<td>${v === null || v === undefined ? '–' : escapeHtml(String(v))}</td>`;

function deviceRow(d: DeviceStatus): string {
  const model = d.model.version ?? d.model.name;
  return `<tr class="${d.state ?? 'unknown'}">${[
    cell(d.device),
    cell(d.state),
    cell(d.lastSeen),
    cell(model),
    cell(d.model.sha256?.slice(0, 12)),
    cell(d.model.precision),
    cell(d.provider),
    cell(d.fps?.toFixed(1)),
    cell(d.eventLoopLagMs?.toFixed(1)),
    cell(d.workerRestarts),
    cell(d.queuePending),
    cell(d.results.rows),
    cell(d.rollout ? `${d.rollout.id} wave ${d.rollout.wave + 1}: ${d.rollout.state}` : null),
    cell(d.lastError ? `${d.lastError.time} ${d.lastError.message}` : null),
  ].join('')}</tr>`;
}

function rolloutSection(v: RolloutView): string {
  const r = v.rollout;
  const waves = r.waves.map((share, w) => {
    const members = v.devices.filter((d) => d.wave === w);
    const items = members.map((d) => `<li class="${d.state}">${escapeHtml(d.device)}: ${escapeHtml(d.state)}${d.detail ? ` – ${escapeHtml(d.detail)}` : ''}</li>`).join('');
    return `<h4>wave ${w + 1} (${Math.round(share * 100)}%, ${members.length} device(s))${w === r.wave && r.state !== 'done' ? ' ◀' : ''}</h4><ul>${items}</ul>`;
  });
  return `<section><h3>${escapeHtml(r.id)}: ${escapeHtml(r.state)}</h3><p>${escapeHtml(r.bundle)} → group ${escapeHtml(r.group)}, max failures ${Math.round(r.maxFailures * 100)}%${
    r.reason ? `<br><strong>${escapeHtml(r.reason)}</strong>` : ''
  }</p>${waves.join('')}</section>`;
}

export function fleetPage(devices: readonly DeviceStatus[], rollouts: readonly RolloutView[], refreshS = 5): string {
  const head = ['device', 'state', 'last seen', 'model', 'sha256', 'precision', 'provider', 'fps', 'lag ms', 'restarts', 'queue', 'results', 'rollout', 'last error'];
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="${refreshS}"><title>lvunet-edge fleet</title>
<style>body{font:14px system-ui,sans-serif;margin:1.5em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left}
tr.offline td{color:#888}.failed,.timeout{color:#b00}.ok{color:#070}</style></head><body>
<h1>Fleet: ${devices.length} device(s), ${devices.filter((d) => d.state === 'online').length} online</h1>
<table><thead><tr>${head.map((h) => `<th>${h}</th>`).join('')}</tr></thead><tbody>
${devices.map(deviceRow).join('\n')}
</tbody></table>
<h2>Rollouts</h2>
${rollouts.length === 0 ? '<p>none</p>' : [...rollouts].reverse().map(rolloutSection).join('\n')}
</body></html>
`;
}
