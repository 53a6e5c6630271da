/**
 * Camera controls by name or id (`{ brightness: 10, exposure_auto: 'manual' }`), validated against
 * what the device reports before anything is sent, so a typo or an out-of-range value fails with
 * the control, the value and the allowed range instead of an EINVAL from the driver.
 */
import { controlKey } from './capabilities.js';
import { V4l2Error } from './errors.js';
import { CONTROL_FLAGS, type ControlCapability, type V4l2Device } from './types.js';

export type ControlValue = number | boolean | string;

export interface ValidatedControl {
  readonly id: number;
  readonly key: string;
  readonly name: string;
  /** The integer sent with VIDIOC_S_CTRL (a menu index for menus). */
  readonly value: number;
  /** For logs: `auto_exposure = 1 ("Manual Mode")`. */
  readonly description: string;
}

export interface ControlPlan {
  /** In the order to apply them: mode switches (controls flagged UPDATE) first. */
  readonly controls: readonly ValidatedControl[];
  readonly warnings: readonly string[];
}

export class ControlError extends V4l2Error {
  constructor(
    message: string,
    readonly control: string,
    readonly value?: unknown,
    readonly allowed?: string,
  ) {
    super('ERR_V4L2_CONTROL', message);
    this.name = 'ControlError';
  }
}

/**
 * UVC control names changed in Linux 5.16 ("Exposure, Auto" became "Auto Exposure"); configs
 * written for either kernel keep working.
 */
const KEY_ALIASES: Readonly<Record<string, readonly string[]>> = {
  exposure_auto: ['auto_exposure'],
  auto_exposure: ['exposure_auto'],
  exposure_absolute: ['exposure_time_absolute'],
  exposure_time_absolute: ['exposure_absolute'],
  white_balance_temperature_auto: ['white_balance_automatic'],
  white_balance_automatic: ['white_balance_temperature_auto'],
  focus_auto: ['focus_automatic_continuous'],
  focus_automatic_continuous: ['focus_auto'],
  exposure_auto_priority: ['exposure_dynamic_framerate'],
  exposure_dynamic_framerate: ['exposure_auto_priority'],
};

function hex(id: number): string {
  return '0x' + id.toString(16).padStart(8, '0');
}

function label(c: ControlCapability): string {
  return `control ${c.key} ("${c.name}", id ${hex(c.id)})`;
}

