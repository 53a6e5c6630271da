/** `--source` strings to frame sources: v4l2:/dev/videoN, folder:PATH, file:PATH, synthetic. */
import { FolderSource } from './folder-source.js';
import { RawFileSource, type RawFileOptions } from './raw-file-source.js';
import { SyntheticSource, type SyntheticOptions } from './synthetic-source.js';
import type { FrameSource } from './types.js';

export type SourceSpec =
  | { kind: 'folder'; path: string }
  | { kind: 'file'; path: string }
  | { kind: 'v4l2'; path: string }
  | { kind: 'synthetic' };

export function parseSourceSpec(text: string): SourceSpec {
  if (text === 'synthetic') return { kind: 'synthetic' };
  const m = /^(folder|file|v4l2):(.+)$/.exec(text);
  if (!m) throw new RangeError(`--source ${JSON.stringify(text)}: use v4l2:/dev/videoN, folder:PATH, file:PATH or synthetic`);
  return { kind: m[1] as 'folder' | 'file' | 'v4l2', path: m[2] };
}

export type SourceFactoryOptions = RawFileOptions & SyntheticOptions;

/** Replay and synthetic sources; V4L2 sources are made by the capture module (needs the native addon). */
export function createReplaySource(spec: SourceSpec, options: SourceFactoryOptions = {}): FrameSource {
  switch (spec.kind) {
    case 'folder':
      return new FolderSource(spec.path, options);
    case 'file':
      return new RawFileSource(spec.path, options);
    case 'synthetic':
      return new SyntheticSource(options);
    case 'v4l2':
      throw new RangeError('v4l2 sources are opened through the V4L2 capture module');
  }
}

export type { Frame, FrameSource, DroppedFrame, SourceOptions } from './types.js';
