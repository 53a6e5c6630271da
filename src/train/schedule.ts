/**
 * Deep-training slope λ and learning rate per epoch. The paper code's λ(e) = 1 − cos(π/2 · e/E)
 * ends at 0.9948 for E = 300, so its fused model is not the trained one; here λ reaches exactly 1
 * at `rampFraction` of the run and the remaining epochs train the network the deployment model is.
 */

export interface ScheduleOptions {
  readonly epochs: number;
  /** Fraction of the epochs over which λ rises from 0 to 1 (default 0.9). */
  readonly rampFraction?: number;
  readonly lr?: number;
  readonly minLr?: number;
}

export const DEFAULT_LR = 1e-3;
export const DEFAULT_MIN_LR = 1e-5;
export const DEFAULT_RAMP_FRACTION = 0.9;

function checkEpoch(epoch: number, epochs: number): void {
  if (!Number.isInteger(epochs) || epochs < 1) throw new RangeError(`epochs must be a positive integer, got ${epochs}`);
  if (!Number.isInteger(epoch) || epoch < 0 || epoch >= epochs) {
    throw new RangeError(`epoch ${epoch} is outside [0, ${epochs})`);
  }
}

/**
 * λ used while training epoch `epoch` (0-based) of `epochs`. min(1, ·) makes the end value the
 * literal 1 rather than cos(π/2) rounding (6e-17), which `model build` would refuse to fuse.
 */
export function lambdaAt(epoch: number, o: ScheduleOptions): number {
  checkEpoch(epoch, o.epochs);
  // At most E − 1, so the last epoch always trains at λ = 1 (even for runs of a few epochs).
  const ramp = Math.min(Math.floor((o.rampFraction ?? DEFAULT_RAMP_FRACTION) * o.epochs), o.epochs - 1);
  const p = ramp <= 0 ? 1 : Math.min(1, epoch / ramp);
  return p >= 1 ? 1 : 1 - Math.cos((Math.PI / 2) * p);
}

/** The rate the cosine ends at: never above the starting rate, so a run given a small --lr does not climb. */
export function floorLr(o: Pick<ScheduleOptions, 'lr' | 'minLr'>): number {
  return Math.min(o.minLr ?? DEFAULT_MIN_LR, o.lr ?? DEFAULT_LR);
}

/** Cosine annealing from `lr` at epoch 0 to `minLr` at the last epoch (torch's CosineAnnealingLR, T_max = E − 1). */
export function lrAt(epoch: number, o: ScheduleOptions): number {
  checkEpoch(epoch, o.epochs);
  const lr = o.lr ?? DEFAULT_LR;
  const minLr = floorLr(o);
  if (o.epochs === 1) return lr;
  return minLr + ((lr - minLr) * (1 + Math.cos((Math.PI * epoch) / (o.epochs - 1)))) / 2;
}
