/** Reads what a device offers (formats, sizes, frame intervals, controls) into the capability model. */
import {
  CAP,
  FMT_FLAG,
  controlType,
  type ControlCapability,
  type FormatCapability,
  type SizeCapability,
  type V4l2Capabilities,
  type V4l2ControlDescription,
  type V4l2Device,
} from './types.js';

/** "Exposure, Auto" → "exposure_auto", "White Balance Temperature" → "white_balance_temperature" (v4l2-ctl's keys). */
export function controlKey(name: string): string {
  return name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '');
}

export function toControlCapability(c: V4l2ControlDescription): ControlCapability {
  return {
    id: c.id,
    name: c.name,
    key: controlKey(c.name),
    type: controlType(c.type),
    minimum: c.minimum,
    maximum: c.maximum,
    step: c.step,
    defaultValue: c.defaultValue,
    flags: c.flags,
    menu: c.menu,
  };
}

export function probeCapabilities(device: V4l2Device): V4l2Capabilities {
  const info = device.info();
  const caps = info.deviceCaps;
  const formats: FormatCapability[] = device.enumFormats().map((f) => {
    const sizes: SizeCapability[] = [];
    const enumerated = device.enumFrameSizes(f.fourcc);
    if (enumerated.kind === 'discrete') {
      for (const s of enumerated.sizes) {
        sizes.push({ kind: 'discrete', width: s.width, height: s.height, intervals: device.enumFrameIntervals(f.fourcc, s.width, s.height) });
      }
    } else if (enumerated.kind !== 'none') {
      sizes.push({ ...enumerated, intervals: device.enumFrameIntervals(f.fourcc, enumerated.maxWidth, enumerated.maxHeight) });
    }
    return {
      fourcc: f.fourcc,
      description: f.description,
      compressed: (f.flags & FMT_FLAG.COMPRESSED) !== 0,
      emulated: (f.flags & FMT_FLAG.EMULATED) !== 0,
      sizes,
    };
  });
  return {
    device: info,
    formats,
    controls: device.queryControls().map(toControlCapability),
    canCapture: (caps & CAP.VIDEO_CAPTURE) !== 0,
    canStream: (caps & CAP.STREAMING) !== 0,
    multiplanarOnly: (caps & CAP.VIDEO_CAPTURE) === 0 && (caps & CAP.VIDEO_CAPTURE_MPLANE) !== 0,
  };
}
