/**
 * LV-UNet (Jiang et al., BIBM 2024), described once. Both ONNX graphs, the parameter list that
 * weights files are checked against, and the trainer's model all come from `buildTrainingGraph`.
 * Parameter names follow the paper code's PyTorch modules (shared/reference/lvunet-train-weights.tsv)
 * so users can bring its state_dict unchanged.
 */
import { GraphBuilder, type ParamSpec, type WeightProvider } from './graph-builder.js';
import type { Graph } from './ir.js';

export type Activation = 'relu' | 'hardswish';

/** One MobileNetV3 inverted-residual block (torchvision layout). */
export interface InvertedResidualSpec {
  readonly in: number;
  readonly out: number;
  readonly kernel: number;
  readonly expansion: number;
  readonly se: boolean;
  readonly act: Activation;
  readonly stride: number;
}

/** MobileNetV3-Large stem, features[0]. */
export const STEM = { in: 3, out: 16, kernel: 3, stride: 2, act: 'hardswish' as Activation };

/** MobileNetV3-Large features[1..9], grouped as the paper's encoder1/2/3 modules. */
export const ENCODER: ReadonlyArray<{ module: string; blocks: readonly InvertedResidualSpec[] }> = [
  {
    module: 'encoder1',
    blocks: [
      { in: 16, out: 16, kernel: 3, expansion: 16, se: false, act: 'relu', stride: 1 },
      { in: 16, out: 24, kernel: 3, expansion: 64, se: false, act: 'relu', stride: 2 },
    ],
  },
  {
    module: 'encoder2',
    blocks: [
      { in: 24, out: 24, kernel: 3, expansion: 72, se: false, act: 'relu', stride: 1 },
      { in: 24, out: 40, kernel: 5, expansion: 72, se: true, act: 'relu', stride: 2 },
      { in: 40, out: 40, kernel: 5, expansion: 120, se: true, act: 'relu', stride: 1 },
    ],
  },
  {
    module: 'encoder3',
    blocks: [
      { in: 40, out: 40, kernel: 5, expansion: 120, se: true, act: 'relu', stride: 1 },
      { in: 40, out: 80, kernel: 3, expansion: 240, se: false, act: 'hardswish', stride: 2 },
      { in: 80, out: 80, kernel: 3, expansion: 200, se: false, act: 'hardswish', stride: 1 },
      { in: 80, out: 80, kernel: 3, expansion: 184, se: false, act: 'hardswish', stride: 1 },
    ],
  },
];

/** Fusible encoder blocks after e3 (each halves the resolution): 80→160→240→480. */
export const BODY = [80, 160, 240, 480] as const;
/** Decoder blocks (each doubles the resolution), by module, with the map each output is added to. */
export const DECODER: ReadonlyArray<{ module: string; channels: readonly number[] }> = [
  { module: 'up_stages1', channels: [480, 240, 160, 80] },
  { module: 'up_stages2', channels: [80, 40, 24, 16] },
];
export const FINAL_BLOCK = { in: 16, out: 16 } as const;

export const ENCODER_BN_EPS = 1e-3;
export const BLOCK_BN_EPS = 1e-6;
/** The encoder reaches 1/16 and the body three more halvings: inputs must divide by 128. */
export const SIZE_MULTIPLE = 128;

export const INPUT_NAME = 'image';
export const OUTPUT_NAME = 'logits';

export interface BuildOptions {
  /** Model input height and width in pixels, multiples of 128. */
  readonly height: number;
  readonly width: number;
  /** Deep-training LeakyReLU slope λ in [0, 1]; 1 makes each fusible block linear before its resample. */
  readonly lambda: number;
  /**
   * A symbolic batch dimension ('batch') instead of the default fixed 1. The runtime feeds one frame
   * at a time and torch.onnx.export writes a fixed 1 too; with a symbolic dimension ONNX Runtime's CPU
   * plan is 2-9 % slower here (docs/notes/static-batch.md), so only offline batch users want this.
   */
  readonly dynamicBatch?: boolean;
}

