/**
 * Every way a model update can fail is one BundleError whose `step` says where, so the device can
 * report "signature" vs "hash" vs "self-test" to the fleet without parsing messages.
 */
/** 'policy': signed and intact, but not for this device now (older version, other group, expired): see policy.ts. */
export type InstallStep = 'fetch' | 'signature' | 'policy' | 'hash' | 'load' | 'self-test' | 'switch';

export class BundleError extends Error {
  override readonly name = 'BundleError';
  readonly step: InstallStep;
  /** The bundle file (relative path) or URL at fault, when one is. */
  readonly file: string | undefined;
  /** Why, without the step and file prefix. */
  readonly reason: string;
  /** A machine-readable refusal within the step (policy: 'downgrade', 'wrong-group', 'expired'). */
  readonly code: string | undefined;

  constructor(step: InstallStep, reason: string, file?: string, options?: { cause?: unknown; code?: string }) {
    super(`${step}${file === undefined ? '' : ` ${file}`}: ${reason}`, options?.cause === undefined ? undefined : { cause: options.cause });
    this.step = step;
    this.file = file;
    this.reason = reason;
    this.code = options?.code;
  }
}

export function reasonOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
