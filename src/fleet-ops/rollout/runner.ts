/**
 * Staged rollout of a signed bundle to a device group. Everything lives in the database (the
 * rollout, each device's wave and outcome), so a runner that dies is resumed by `--resume ID` from
 * what is recorded, and `--abort ID` from any process stops a running one before its next wave.
 *
 * Each wave sends `reload-model` (the bundle as `url` or device `path`) to its devices and waits for
 * their replies: a device verifies the signature, policy and hashes, loads and self-tests the model
 * on its golden frames and only then switches (src/fleet/README.md); an error reply means it still
 * serves its old model. After a wave the rollout halts when
 * - any device of the wave failed at `self-test`, or
 * - the wave's share of failed or unanswered devices is above `maxFailures`.
 * Resuming a halted rollout re-sends to the devices of its current wave that never answered, keeps
 * failed devices as they are (the operator has seen them) and continues with the next wave.
 */
import { randomBytes } from 'node:crypto';
import type { FleetDb, RolloutRow } from '../db/fleet-db.js';
import type { CommandClient, CommandOutcome } from '../send.js';
import { planWaves } from './waves.js';

export interface NewRollout {
  bundle: string;
  group: string;
  waves: number[];
  maxFailures: number;
  replyTimeoutMs: number;
  /** Expected sha256 / precision of the model file that will serve (passed to reload-model). */
  sha256?: string;
  precision?: 'fp32' | 'fp16' | 'int8';
}

export function reloadCommandFor(bundle: string, extra: { sha256?: string; precision?: string }): Record<string, unknown> {
  const command: Record<string, unknown> = /^https?:\/\//.test(bundle) ? { url: bundle } : { path: bundle };
  if (extra.sha256 !== undefined) command.sha256 = extra.sha256;
  if (extra.precision !== undefined) command.precision = extra.precision;
  return command;
}

export async function createRollout(db: FleetDb, r: NewRollout): Promise<string> {
  const devices = await db.groupMembers(r.group);
  if (devices.length === 0) throw new Error(`group ${JSON.stringify(r.group)} has no devices in ${db.where} (fleet group add ${r.group} DEVICE...)`);
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '');
  const id = `ro-${stamp}-${randomBytes(3).toString('hex')}`;
  await db.createRollout(
    { id, bundle: r.bundle, group: r.group, command: reloadCommandFor(r.bundle, r), waves: r.waves, maxFailures: r.maxFailures, replyTimeoutMs: r.replyTimeoutMs },
    planWaves(devices, r.waves),
  );
  return id;
}

/** The step a device's error reply names (`... failed at <step> ...`, src/supervisor/model-update.ts). */
export function failedStep(error: string): string | undefined {
  return /\bfailed at ([a-z-]+)/.exec(error)?.[1];
}

function outcomeState(o: CommandOutcome): { state: 'ok' | 'failed' | 'timeout'; detail: string } {
  if (o.error !== undefined) return { state: 'failed', detail: o.error };
  if (!o.reply) return { state: 'timeout', detail: `no reply to ${o.id}` };
  if (!o.reply.ok) return { state: 'failed', detail: o.reply.error ?? 'failed' };
  const r = (o.reply.result ?? {}) as { version?: unknown; selfTest?: { meanDice?: unknown } | null };
  const dice = typeof r.selfTest?.meanDice === 'number' ? `, self-test mean Dice ${r.selfTest.meanDice.toFixed(4)}` : '';
  return { state: 'ok', detail: `serving ${typeof r.version === 'string' ? r.version : 'the bundle'}${dice}` };
}

/** Runs (or resumes) rollout `id` until it is done, halts or is aborted; returns its final row. */
export async function runRollout(db: FleetDb, client: Pick<CommandClient, 'send'>, id: string, log: (line: string) => void = () => {}): Promise<RolloutRow> {
  let r = await db.rollout(id);
  if (!r) throw new Error(`no rollout ${id} in ${db.where}`);
  if (r.state === 'done' || r.state === 'aborted') return r;
  if (r.state === 'halted') {
    log(`rollout ${id}: resuming at wave ${r.wave + 1} (halted: ${r.reason ?? '?'})`);
    if (!(await db.setRollout(id, { state: 'running', reason: null, from: 'halted' }))) return (await db.rollout(id)) as RolloutRow;
  }
  for (let wave = r.wave; wave < r.waves.length; wave++) {
    // Only while still running: an abort (another process) stops the rollout before this wave.
    const stillRunning = await db.setRollout(id, { wave, from: 'running' });
    r = (await db.rollout(id)) as RolloutRow;
    if (!stillRunning) {
      log(`rollout ${id}: ${r.state}${r.reason ? ` (${r.reason})` : ''}; stopping before wave ${wave + 1}`);
      return r;
    }
    const targets = (await db.rolloutDevices(id)).filter((d) => d.wave === wave && (d.state === 'pending' || d.state === 'sent' || d.state === 'timeout'));
    if (targets.length === 0) continue;
    log(`rollout ${id}: wave ${wave + 1}/${r.waves.length} (${Math.round(r.waves[wave] * 100)}%): reload-model to ${targets.map((t) => t.device).join(', ')}`);
    const outcomes = await Promise.all(
      targets.map(async (t) => {
        const commandId = `${id}-${t.device}-${randomBytes(2).toString('hex')}`;
        await db.setRolloutDevice(id, t.device, { state: 'sent', commandId });
        const outcome = await client.send(t.device, 'reload-model', r!.command, r!.replyTimeoutMs, commandId);
        const s = outcomeState(outcome);
        await db.setRolloutDevice(id, t.device, s);
        log(`rollout ${id}: ${t.device}: ${s.state}: ${s.detail}`);
        return { device: t.device, ...s };
      }),
    );
    const selfTest = outcomes.filter((o) => o.state === 'failed' && failedStep(o.detail) === 'self-test');
    const failed = outcomes.filter((o) => o.state !== 'ok');
    const rate = failed.length / outcomes.length;
    let reason: string | undefined;
    if (selfTest.length > 0) reason = `self-test failed on ${selfTest.map((o) => o.device).join(', ')} in wave ${wave + 1}`;
    else if (rate > r.maxFailures) {
      reason = `${failed.length} of ${outcomes.length} device(s) failed or did not answer in wave ${wave + 1} (${(rate * 100).toFixed(1)}% > --max-failures ${(r.maxFailures * 100).toFixed(1)}%): ${failed.map((o) => o.device).join(', ')}`;
    }
    if (reason !== undefined) {
      await db.setRollout(id, { state: 'halted', reason, from: 'running' });
      log(`rollout ${id}: HALTED: ${reason}`);
      return (await db.rollout(id)) as RolloutRow;
    }
  }
  // An abort during the last wave stays an abort.
  if (await db.setRollout(id, { state: 'done', reason: null, from: 'running' })) log(`rollout ${id}: done`);
  return (await db.rollout(id)) as RolloutRow;
}

/** Marks a rollout aborted; a runner stops before its next wave. */
export async function abortRollout(db: FleetDb, id: string, reason = 'aborted by the operator'): Promise<RolloutRow> {
  const r = await db.rollout(id);
  if (!r) throw new Error(`no rollout ${id} in ${db.where}`);
  if (r.state === 'done') throw new Error(`rollout ${id} is already done; nothing to abort`);
  await db.setRollout(id, { state: 'aborted', reason });
  return (await db.rollout(id)) as RolloutRow;
}
