#!/usr/bin/env node
import type { Command } from './command.js';
import { UsageError } from './errors.js';
import {
  BENCH_PIPELINE_USAGE,
  BUNDLE_INSTALL_USAGE,
  BUNDLE_KEYGEN_USAGE,
  BUNDLE_ROLLBACK_USAGE,
  BUNDLE_SIGN_USAGE,
  BUNDLE_STATUS_USAGE,
  BUNDLE_VERIFY_USAGE,
  DOCTOR_USAGE,
  EVAL_USAGE,
  FRAMES_MAKE_USAGE,
  FRAMES_RECORD_USAGE,
  FLEET_GROUP_USAGE,
  FLEET_INGEST_USAGE,
  FLEET_ROLLOUT_USAGE,
  FLEET_SEND_USAGE,
  FLEET_SERVE_USAGE,
  FLEET_STATUS_USAGE,
  MODEL_BUILD_USAGE,
  MODEL_CHECK_USAGE,
  MODEL_FP16_USAGE,
  MODEL_INSPECT_USAGE,
  MODEL_QUANTIZE_USAGE,
  MODEL_RELEASE_USAGE,
  RUN_USAGE,
  TRAIN_USAGE,
} from './usage.js';
import { redactText } from '../util/redact.js';

const USAGE = `lvunet-edge: LV-UNet segmentation toolchain and edge runtime

commands:
  model build    build training-mode and fused deployment ONNX from weights or a seed
  model inspect  params, MACs, ops, opset and sha256 of an ONNX file
  model quantize calibrated static INT8 (QDQ) model from real frames
  model fp16     FP16 model (weights stored as float16)
  model check    agreement of a model with a reference model (and with masks)
  model release  a training run → evaluated, gated fp32/fp16/int8 model directory with a full manifest
  train          train LV-UNet from scratch (deep-training λ → 1) or fine-tune one (--init); checkpoints, CSV log
  eval           Dice, IoU, precision, recall, specificity, HD95 per image and pooled, at model and native size
  bundle keygen  make an ed25519 key pair for signing model bundles
  bundle sign    make a signed model bundle (optionally with golden self-test frames)
  bundle verify  check a bundle's signature and files (directory or URL)
  bundle install verify, self-test and atomically switch a device's current model
  bundle rollback  switch back to the previous model
  bundle status  the current and previous model versions
  run            the inference pipeline: camera, folder, file or synthetic frames to results
  bench pipeline model-alone and full-pipeline frame rates, stage latencies, event-loop lag
  doctor         native addon, ONNX Runtime library and providers, cameras
  frames make    a camera-like recording (YUYV, NV12, RGB24, MJPEG) from dataset images
  frames record  a camera's frames (V4L2) to a raw or MJPEG file that file: sources replay
  fleet ingest   store what the devices publish in SQLite or PostgreSQL (shared MQTT subscription)
  fleet status   every device: online, model, health, last error
  fleet send     a command to devices or a group, with replies and timeouts
  fleet group    device groups (add, remove, list)
  fleet rollout  a signed bundle to a group in waves; halts on failed self-tests; resume, abort
  fleet serve    the fleet page: devices, models, health, rollout progress (HTTP, read-only)

Run 'lvunet-edge <command> --help' for a command's options.`;


// Everything this process prints goes through redactText: a broker URL with a password (from
// --mqtt, a config error, an mqtt.js message) never reaches a terminal, journal or log file.
const log = (line: string): void => {
  process.stderr.write(`${redactText(line)}\n`);
};
const print = (text: string): void => {
  process.stdout.write(`${redactText(text)}\n`);
};
const fail = (text: string): void => {
  process.stderr.write(redactText(text));
};

