/**
 * `lvunet-edge doctor`: what this machine offers the runtime (addon, ONNX Runtime library and
 * version, execution providers, V4L2 cameras and their formats), each check reported on its own so one failure does not
 * hide the rest. Exits 1 when the runtime cannot work (addon or ONNX Runtime missing).
 */
import { readdir, stat } from 'node:fs/promises';
import { parseArgs } from 'node:util';

import { defaultOnnxRuntimeLibrary, loadNativeBinding, nativeCandidates } from '../runtime/native/binding.js';
import { OnnxRuntime } from '../runtime/native/runtime.js';
import { v4l2Availability } from '../runtime/pipeline/setup.js';
import { nativeOpener, probeCapabilities, type V4l2Device } from '../runtime/sources/v4l2/index.js';
import { UsageError } from './errors.js';
import { DOCTOR_USAGE } from './usage.js';

export interface DoctorReport {
  node: string;
  platform: string;
  addon: { ok: boolean; path?: string; error?: string };
  onnxRuntime: { ok: boolean; library: string; version?: string; apiVersion?: number; providers?: string[]; error?: string };
  v4l2: { module: string; devices: { path: string; formats?: string[]; error?: string }[] };
  ok: boolean;
}

/** Each format a device offers, with its sizes: "YUYV 640x480 1280x720" or "MJPG 16x16..4096x2160". */
function describeDevice(path: string): { formats?: string[]; error?: string } {
  let device: V4l2Device | undefined;
  try {
    device = nativeOpener()(path);
    const caps = probeCapabilities(device);
    return {
      formats: caps.formats.map((f) => {
        const sizes = f.sizes.map((z) => (z.kind === 'discrete' ? `${z.width}x${z.height}` : `${z.minWidth}x${z.minHeight}..${z.maxWidth}x${z.maxHeight}`));
        return [f.fourcc, ...sizes].join(' ');
      }),
    };
  } catch (err) {
    return { error: (err as Error).message };
  } finally {
    device?.close();
  }
}

export async function doctor(argv: string[], print: (text: string) => void): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: { json: { type: 'boolean', default: false } }, allowPositionals: true, strict: true });
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0]}`, DOCTOR_USAGE);

  const report: DoctorReport = {
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    addon: { ok: false },
    onnxRuntime: { ok: false, library: '' },
    v4l2: { module: '', devices: [] },
    ok: false,
  };
  try {
    loadNativeBinding();
    const candidates = nativeCandidates();
    const found = await Promise.all(candidates.map((p) => stat(p).then(() => p, () => undefined)));
    report.addon = { ok: true, path: found.find((p) => p !== undefined) ?? candidates[0] };
  } catch (err) {
    report.addon = { ok: false, error: (err as Error).message };
  }
  try {
    report.onnxRuntime.library = defaultOnnxRuntimeLibrary();
    if (report.addon.ok) {
      const rt = OnnxRuntime.load(report.onnxRuntime.library);
      report.onnxRuntime = { ok: true, library: rt.info.path, version: rt.info.version, apiVersion: rt.info.apiVersion, providers: rt.availableProviders() };
    } else {
      report.onnxRuntime.error = 'not checked: the native addon does not load';
    }
  } catch (err) {
    report.onnxRuntime.error = (err as Error).message;
  }

  let devices: string[] = [];
  try {
    devices = (await readdir('/dev')).filter((n) => /^video\d+$/.test(n)).sort((a, b) => Number(a.slice(5)) - Number(b.slice(5))).map((n) => `/dev/${n}`);
  } catch {
    devices = [];
  }
  const v4l2 = report.addon.ok ? v4l2Availability() : { available: false as const, reason: 'the native addon does not load' };
  report.v4l2.module = v4l2.available ? 'available' : `not available: ${v4l2.reason}`;
  for (const path of devices) report.v4l2.devices.push({ path, ...(v4l2.available ? describeDevice(path) : {}) });
  report.ok = report.addon.ok && report.onnxRuntime.ok;

  if (values.json) {
    print(JSON.stringify(report, null, 2));
  } else {
    const o = report.onnxRuntime;
    const lines = [
      `node         ${report.node} ${report.platform}`,
      `addon        ${report.addon.ok ? `ok (${report.addon.path})` : `FAILED: ${report.addon.error}`}`,
      `onnxruntime  ${o.ok ? `${o.version} (C API ${o.apiVersion}) from ${o.library}` : `FAILED: ${o.error} (library ${o.library || 'unknown'})`}`,
    ];
    if (o.providers) lines.push(`providers    ${o.providers.join(', ')}`);
    lines.push(`v4l2 module  ${report.v4l2.module}`);
    if (devices.length === 0) lines.push('cameras      none found (no /dev/video*)');
    for (const d of report.v4l2.devices) {
      lines.push(`camera       ${d.path}${d.error ? ` (${d.error})` : ''}`);
      for (const f of d.formats ?? []) lines.push(`               ${f}`);
    }
    print(lines.join('\n'));
  }
  return report.ok ? 0 : 1;
}
