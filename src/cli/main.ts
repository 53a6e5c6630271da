#!/usr/bin/env node
import {
  BUNDLE_INSTALL_USAGE,
  BUNDLE_KEYGEN_USAGE,
  BUNDLE_ROLLBACK_USAGE,
  BUNDLE_SIGN_USAGE,
  BUNDLE_STATUS_USAGE,
  BUNDLE_VERIFY_USAGE,
  bundleInstall,
  bundleKeygen,
  bundleRollback,
  bundleSign,
  bundleStatus,
  bundleVerify,
} from './bundle-command.js';
import type { Command } from './command.js';
import { UsageError } from './errors.js';
import { EVAL_USAGE, evalCommand } from './eval-command.js';
import { TRAIN_USAGE, trainCommand } from './train-command.js';
import { BENCH_PIPELINE_USAGE, benchPipeline } from './bench-command.js';
import { DOCTOR_USAGE, doctor } from './doctor-command.js';
import { FRAMES_MAKE_USAGE, framesMake } from './frames-command.js';
import { MODEL_BUILD_USAGE, MODEL_INSPECT_USAGE, modelBuild, modelInspect } from './model-commands.js';
import { precisionCommands } from './precision-commands.js';
import { MODEL_RELEASE_USAGE, modelRelease } from './release-command.js';
import { RUN_USAGE, runCommand } from './run-command.js';

const USAGE = `lvunet-edge: LV-UNet segmentation toolchain and edge runtime

commands:
  model build    build training-mode and fused deployment ONNX from weights or a seed
  model inspect  params, MACs, ops, opset and sha256 of an ONNX file
  model quantize calibrated static INT8 (QDQ) model from real frames
  model fp16     FP16 model (weights stored as float16)
  model check    agreement of a model with a reference model (and with masks)
  model release  a training run → evaluated, gated fp32/fp16/int8 model directory with a full manifest
  train          train LV-UNet from scratch (deep-training λ → 1), checkpoints, CSV log, lvunet.safetensors
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

Run 'lvunet-edge <command> --help' for a command's options.`;


const log = (line: string): void => {
  process.stderr.write(`${line}\n`);
};
const print = (text: string): void => {
  process.stdout.write(`${text}\n`);
};

const COMMANDS: Record<string, Command> = {
  'model build': { usage: MODEL_BUILD_USAGE, run: (a) => modelBuild(a, log) },
  'model inspect': { usage: MODEL_INSPECT_USAGE, run: (a) => modelInspect(a, print) },
  ...precisionCommands(log, print),
  'model release': { usage: MODEL_RELEASE_USAGE, run: (a) => modelRelease(a, log) },
  train: { usage: TRAIN_USAGE, run: (a) => trainCommand(a, log) },
  eval: { usage: EVAL_USAGE, run: (a) => evalCommand(a, log, print) },
  'bundle keygen': { usage: BUNDLE_KEYGEN_USAGE, run: (a) => bundleKeygen(a, print) },
  'bundle sign': { usage: BUNDLE_SIGN_USAGE, run: (a) => bundleSign(a, log) },
  'bundle verify': { usage: BUNDLE_VERIFY_USAGE, run: (a) => bundleVerify(a, print) },
  'bundle install': { usage: BUNDLE_INSTALL_USAGE, run: (a) => bundleInstall(a, print) },
  'bundle rollback': { usage: BUNDLE_ROLLBACK_USAGE, run: (a) => bundleRollback(a, print) },
  'bundle status': { usage: BUNDLE_STATUS_USAGE, run: (a) => bundleStatus(a, print) },
  run: { usage: RUN_USAGE, run: (a) => runCommand(a, log) },
  'bench pipeline': { usage: BENCH_PIPELINE_USAGE, run: (a) => benchPipeline(a, log, print) },
  doctor: {
    usage: DOCTOR_USAGE,
    run: async (a) => {
      if ((await doctor(a, print)) !== 0) throw new Error('doctor: the runtime cannot work on this machine (see the FAILED lines above)');
    },
  },
  'frames make': { usage: FRAMES_MAKE_USAGE, run: (a) => framesMake(a, log) },
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
      process.stderr.write(`lvunet-edge: ${err.message}\n${err.usage ? `\n${err.usage}\n` : ''}`);
      return 2;
    }
    // Node's own argument parser errors are usage errors too.
    const code = (err as { code?: string }).code;
    if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`lvunet-edge: ${(err as Error).message}\n\n${command.usage}\n`);
      return 2;
    }
    process.stderr.write(`lvunet-edge: ${(err as Error).message}\n`);
    if (process.env.LVUNET_DEBUG) process.stderr.write(`${(err as Error).stack}\n`);
    return 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`lvunet-edge: ${String(err)}\n`);
    process.exitCode = 1;
  },
);