/** The ONNX batch dimension the options ask for. */
export function batchDim(o: Pick<BuildOptions, 'dynamicBatch'>): number | string {
  return o.dynamicBatch ? 'batch' : 1;
}

export function makeDivisible(v: number, divisor = 8): number {
  // torchvision's _make_divisible: round to the nearest multiple, never more than 10 % down.
  const r = Math.max(divisor, Math.floor(v + divisor / 2) - ((Math.floor(v + divisor / 2)) % divisor));
  return r < 0.9 * v ? r + divisor : r;
}

export function checkBuildOptions(o: BuildOptions): void {
  for (const [k, v] of [['height', o.height], ['width', o.width]] as const) {
    if (!Number.isInteger(v) || v <= 0 || v % SIZE_MULTIPLE !== 0) {
      throw new RangeError(`input ${k} ${v} is not a positive multiple of ${SIZE_MULTIPLE} (LV-UNet downsamples 128x)`);
    }
  }
  if (!(o.lambda >= 0 && o.lambda <= 1)) throw new RangeError(`λ = ${o.lambda} is outside [0, 1]`);
}

function activation(b: GraphBuilder, x: string, act: Activation, name: string): string {
  return act === 'relu' ? b.relu(x, name) : b.hardswish(x, name);
}

/** Conv + BN (+ activation), torchvision's Conv2dNormActivation, named `<prefix>.0` / `<prefix>.1`. */
function convBnAct(
  b: GraphBuilder,
  x: string,
  prefix: string,
  c: { in: number; out: number; kernel: number; stride?: number; groups?: number },
  act: Activation | null,
): string {
  let y = b.conv(x, { name: `${prefix}.0`, inChannels: c.in, outChannels: c.out, kernel: c.kernel, stride: c.stride, groups: c.groups, bias: false });
  y = b.batchNorm(y, `${prefix}.1`, c.out, ENCODER_BN_EPS);
  return act ? activation(b, y, act, `${prefix}.2`) : y;
}

function squeezeExcite(b: GraphBuilder, x: string, prefix: string, channels: number): string {
  const squeeze = makeDivisible(channels / 4);
  let s = b.globalAvgPool(x, `${prefix}.avgpool`);
  s = b.conv(s, { name: `${prefix}.fc1`, inChannels: channels, outChannels: squeeze, kernel: 1, bias: true });
  s = b.relu(s, `${prefix}.relu`);
  s = b.conv(s, { name: `${prefix}.fc2`, inChannels: squeeze, outChannels: channels, kernel: 1, bias: true });
  s = b.hardsigmoid(s, `${prefix}.scale_activation`);
  return b.mul(x, s, `${prefix}.mul`);
}

function invertedResidual(b: GraphBuilder, x: string, prefix: string, s: InvertedResidualSpec): string {
  let i = 0;
  let y = x;
  if (s.expansion !== s.in) {
    y = convBnAct(b, y, `${prefix}.block.${i++}`, { in: s.in, out: s.expansion, kernel: 1 }, s.act);
  }
  y = convBnAct(b, y, `${prefix}.block.${i++}`, { in: s.expansion, out: s.expansion, kernel: s.kernel, stride: s.stride, groups: s.expansion }, s.act);
  if (s.se) y = squeezeExcite(b, y, `${prefix}.block.${i++}`, s.expansion);
  y = convBnAct(b, y, `${prefix}.block.${i++}`, { in: s.expansion, out: s.out, kernel: 1 }, null);
  return s.stride === 1 && s.in === s.out ? b.add(y, x, `${prefix}.residual`) : y;
}

