/**
 * `fleet serve`: the fleet page (`/`) and its data as JSON (`/status.json`) over HTTP, read-only,
 * on 127.0.0.1 unless told otherwise (put an authenticating reverse proxy in front to share it).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FleetDb } from './db/fleet-db.js';
import { fleetPage } from './page.js';
import { fleetStatus } from './status.js';

export async function snapshot(db: FleetDb): Promise<{ devices: Awaited<ReturnType<typeof fleetStatus>>; rollouts: { rollout: Awaited<ReturnType<FleetDb['rollouts']>>[number]; devices: Awaited<ReturnType<FleetDb['rolloutDevices']>> }[] }> {
  const devices = await fleetStatus(db);
  const rollouts = await Promise.all((await db.rollouts()).map(async (rollout) => ({ rollout, devices: await db.rolloutDevices(rollout.id) })));
  return { devices, rollouts };
}

export async function serveFleet(db: FleetDb, options: { host?: string; port?: number; log?: (line: string) => void } = {}): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' || (path !== '/' && path !== '/status.json')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: / (page) and /status.json\n');
      return;
    }
    snapshot(db).then(
      (s) => {
        if (path === '/status.json') res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(s));
        else res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'" }).end(fleetPage(s.devices, s.rollouts));
      },
      (err: unknown) => {
        options.log?.(`fleet serve: ${db.where}: ${(err as Error).message}`);
        res.writeHead(503, { 'content-type': 'text/plain' }).end(`database unavailable: ${(err as Error).message}\n`);
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 8090, options.host ?? '127.0.0.1', () => resolve());
  });
  const a = server.address() as AddressInfo;
  options.log?.(`fleet serve: http://${a.address}:${a.port}/ (${db.where})`);
  return server;
}
