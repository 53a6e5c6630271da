/**
 * Every payload schema lvunet-edge publishes, and the JSON Schema files made from them
 * (docs/schemas/*.json, written by `npm run schemas`; test/schemas/published.test.ts fails when the
 * committed files differ from what these definitions produce).
 */
import type { TSchema } from '@sinclair/typebox';
import {
  CommandReplySchema,
  EventMessageSchema,
  ReloadModelCommandSchema,
  ResultMessageSchema,
  SetThresholdCommandSchema,
  SnapshotCommandSchema,
  StatusCommandSchema,
  StatusMessageSchema,
  TelemetryMessageSchema,
} from './fleet.js';
import { SupervisorMessageSchema, WorkerMessageSchema } from './ipc.js';
import { ManifestSchema } from './manifest.js';
import { ResultV1Schema } from './result.js';

export const JSON_SCHEMA_DIALECT = 'http://json-schema.org/draft-07/schema#';

/** File name under docs/schemas/ -> schema; the order is the README's. */
export const PUBLISHED_SCHEMAS: Readonly<Record<string, TSchema>> = {
  'result.json': ResultV1Schema,
  'result-message.json': ResultMessageSchema,
  'telemetry.json': TelemetryMessageSchema,
  'event.json': EventMessageSchema,
  'status.json': StatusMessageSchema,
  'reply.json': CommandReplySchema,
  'cmd-set-threshold.json': SetThresholdCommandSchema,
  'cmd-snapshot.json': SnapshotCommandSchema,
  'cmd-status.json': StatusCommandSchema,
  'cmd-reload-model.json': ReloadModelCommandSchema,
  'manifest.json': ManifestSchema,
  'ipc-worker.json': WorkerMessageSchema,
  'ipc-supervisor.json': SupervisorMessageSchema,
};

/**
 * The file text of a schema: draft-07 JSON Schema, `$schema` first, then the TypeBox value as JSON
 * (TypeBox's own markers are symbols, which JSON leaves out), two-space indented, newline-terminated.
 */
export function schemaFileText(schema: TSchema): string {
  const { title, description, ...rest } = JSON.parse(JSON.stringify(schema)) as Record<string, unknown>;
  return `${JSON.stringify({ $schema: JSON_SCHEMA_DIALECT, title, description, ...rest }, null, 2)}\n`;
}

/** File name -> text, for the writer script and the staleness test. */
export function schemaFiles(): Map<string, string> {
  return new Map(Object.entries(PUBLISHED_SCHEMAS).map(([file, schema]) => [file, schemaFileText(schema)]));
}