function show(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

export function describeAllowed(c: ControlCapability): string {
  switch (c.type) {
    case 'integer':
      return `${c.minimum}..${c.maximum} step ${c.step}`;
    case 'boolean':
      return 'true/false (1/0)';
    case 'menu':
      return c.menu.map((m) => `${m.index} = "${m.name}" (${controlKey(m.name)})`).join(', ');
    case 'integer_menu':
      return c.menu.map((m) => String(m.value)).join(', ');
    case 'bitmask':
      return `a bit mask within ${hex(c.maximum)}`;
    case 'button':
      return 'true (press)';
    default:
      return `nothing: type ${c.type} cannot be set with VIDIOC_S_CTRL`;
  }
}

function find(available: readonly ControlCapability[], requested: string): ControlCapability | undefined {
  const trimmed = requested.trim();
  if (/^(0x[0-9a-f]+|\d+)$/i.test(trimmed)) {
    const id = Number(trimmed);
    return available.find((c) => c.id === id);
  }
  const key = controlKey(trimmed);
  return (
    available.find((c) => c.key === key) ??
    available.find((c) => (KEY_ALIASES[key] ?? []).includes(c.key))
  );
}

function toInteger(raw: ControlValue): number {
  const n = typeof raw === 'boolean' ? Number(raw) : typeof raw === 'string' ? Number(raw.trim()) : raw;
  if (typeof raw === 'string' && raw.trim() === '') return NaN;
  return Number.isFinite(n) ? n : NaN;
}

function fail(c: ControlCapability, raw: ControlValue, why: string): never {
  const allowed = describeAllowed(c);
  throw new ControlError(`${label(c)}: value ${show(raw)} ${why}; allowed: ${allowed}`, c.key, raw, allowed);
}

function resolveValue(c: ControlCapability, raw: ControlValue): { value: number; text: string } {
  switch (c.type) {
    case 'integer': {
      const v = toInteger(raw);
      if (!Number.isInteger(v)) fail(c, raw, 'is not an integer');
      if (v < c.minimum || v > c.maximum) fail(c, raw, 'is out of range');
      if (c.step > 1 && (v - c.minimum) % c.step !== 0) {
        const below = v - ((v - c.minimum) % c.step);
        fail(c, raw, `is not on the step (nearest: ${below} or ${below + c.step})`);
      }
      return { value: v, text: String(v) };
    }
    case 'boolean': {
      if (raw === true || raw === 1 || (typeof raw === 'string' && /^(true|on|1|yes)$/i.test(raw.trim()))) return { value: 1, text: 'true' };
      if (raw === false || raw === 0 || (typeof raw === 'string' && /^(false|off|0|no)$/i.test(raw.trim()))) return { value: 0, text: 'false' };
      return fail(c, raw, 'is not a boolean');
    }
    case 'menu': {
      if (typeof raw === 'string' && !/^\d+$/.test(raw.trim())) {
        const key = controlKey(raw);
        const item =
          c.menu.find((m) => controlKey(m.name) === key) ??
          // UVC menus say "Manual Mode", "Aperture Priority Mode": accept "manual", "aperture_priority".
          c.menu.find((m) => controlKey(m.name).replace(/_mode$/, '') === key);
        if (!item) fail(c, raw, 'is not a menu entry');
        return { value: item.index, text: `${item.index} ("${item.name}")` };
      }
      const index = toInteger(raw);
      const item = c.menu.find((m) => m.index === index);
      if (!item) fail(c, raw, 'is not a menu index');
      return { value: item.index, text: `${item.index} ("${item.name}")` };
    }
    case 'integer_menu': {
      const v = toInteger(raw);
      const item = c.menu.find((m) => m.value === v);
      if (!item) fail(c, raw, 'is not one of the menu values');
      return { value: item.index, text: `${item.value} (index ${item.index})` };
    }
    case 'bitmask': {
      const v = toInteger(raw);
      if (!Number.isInteger(v) || v < 0 || (v & ~c.maximum) !== 0) fail(c, raw, 'sets bits outside the mask');
      return { value: v, text: hex(v) };
    }
    case 'button': {
      if (raw !== true && raw !== 1) fail(c, raw, 'does not press a button');
      return { value: 1, text: 'press' };
    }
    default:
      return fail(c, raw, 'cannot be set');
  }
}

/** Validates every requested control; throws a ControlError for the first problem. */
export function validateControls(
  available: readonly ControlCapability[],
  requested: Readonly<Record<string, ControlValue>>,
): ControlPlan {
  const chosen: { control: ValidatedControl; update: boolean; order: number }[] = [];
  const warnings: string[] = [];
  const seen = new Map<number, string>();
  for (const [name, raw] of Object.entries(requested)) {
    const c = find(available, name);
    if (!c) {
      const names = available.map((a) => a.key).join(', ') || 'none';
      throw new ControlError(`no control named ${show(name)}; the device has: ${names}`, name, raw, names);
    }
    const earlier = seen.get(c.id);
    if (earlier !== undefined) {
      throw new ControlError(`${label(c)} is requested twice (as ${show(earlier)} and ${show(name)})`, c.key, raw);
    }
    seen.set(c.id, name);
    if (c.flags & CONTROL_FLAGS.DISABLED) throw new ControlError(`${label(c)} is disabled by the driver`, c.key, raw);
    if (c.flags & CONTROL_FLAGS.READ_ONLY) throw new ControlError(`${label(c)} is read-only`, c.key, raw);
    const { value, text } = resolveValue(c, raw);
    if (c.flags & CONTROL_FLAGS.INACTIVE) {
      // Inactive usually means an auto mode owns it; the request may switch that mode off first.
      warnings.push(`${label(c)} is inactive (an automatic mode may override ${text})`);
    }
    chosen.push({
      control: { id: c.id, key: c.key, name: c.name, value, description: `${c.key} = ${text}` },
      update: (c.flags & CONTROL_FLAGS.UPDATE) !== 0,
      order: chosen.length,
    });
  }
  chosen.sort((a, b) => Number(b.update) - Number(a.update) || a.order - b.order);
  return { controls: chosen.map((c) => c.control), warnings };
}

/**
 * Sets validated controls in order and reads back the ones the driver lets us read, warning when
 * the driver settled on another value (drivers clamp silently).
 */
export function applyControls(device: V4l2Device, plan: ControlPlan, available: readonly ControlCapability[]): string[] {
  const warnings: string[] = [];
  for (const c of plan.controls) {
    device.setControl(c.id, c.value);
    const cap = available.find((a) => a.id === c.id);
    if (!cap || cap.type === 'button' || cap.flags & (CONTROL_FLAGS.WRITE_ONLY | CONTROL_FLAGS.VOLATILE)) continue;
    const actual = device.getControl(c.id);
    if (actual !== c.value) warnings.push(`${c.key}: asked for ${c.value}, the driver kept ${actual}`);
  }
  return warnings;
}
