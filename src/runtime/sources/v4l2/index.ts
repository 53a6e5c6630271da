/** V4L2 camera capture: the device contract, capability negotiation, controls and the frame source. */
export * from './types.js';
export { V4l2Error, isDeviceLost, type V4l2ErrorCode } from './errors.js';
export { controlKey, probeCapabilities } from './capabilities.js';
export {
  DEFAULT_FORMAT_PREFERENCE,
  NegotiationError,
  chooseRate,
  describeOffers,
  fpsOf,
  negotiate,
  normalizeFourcc,
  type CaptureRequest,
  type Negotiation,
} from './negotiate.js';
export { ControlError, applyControls, describeAllowed, validateControls, type ControlPlan, type ControlValue, type ValidatedControl } from './controls.js';
export { checkFrame, expectedFrameBytes, type DropReason, type FrameCheck } from './frame-check.js';
export { PIPELINE_FOURCCS, V4l2FrameSource, packRows, toPipelineFrame, withHuffmanTables } from './frame-source.js';
export { nativeOpener, nativeV4l2Class, wrapNativeDevice, type NativeV4l2DeviceClass } from './native-device.js';
export {
  V4l2Source,
  systemClock,
  type BackoffOptions,
  type Clock,
  type V4l2Frame,
  type V4l2Opened,
  type V4l2SourceEvent,
  type V4l2SourceOptions,
  type V4l2SourceStats,
} from './v4l2-source.js';
