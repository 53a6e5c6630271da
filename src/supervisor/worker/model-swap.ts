/**
 * The worker's model sessions: the one serving, and a candidate loaded beside it by
 * `prepare-model`, self-tested on this device's providers and switched in between two frames by
 * `commit-model`. Errors name the update step (and file) so the supervisor can report it.
 */
import type { BundleManifest } from '../../fleet/bundles/format.js';
import type { RunModel } from '../../fleet/bundles/golden.js';
import type { GrayImage } from '../../image/types.js';
import { loadModel, type LoadedModel } from '../../runtime/model-loader.js';
import type { Pipeline } from '../../runtime/pipeline/pipeline.js';
import type { OnnxRuntime, OrtSession } from '../../runtime/native/runtime.js';
import { openConfiguredSession, type PlannedProvider, type SessionConfig } from '../session.js';

/** An error that tells the supervisor which model-update step failed and on which file. */
export function stepError(step: 'hash' | 'load' | 'self-test' | 'switch', reason: string, file?: string): Error {
  return Object.assign(new Error(reason), { details: { step, ...(file === undefined ? {} : { file }) } });
}

export function describeModel(m: LoadedModel): Record<string, unknown> {
  return { path: m.path, sha256: m.sha256, precision: m.precision, inputSize: [m.height, m.width], threshold: m.threshold };
}

export function stringArg(args: unknown, key: string, optional = false): string | undefined {
  const v = (args as Record<string, unknown> | null)?.[key];
  if (v === undefined && optional) return undefined;
  if (typeof v !== 'string' || v.length === 0) throw new TypeError(`argument ${key} must be a non-empty string`);
  return v;
}

interface Candidate {
  readonly token: string;
  readonly model: LoadedModel;
  readonly session: OrtSession;
  readonly plan: readonly PlannedProvider[];
}

export interface ServingModel {
  readonly model: LoadedModel;
  readonly session: OrtSession;
  readonly plan: readonly PlannedProvider[];
}

export class ModelSwap {
  private candidate: Candidate | undefined;

  constructor(
    private readonly runtime: OnnxRuntime,
    private readonly sessionConfig: SessionConfig,
    /** Largest model file read (config model.max_bytes). */
    private readonly maxModelBytes: number | undefined,
    public serving: ServingModel,
    private readonly log: (line: string) => void,
  ) {}

  /**
   * Loads a model beside the serving one (the pipeline keeps running on the old session) and runs
   * it once on a blank input: a model that loads but cannot run fails here, and the first frame
   * after the switch does not pay for ONNX Runtime's lazy initialisation.
   * @param threshold the operator's threshold, which the new model keeps; undefined: its own.
   * @param running whether the pipeline runs yet (a switch needs one).
   */
  async prepare(args: unknown, threshold: number | undefined, running: boolean): Promise<unknown> {
    const token = stringArg(args, 'token') as string;
    const path = stringArg(args, 'path') as string;
    const sha256 = stringArg(args, 'sha256', true);
    const precision = stringArg(args, 'precision', true);
    if (!running) throw new Error('the pipeline is not running yet: try again once the worker is ready');
    this.release();
    const started = Date.now();
    const loaded = loadModel(path, { maxBytes: this.maxModelBytes });
    if (sha256 !== undefined && loaded.sha256 !== sha256) throw stepError('hash', `model sha256 is ${loaded.sha256}, the command expects ${sha256}`, path);
    if (precision !== undefined && loaded.precision !== precision) throw stepError('load', `model is ${loaded.precision}, the command expects ${precision}`, path);
    const next = threshold === undefined ? loaded : { ...loaded, threshold };
    const opened = await openConfiguredSession(this.runtime, next, this.sessionConfig);
    const loadMs = Date.now() - started;
    try {
      const out = await opened.session.run(new Float32Array(3 * next.height * next.width), [1, 3, next.height, next.width]);
      if (out.data.length !== next.width * next.height) throw new Error(`output [${out.dims.join(', ')}] is not one ${next.height}x${next.width} logit map`);
    } catch (err) {
      opened.session.release();
      throw stepError('load', `the model loads but does not run: ${(err as Error).message}`, path);
    }
    this.candidate = { token, model: next, session: opened.session, plan: opened.plan };
    this.log(`model ${path} loaded beside the serving one in ${loadMs} ms (sha256 ${next.sha256}, ${opened.session.providers.active[0] ?? '?'})`);
    return { model: describeModel(next), providers: opened.session.providers, plan: opened.plan, loadMs, warmupMs: Date.now() - started - loadMs };
  }

  /** The golden self-test on the prepared session itself: the one that will serve, with this device's providers. */
  async selfTest(args: unknown): Promise<unknown> {
    const token = stringArg(args, 'token') as string;
    const dir = stringArg(args, 'dir') as string;
    const manifest = (args as { manifest?: unknown } | null)?.manifest;
    if (typeof manifest !== 'object' || manifest === null) throw new TypeError('argument manifest must be a bundle manifest');
    const c = this.candidateFor(token);
    // Loaded here, not at start-up: image decoding is only needed for model updates.
    const { runSelfTest, logitsToMask } = await import('../../fleet/bundles/golden.js');
    const { BundleError } = await import('../../fleet/bundles/errors.js');
    const { preprocessRgb } = await import('../../image/preprocess.js');
    const run: RunModel = async (_path, frames, info) => {
      const masks: GrayImage[] = [];
      for (const frame of frames) {
        const input = preprocessRgb(frame, { width: info.width, height: info.height });
        const out = await c.session.run(input, [1, 3, info.height, info.width]);
        masks.push(logitsToMask(out.data, info.width, info.height, info.threshold));
      }
      return masks;
    };
    try {
      return (await runSelfTest(dir, manifest as BundleManifest, run)) ?? null;
    } catch (err) {
      if (err instanceof BundleError) throw stepError(err.step === 'load' ? 'load' : 'self-test', err.reason, err.file);
      throw err;
    }
  }

  /** Switches the running pipeline to the prepared model between two frames, then releases the old session. */
  async commit(args: unknown, pipeline: Pipeline | undefined): Promise<unknown> {
    const token = stringArg(args, 'token') as string;
    const c = this.candidateFor(token);
    if (!pipeline) throw new Error('the pipeline is not running');
    const started = Date.now();
    const { framesLost } = await pipeline.swapModel(c.session, c.model);
    const old = this.serving.session;
    this.candidate = undefined;
    this.serving = { model: c.model, session: c.session, plan: c.plan };
    // Deterministic whatever swapModel does with thresholds: the new model's own unless one was set.
    pipeline.update({ threshold: c.model.threshold });
    old.release();
    const switchMs = Date.now() - started;
    this.log(`now serving ${c.model.path} (sha256 ${c.model.sha256}); ${framesLost} frame(s) lost during the switch (${switchMs} ms)`);
    return { framesLost, switchMs, model: describeModel(c.model), providers: c.session.providers, plan: c.plan };
  }

  /** Drops the candidate prepared under the token, if it is still the one held. */
  abort(args: unknown): { released: boolean } {
    const token = stringArg(args, 'token') as string;
    const held = this.candidate?.token === token;
    if (held) this.release();
    return { released: held };
  }

  /** Releases the candidate (a newer prepare, an abort, the end of the run). */
  release(): void {
    const c = this.candidate;
    this.candidate = undefined;
    c?.session.release();
  }

  private candidateFor(token: string): Candidate {
    if (!this.candidate || this.candidate.token !== token) throw new Error(`no model prepared under ${token} (a newer prepare replaced it, or this worker restarted)`);
    return this.candidate;
  }
}
