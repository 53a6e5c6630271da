/** Loader hooks of module-recorder.mjs: appends each loaded module's URL to the process's log file. */
import { appendFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

let file;

export function initialize(data) {
  file = data.file;
}

export async function load(url, context, nextLoad) {
  // Synchronous, so the line is on disk before the module runs, even if the process dies right after.
  if (!url.startsWith('node:')) appendFileSync(file, `${url.startsWith('file:') ? fileURLToPath(url) : url}\n`);
  return nextLoad(url, context);
}
