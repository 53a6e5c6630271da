/**
 * The worker's ONNX Runtime session, opened with the configuration's provider plan: the profile's
 * (or runtime.providers') providers with their options, placeholders such as ${engine_cache_dir}
 * filled for this model and this library (sessionOptionsFromConfig). openSession() in
 * runtime/pipeline/setup.ts takes provider names only, which would drop those options; both share
 * createModelSession().
 */
import { sessionOptionsFromConfig } from '../config/session-options.js';
import type { Config } from '../config/schema.js';
import { defaultOnnxRuntimeLibrary } from '../runtime/native/binding.js';
import { OnnxRuntime, type OrtSession, type SessionOptions } from '../runtime/native/runtime.js';
import type { LoadedModel } from '../runtime/model-loader.js';
import { createModelSession } from '../runtime/pipeline/setup.js';

/** What the worker needs of the configuration to open sessions (sent in its `start` message). */
export interface SessionConfig {
  /** runtime.* with providers filled (from the profile, or the --ep names without options). */
  readonly runtime: Config['runtime'];
  readonly stateDir: string;
}

/** One provider as handed to ONNX Runtime: name and options with every placeholder filled. */
export interface PlannedProvider {
  readonly name: string;
  readonly options: Readonly<Record<string, string>>;
}

export interface ConfiguredSession {
  readonly session: OrtSession;
  readonly plan: readonly PlannedProvider[];
}

/** Loads ONNX Runtime once per worker; errors name the library. */
export function loadRuntime(libraryPath: string | undefined): OnnxRuntime {
  const path = libraryPath ?? defaultOnnxRuntimeLibrary();
  try {
    return OnnxRuntime.load(path);
  } catch (err) {
    const message = (err as Error).message;
    throw Object.assign(new Error(message.includes(path) ? message : `ONNX Runtime library ${path}: ${message}`, { cause: err }), {
      code: (err as { code?: unknown }).code,
    });
  }
}

/** The session options the configuration asks for, for this model on this library. */
export function planSession(config: SessionConfig, model: LoadedModel, runtime: OnnxRuntime): SessionOptions {
  const options = sessionOptionsFromConfig({ runtime: config.runtime, state_dir: config.stateDir }, { modelSha256: model.sha256, ortVersion: runtime.info.version });
  return {
    ...options,
    // CPU is ONNX Runtime's implicit last resort and takes no options; named explicitly it would be
    // reported as "CPU" instead of "CPUExecutionProvider" in results and telemetry.
    providers: (options.providers ?? []).filter((p) => (typeof p === 'string' ? p : p.name).toUpperCase() !== 'CPU'),
    // Idle intra-op threads would otherwise spin on every core and starve the JS thread's stages.
    configEntries: { 'session.intra_op.allow_spinning': '0', ...options.configEntries },
  };
}

export function providerPlan(options: SessionOptions): PlannedProvider[] {
  return (options.providers ?? []).map((p) => (typeof p === 'string' ? { name: p, options: {} } : { name: p.name, options: { ...(p.options ?? {}) } }));
}

/** Opens `model` with the configured plan; errors name the model file. */
export async function openConfiguredSession(runtime: OnnxRuntime, model: LoadedModel, config: SessionConfig): Promise<ConfiguredSession> {
  let options: SessionOptions;
  try {
    options = planSession(config, model, runtime);
  } catch (err) {
    throw new Error(`provider options for ${model.path}: ${(err as Error).message}`, { cause: err });
  }
  const session = await createModelSession(runtime, model, options);
  return { session, plan: providerPlan(options) };
}
