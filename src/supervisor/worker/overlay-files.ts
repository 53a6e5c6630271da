/**
 * `run --save-overlays DIR`: each processed frame with its overlay (src/image/overlay.ts) as
 * DIR/<file stem or frame id>.png, drawn from the model-size mask as the snapshot is. Writes are
 * chained in result order; the first failure is reported once and ends the writing, the run goes on.
 */
import { mkdirSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';

import { encodePngRgb } from '../../image/encode.js';
import { maskFileName } from '../../runtime/sinks/index.js';
import { overlayPicture, type SnapshotSource } from './snapshot.js';

export class OverlayFiles {
  readonly dir: string;
  private chain: Promise<void> = Promise.resolve();
  private failed = false;
  written = 0;

  constructor(
    dir: string,
    private readonly onError: (message: string) => void,
  ) {
    this.dir = resolve(dir);
    try {
      mkdirSync(this.dir, { recursive: true });
    } catch (err) {
      throw new Error(`--save-overlays ${this.dir}: cannot create folder: ${(err as Error).message}`);
    }
  }

  write(last: SnapshotSource): void {
    if (this.failed || !last.frame) return;
    const png = encodePngRgb(overlayPicture(last, last.frame));
    const path = join(this.dir, maskFileName(last.result));
    this.chain = this.chain
      .then(() => writeFile(path, png))
      .then(() => {
        this.written++;
      })
      .catch((err: unknown) => {
        if (this.failed) return;
        this.failed = true;
        this.onError(`--save-overlays: writing ${path} failed, no more overlays are written: ${(err as Error).message}`);
      });
  }

  settled(): Promise<void> {
    return this.chain;
  }
}
