// Shared fixtures for the bundle tests (tap runs this file too; it has no tests of its own).
import { copyFileSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, normalize } from 'node:path';
import ort from 'onnxruntime-node';
import { buildModelDir, seededModelWeights } from '../../../src/model/build.js';
import { preprocessRgb } from '../../../src/image/preprocess.js';
import type { GrayImage, RgbImage } from '../../../src/image/types.js';
import type { ModelInfo, RunModel } from '../../../src/fleet/bundles/golden.js';
import { KVASIR } from '../../helpers/paths.js';

/**
 * Seeded LV-UNet at 128x128 (the smallest size the architecture takes, to keep tests fast). With
 * random weights the masks come out constant: seed 1 gives all foreground, seed 2 all background,
 * which makes "golden masks from another model" a certain self-test failure.
 */
export function buildModel(dir: string, seed: number): string {
  buildModelDir(seededModelWeights(seed), { height: 128, width: 128 }, dir);
  return dir;
}

/** Two real Kvasir frames of different sizes. */
export function goldenImages(dir: string): string {
  mkdirSync(dir, { recursive: true });
  const names = readdirSync(join(KVASIR, 'images')).sort();
  for (const n of [names[0], names[2]]) copyFileSync(join(KVASIR, 'images', n), join(dir, n));
  return dir;
}

/** The reference runner written against the onnxruntime-node API directly, independent of src/. */
export interface CountingRunner {
  readonly run: RunModel;
  readonly calls: { modelPath: string; frames: number }[];
}

export function ortRunner(): CountingRunner {
  const calls: { modelPath: string; frames: number }[] = [];
  const run = async (modelPath: string, frames: readonly RgbImage[], info: ModelInfo): Promise<GrayImage[]> => {
    calls.push({ modelPath, frames: frames.length });
    const session = await ort.InferenceSession.create(modelPath, { intraOpNumThreads: 1 });
    try {
      const masks: GrayImage[] = [];
      for (const f of frames) {
        const x = preprocessRgb(f, { width: info.width, height: info.height });
        const out = await session.run({ [info.inputName]: new ort.Tensor('float32', x, [1, 3, info.height, info.width]) });
        const logits = out[info.outputName].data as Float32Array;
        const data = new Uint8Array(logits.length);
        for (let i = 0; i < logits.length; i++) data[i] = 1 / (1 + Math.exp(-logits[i])) > info.threshold ? 1 : 0;
        masks.push({ width: info.width, height: info.height, data });
      }
      return masks;
    } finally {
      await session.release();
    }
  };
  return { run, calls };
}

export type Override = (req: IncomingMessage, res: ServerResponse, body: Buffer | undefined) => boolean;

export interface FileServer {
  readonly url: string;
  readonly requests: string[];
  /** Per-path behaviour; return true when handled. */
  readonly overrides: Map<string, Override>;
  close(): Promise<void>;
}

/** Serves `root` on 127.0.0.1 with Content-Length, like a static file server or CDN. */
export async function serveDir(root: string, prefix = '/bundles/b1'): Promise<FileServer> {
  const requests: string[] = [];
  const overrides = new Map<string, Override>();
  const server: Server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    requests.push(path);
    let body: Buffer | undefined;
    if (path.startsWith(`${prefix}/`)) {
      const rel = normalize(path.slice(prefix.length + 1));
      if (!rel.startsWith('..')) {
        try {
          body = readFileSync(join(root, rel));
        } catch {
          body = undefined;
        }
      }
    }
    const o = overrides.get(path);
    if (o && o(req, res, body)) return;
    if (!body) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    res.writeHead(200, { 'content-length': body.length, 'content-type': 'application/octet-stream' }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}${prefix}`,
    requests,
    overrides,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
