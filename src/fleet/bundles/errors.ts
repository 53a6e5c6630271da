/**
 * Every way a model update can fail is one BundleError whose `step` says where, so the device can
 * report "signature" vs "hash" vs "self-test" to the fleet without parsing messages.
 */
export type InstallStep = 'fetch' | 'signature' | 'hash' | 'load' | 'self-test' | 'switch';

export class BundleError extends Error {
  override readonly name = 'BundleError';
  readonly step: InstallStep;
  /** The bundle file (relative path) or URL at fault, when one is. */
  readonly file: string | undefined;
  /** Why, without the step and file prefix. */
  readonly reason: string;

  constructor(step: InstallStep, reason: string, file?: string, options?: { cause?: unknown }) {
    super(`${step}${file === undefined ? '' : ` ${file}`}: ${reason}`, options);
    this.step = step;
    this.file = file;
    this.reason = reason;
  }
}

export function reasonOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