// Each command's module is imported only when that command runs: the `run` supervisor (the systemd
// service) must not load tfjs or a second ONNX Runtime (onnxruntime-node loads its libonnxruntime at
// import) that only the model toolchain uses, and a CLI spawn pays only for what it runs.
const COMMANDS: Record<string, Command> = {
  'model build': { usage: MODEL_BUILD_USAGE, run: async (a) => (await import('./model-commands.js')).modelBuild(a, log) },
  'model inspect': { usage: MODEL_INSPECT_USAGE, run: async (a) => (await import('./model-commands.js')).modelInspect(a, print) },
  'model quantize': { usage: MODEL_QUANTIZE_USAGE, run: async (a) => (await import('./precision-commands.js')).modelQuantize(a, log) },
  'model fp16': { usage: MODEL_FP16_USAGE, run: async (a) => (await import('./precision-commands.js')).modelFp16(a, log) },
  'model check': { usage: MODEL_CHECK_USAGE, run: async (a) => (await import('./precision-commands.js')).modelCheck(a, print, log) },
  'model release': { usage: MODEL_RELEASE_USAGE, run: async (a) => (await import('./release-command.js')).modelRelease(a, log) },
  train: { usage: TRAIN_USAGE, run: async (a) => (await import('./train-command.js')).trainCommand(a, log) },
  eval: { usage: EVAL_USAGE, run: async (a) => (await import('./eval-command.js')).evalCommand(a, log, print) },
  'bundle keygen': { usage: BUNDLE_KEYGEN_USAGE, run: async (a) => (await import('./bundle-command.js')).bundleKeygen(a, print) },
  'bundle sign': { usage: BUNDLE_SIGN_USAGE, run: async (a) => (await import('./bundle-command.js')).bundleSign(a, log) },
  'bundle verify': { usage: BUNDLE_VERIFY_USAGE, run: async (a) => (await import('./bundle-command.js')).bundleVerify(a, print) },
  'bundle install': { usage: BUNDLE_INSTALL_USAGE, run: async (a) => (await import('./bundle-command.js')).bundleInstall(a, print) },
  'bundle rollback': { usage: BUNDLE_ROLLBACK_USAGE, run: async (a) => (await import('./bundle-command.js')).bundleRollback(a, print) },
  'bundle status': { usage: BUNDLE_STATUS_USAGE, run: async (a) => (await import('./bundle-command.js')).bundleStatus(a, print) },
  run: { usage: RUN_USAGE, run: async (a) => (await import('./run-command.js')).runCommand(a, log) },
  'bench pipeline': { usage: BENCH_PIPELINE_USAGE, run: async (a) => (await import('./bench-command.js')).benchPipeline(a, log, print) },
  doctor: {
    usage: DOCTOR_USAGE,
    run: async (a) => {
      const { doctor } = await import('./doctor-command.js');
      if ((await doctor(a, print)) !== 0) throw new Error('doctor: the runtime cannot work on this machine (see the FAILED lines above)');
    },
  },
  'fleet ingest': { usage: FLEET_INGEST_USAGE, run: async (a) => (await import('./fleet-commands.js')).fleetIngest(a, log) },
  'fleet status': { usage: FLEET_STATUS_USAGE, run: async (a) => (await import('./fleet-commands.js')).fleetStatusCommand(a, print) },
  'fleet send': { usage: FLEET_SEND_USAGE, run: async (a) => (await import('./fleet-commands.js')).fleetSend(a, print) },
  'fleet group': { usage: FLEET_GROUP_USAGE, run: async (a) => (await import('./fleet-commands.js')).fleetGroup(a, print) },
  'fleet rollout': { usage: FLEET_ROLLOUT_USAGE, run: async (a) => (await import('./fleet-commands.js')).fleetRollout(a, log, print) },
  'fleet serve': { usage: FLEET_SERVE_USAGE, run: async (a) => (await import('./fleet-commands.js')).fleetServe(a, log) },
  'frames make': { usage: FRAMES_MAKE_USAGE, run: async (a) => (await import('./frames-command.js')).framesMake(a, log) },
  'frames record': {
    usage: FRAMES_RECORD_USAGE,
    run: async (a) => {
      await (await import('./frames-command.js')).framesRecord(a, log);
    },
  },
};

export async function main(argv: string[]): Promise<number> {
  const key = [argv[0], argv[1]].join(' ');
  const command = COMMANDS[key] ?? COMMANDS[argv[0] ?? ''];
  const rest = COMMANDS[key] ? argv.slice(2) : argv.slice(1);
  if (!command) {
    print(USAGE);
    return argv.length === 0 || argv[0] === '--help' || argv[0] === 'help' ? 0 : 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    print(command.usage);
    return 0;
  }
  try {
    await command.run(rest);
    return 0;
  } catch (err) {
    if (err instanceof UsageError) {
      fail(`lvunet-edge: ${err.message}\n${err.usage ? `\n${err.usage}\n` : ''}`);
      return 2;
    }
    // Node's own argument parser errors are usage errors too.
    const code = (err as { code?: string }).code;
    if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')) {
      fail(`lvunet-edge: ${(err as Error).message}\n\n${command.usage}\n`);
      return 2;
    }
    fail(`lvunet-edge: ${(err as Error).message}\n`);
    if (process.env.LVUNET_DEBUG) fail(`${(err as Error).stack}\n`);
    return 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    fail(`lvunet-edge: ${String(err)}\n`);
    process.exitCode = 1;
  },
);