/** The fusible block in training mode (VanillaNet-style): see BRIEF §1. */
function fusibleBlock(b: GraphBuilder, x: string, prefix: string, cin: number, cout: number, resample: 'pool' | 'up', lambda: number): string {
  let y = b.conv(x, { name: `${prefix}.conv1.0`, inChannels: cin, outChannels: cin, kernel: 1, bias: true });
  y = b.batchNorm(y, `${prefix}.conv1.1`, cin, BLOCK_BN_EPS);
  y = b.leakyRelu(y, `${prefix}.act_learn`, lambda);
  y = b.conv(y, { name: `${prefix}.conv2.0`, inChannels: cin, outChannels: cout, kernel: 1, bias: true });
  y = b.batchNorm(y, `${prefix}.conv2.1`, cout, BLOCK_BN_EPS);
  y = resample === 'pool' ? b.maxPool2(y, `${prefix}.pool`) : b.upsample2(y, `${prefix}.upsample`);
  // Series activation: ReLU then a 3x3 depthwise conv (no bias) + BN, named `act` / `act.bn`.
  y = b.relu(y, `${prefix}.act.relu`);
  y = b.conv(y, { name: `${prefix}.act`, inChannels: cout, outChannels: cout, kernel: 3, groups: cout, bias: false });
  return b.batchNorm(y, `${prefix}.act.bn`, cout, BLOCK_BN_EPS);
}

export interface TrainingGraph {
  readonly graph: Graph;
  readonly parameters: readonly ParamSpec[];
}

/** LV-UNet in training mode: every BN and the LeakyReLU(λ) stay separate nodes. */
export function buildTrainingGraph(options: BuildOptions, weights: WeightProvider): TrainingGraph {
  checkBuildOptions(options);
  const b = new GraphBuilder(weights);
  let x = convBnAct(b, INPUT_NAME, 'firstconv', { in: STEM.in, out: STEM.out, kernel: STEM.kernel, stride: STEM.stride }, STEM.act);

  const encoderMaps: string[] = [];
  for (const { module, blocks } of ENCODER) {
    blocks.forEach((spec, i) => {
      x = invertedResidual(b, x, `${module}.${i}`, spec);
    });
    encoderMaps.push(x); // e1 (24 @ 1/4), e2 (40 @ 1/8), e3 (80 @ 1/16)
  }

  const bodyMaps: string[] = [];
  for (let i = 0; i + 1 < BODY.length; i++) {
    x = fusibleBlock(b, x, `stages.${i}`, BODY[i], BODY[i + 1], 'pool', options.lambda);
    bodyMaps.push(x); // 160 @ 1/32, 240 @ 1/64, 480 @ 1/128
  }

  // Skip maps by decoder step: 240, 160, e3, e2, e1, then none for the last (up_stages2.2).
  const skips = [bodyMaps[1], bodyMaps[0], encoderMaps[2], encoderMaps[1], encoderMaps[0]];
  let step = 0;
  for (const { module, channels } of DECODER) {
    for (let i = 0; i + 1 < channels.length; i++) {
      x = fusibleBlock(b, x, `${module}.${i}`, channels[i], channels[i + 1], 'up', options.lambda);
      const skip = skips[step++];
      if (skip !== undefined) x = b.add(x, skip, `${module}.${i}.skip`);
    }
  }
  x = fusibleBlock(b, x, 'final.0', FINAL_BLOCK.in, FINAL_BLOCK.out, 'up', options.lambda);
  x = b.conv(x, { name: 'final.1', inChannels: FINAL_BLOCK.out, outChannels: 1, kernel: 1, bias: true });

  const graph = b.finish(
    'lvunet',
    [{ name: INPUT_NAME, dataType: 'float32', shape: [batchDim(options), 3, options.height, options.width] }],
    { value: x, info: { name: OUTPUT_NAME, dataType: 'float32', shape: [batchDim(options), 1, options.height, options.width] } },
  );
  return { graph, parameters: b.parameters() };
}

/** The parameter names and shapes a training-mode weights file must hold (size-independent). */
export function parameterSpecs(): readonly ParamSpec[] {
  return buildTrainingGraph({ height: SIZE_MULTIPLE, width: SIZE_MULTIPLE, lambda: 1 }, (s) => new Float32Array(s.shape.reduce((a, c) => a * c, 1))).parameters;
}
