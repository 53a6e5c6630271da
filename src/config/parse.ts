/**
 * Parses a config or profile document (YAML or JSON) into a plain value, keeping a way back from a
 * key path to its line so validation messages can point into the file.
 */
import { LineCounter, isNode, parseDocument } from 'yaml';

import { readRegularFileSync } from '../util/read-file.js';
import type { ConfigIssue, PathSegment } from './schema-kit.js';

/** Config and profile files are a few KiB; anything past this is not one (and is not read). */
export const MAX_CONFIG_BYTES = 1024 * 1024;

/**
 * The text of a config, profile or last-known-good file: a regular file of at most
 * MAX_CONFIG_BYTES only. The running supervisor re-reads its config on every change; a FIFO or
 * device put in its place must not block it (and SIGTERM with it). Throws naming the file.
 */
export function readConfigText(file: string): string {
  return readRegularFileSync(file, MAX_CONFIG_BYTES).toString('utf8');
}

export type DocumentFormat = 'yaml' | 'json';

export interface ParsedDocument {
  /** undefined when the text could not be parsed (see issues). */
  readonly value: unknown;
  readonly format: DocumentFormat;
  readonly lineOf: (path: readonly PathSegment[]) => number | undefined;
  readonly issues: ConfigIssue[];
}

/** By extension; for other names, by content (a document starting with `{` is JSON). */
export function detectFormat(file: string, text: string): DocumentFormat {
  if (/\.json$/i.test(file)) return 'json';
  if (/\.ya?ml$/i.test(file)) return 'yaml';
  return /^\s*\{/.test(text.replace(/^\uFEFF/, '')) ? 'json' : 'yaml';
}

export function parseDocumentText(text: string, source: string, format: DocumentFormat = detectFormat(source, text)): ParsedDocument {
  const issues: ConfigIssue[] = [];
  const body = text.replace(/^\uFEFF/, '');
  const lineCounter = new LineCounter();
  // Strict JSON first for .json files, so trailing commas and comments are reported as JSON errors.
  if (format === 'json') {
    try {
      JSON.parse(body);
    } catch (err) {
      const message = (err as Error).message;
      const pos = /position (\d+)/.exec(message);
      const line = pos ? body.slice(0, Number(pos[1])).split('\n').length : undefined;
      issues.push({ source, path: '', kind: 'parse', message: `not valid JSON: ${message}`, ...(line ? { line } : {}) });
      return { value: undefined, format, lineOf: () => undefined, issues };
    }
  }
  const doc = parseDocument(body, { lineCounter, uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length > 0) {
    for (const e of doc.errors) {
      const line = e.linePos?.[0]?.line;
      issues.push({ source, path: '', kind: 'parse', message: `not valid YAML: ${e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '')}`, ...(line ? { line } : {}) });
    }
    return { value: undefined, format, lineOf: () => undefined, issues };
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    issues.push({ source, path: '', kind: 'parse', message: `not valid YAML: ${(err as Error).message}` });
    return { value: undefined, format, lineOf: () => undefined, issues };
  }
  const lineOf = (path: readonly PathSegment[]): number | undefined => {
    for (let n = path.length; n > 0; n--) {
      // The deepest existing node: an unknown or mistyped key still has its own node; a missing one points at its parent.
      const node = doc.getIn(path.slice(0, n), true);
      if (isNode(node) && node.range) return lineCounter.linePos(node.range[0]).line;
    }
    return undefined;
  };
  return { value, format, lineOf, issues };
}
