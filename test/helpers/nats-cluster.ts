// Test helper: a three-node NATS cluster (JetStream + MQTT listener) on loopback, started from
// deploy/nats/nats-server.conf with only listen addresses, ports, routes, the store directory and
// file paths rewritten, and the accounts deploy/nats/make-accounts.sh writes. Certificates come
// from deploy/mosquitto/make-certs.sh (the same test PKI as the mosquitto tests).
//
// Every node keeps its ports and store directory across kill()/start(), so a test can SIGKILL a
// node mid-run and bring it back where the devices and the other nodes expect it.

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { accessSync, existsSync, constants as fsConstants } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { freePorts, onFreshPorts, type TeardownHost } from './mosquitto.js';

const run = promisify(execFile);

/** The checkout: this file runs from test/helpers/ (tap) or dist/test/helpers/ (bench). */
function repoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'deploy', 'nats', 'nats-server.conf'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('nats-cluster: deploy/nats/nats-server.conf not found above this file');
    dir = up;
  }
  return dir;
}
const REPO_ROOT = repoRoot();
const LOG_LIMIT = 256 * 1024;
const SEARCH_DIRS = ['/usr/sbin', '/usr/local/sbin', '/usr/bin', '/usr/local/bin'];

/** Absolute path of nats-server, or undefined when it is not installed. */
export function findNatsServer(): string | undefined {
  const fromEnv = process.env.NATS_SERVER_BIN;
  const candidates = fromEnv ? [fromEnv] : [...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean), ...SEARCH_DIRS].map((d) => path.join(d, 'nats-server'));
  for (const c of candidates) {
    try {
      accessSync(c, fsConstants.X_OK);
      return c;
    } catch {
      // next
    }
  }
  return undefined;
}

export interface NatsNode {
  readonly name: string;
  /** NATS protocol port (ingest, operator tools): TLS with verify_and_map. */
  readonly clientPort: number;
  /** MQTT listener: TLS with verify_and_map. */
  readonly mqttPort: number;
  readonly clusterPort: number;
  readonly monitorPort: number;
  readonly mqttUrl: string;
  readonly natsUrl: string;
  readonly pid: number | undefined;
  readonly running: boolean;
  /** Starts (again) on the same ports and store directory; resolves once /healthz answers 200. */
  start(): Promise<void>;
  /** SIGKILL and wait: a crash or power cut of this node. */
  kill(): Promise<void>;
  /** SIGTERM (lame duck) and wait. */
  stop(): Promise<void>;
  /** SIGHUP: re-reads the config and accounts.conf (permissions) without dropping connections. */
  reload(): Promise<void>;
  logs(): string;
}

export interface NatsCluster {
  readonly nodes: readonly NatsNode[];
  /** The test PKI: ca.crt, broker.*, operator.*, ingest-1.*, ingest-2.*, <device>.* */
  readonly pki: string;
  /** accounts.conf from make-accounts.sh, included by every node. */
  readonly accounts: string;
  readonly dir: string;
  /** TLS files of an identity in the PKI. */
  tls(identity: string): { ca: string; cert: string; key: string };
  /** Resolves once every running node reports healthy (JetStream current). */
  waitHealthy(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export interface StartNatsClusterOptions {
  t?: TeardownHost;
  /** Device ids to issue certificates and permissions for. */
  devices: readonly string[];
  /** Ingest identities (certificate CN); default ['ingest-1'] (make-certs.sh issues ingest-1 and ingest-2). */
  ingest?: readonly string[];
  /** Replaces a `key: value` line of the deploy config, e.g. { max_ack_pending: '1000' }. */
  overrides?: Record<string, string>;
  startTimeoutMs?: number;
}

const live = new Set<ChildProcess>();
let exitHook = false;
function track(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
  if (!exitHook) {
    exitHook = true;
    process.once('exit', () => {
      for (const c of live) c.kill('SIGKILL');
    });
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function healthz(port: number): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/healthz', timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
  });
}

/** The deploy config with this node's loopback ports, routes, store and PKI paths. */
export function nodeConfig(
  deployConfig: string,
  node: { clientPort: number; mqttPort: number; clusterPort: number; monitorPort: number; storeDir: string },
  routePorts: readonly number[],
  pki: string,
  overrides: Record<string, string> = {},
): string {
  let text = deployConfig
    .replace(/^listen: 0\.0\.0\.0:4222$/m, `listen: 127.0.0.1:${node.clientPort}`)
    .replace(/^http: 127\.0\.0\.1:8222$/m, `http: 127.0.0.1:${node.monitorPort}`)
    .replace(/^(\s*)listen: 0\.0\.0\.0:6222$/m, `$1listen: 127.0.0.1:${node.clusterPort}`)
    .replace(/^(\s*)listen: 0\.0\.0\.0:8883$/m, `$1listen: 127.0.0.1:${node.mqttPort}`)
    .replace(/^(\s*)store_dir: \/var\/lib\/nats$/m, `$1store_dir: ${JSON.stringify(node.storeDir)}`)
    .replaceAll('/etc/nats/lvunet/', `${pki}/`)
    .replace(/nats-route:\/\/nats-(\d)\.fleet\.lan:6222/g, (_, n: string) => `nats-route://127.0.0.1:${routePorts[Number(n) - 1]}`);
  for (const [key, value] of Object.entries(overrides)) {
    const re = new RegExp(`^(\\s*)${key}: .*$`, 'm');
    if (!re.test(text)) throw new Error(`nats-cluster: no "${key}:" line in deploy/nats/nats-server.conf to override`);
    text = text.replace(re, `$1${key}: ${value}`);
  }
  for (const [what, re] of [
    ['client listen', /0\.0\.0\.0:4222/],
    ['cluster/mqtt listen', /0\.0\.0\.0:(6222|8883)/],
    ['route', /fleet\.lan/],
    ['store_dir', /\/var\/lib\/nats/],
  ] as const) {
    if (re.test(text)) throw new Error(`nats-cluster: the deploy config changed shape; ${what} was not rewritten`);
  }
  return text;
}

/**
 * Starts the cluster, on fresh ports again when a node finds one taken (seen once in CI: "can't
 * listen to the monitor port ... address already in use").
 */
export async function startNatsCluster(opts: StartNatsClusterOptions): Promise<NatsCluster> {
  return onFreshPorts(() => startNatsClusterOnce(opts));
}

async function startNatsClusterOnce(opts: StartNatsClusterOptions): Promise<NatsCluster> {
  const binary = findNatsServer();
  if (!binary) throw new Error('nats-server not found (looked at $NATS_SERVER_BIN, PATH, /usr/sbin). Install it with: apt-get install nats-server');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lvunet-nats-'));
  const pki = path.join(dir, 'pki');
  const ingest = opts.ingest ?? ['ingest-1'];
  // make-certs.sh always issues ingest-1 and ingest-2 (and refuses them as device ids).
  const issued = /^ingest-[12]$/;
  await run(path.join(REPO_ROOT, 'deploy/mosquitto/make-certs.sh'), [pki, ...opts.devices, ...ingest.filter((i) => !issued.test(i))], {
    env: { ...process.env, BROKER_EKU: 'serverAuth,clientAuth' },
    maxBuffer: 16 << 20,
  });
  await run(path.join(REPO_ROOT, 'deploy/nats/make-accounts.sh'), [path.join(dir, 'accounts.conf'), ...ingest.flatMap((i) => ['--ingest', i]), ...opts.devices]);
  const deployConfig = await readFile(path.join(REPO_ROOT, 'deploy/nats/nats-server.conf'), 'utf8');
  // Twelve distinct ports (freePort() in a row once gave a node the same one twice).
  const picked = await freePorts(12);
  const ports = [0, 1, 2].map((i) => {
    const [clientPort, mqttPort, clusterPort, monitorPort] = picked.slice(4 * i, 4 * i + 4);
    return { clientPort, mqttPort, clusterPort, monitorPort };
  });
  const routePorts = ports.map((p) => p.clusterPort);
  const startTimeoutMs = opts.startTimeoutMs ?? 30_000;

  const nodes: NatsNode[] = [];
  for (let i = 0; i < 3; i++) {
    const name = `nats-${i + 1}`;
    const storeDir = path.join(dir, name);
    await mkdir(storeDir, { recursive: true });
    const configPath = path.join(dir, `${name}.conf`);
    await writeFile(configPath, nodeConfig(deployConfig, { ...ports[i], storeDir }, routePorts, pki, opts.overrides));
    let child: ChildProcess | undefined;
    let exited: Promise<void> = Promise.resolve();
    let log = '';
    const node: NatsNode = {
      name,
      ...ports[i],
      mqttUrl: `mqtts://127.0.0.1:${ports[i].mqttPort}`,
      natsUrl: `tls://127.0.0.1:${ports[i].clientPort}`,
      get pid() {
        return child?.pid;
      },
      get running() {
        return child !== undefined;
      },
      async start() {
        if (child) return;
        const proc = spawn(binary, ['-c', configPath], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LVUNET_NATS_NODE: name } });
        track(proc);
        const append = (chunk: Buffer): void => {
          log += chunk.toString('utf8');
          if (log.length > LOG_LIMIT) log = log.slice(-LOG_LIMIT);
        };
        proc.stdout?.on('data', append);
        proc.stderr?.on('data', append);
        let exitInfo: string | undefined;
        exited = new Promise((resolve) => {
          proc.once('exit', (code, signal) => {
            exitInfo = signal ? `signal ${signal}` : `code ${code}`;
            if (child === proc) child = undefined;
            resolve();
          });
          proc.once('error', (err) => {
            exitInfo = err.message;
            if (child === proc) child = undefined;
            resolve();
          });
        });
        child = proc;
        // Listening is enough here: /healthz stays 503 until a JetStream meta leader exists,
        // which needs a second node; waitHealthy() waits for that.
        const deadline = Date.now() + startTimeoutMs;
        while (!/Server is ready/.test(log)) {
          if (exitInfo !== undefined) throw new Error(`${name} exited during start-up (${exitInfo}):\n${log.slice(-4000)}`);
          if (Date.now() > deadline) {
            proc.kill('SIGKILL');
            await exited;
            throw new Error(`${name} not ready within ${startTimeoutMs} ms:\n${log.slice(-4000)}`);
          }
          await sleep(50);
        }
      },
      async kill() {
        const proc = child;
        if (!proc) return;
        proc.kill('SIGKILL');
        await exited;
      },
      async stop() {
        const proc = child;
        if (!proc) return;
        proc.kill('SIGTERM');
        const timer = setTimeout(() => proc.kill('SIGKILL'), 15_000);
        await exited;
        clearTimeout(timer);
      },
      async reload() {
        const before = (log.match(/Reloaded server configuration/g) ?? []).length;
        child?.kill('SIGHUP');
        const deadline = Date.now() + 10_000;
        while ((log.match(/Reloaded server configuration/g) ?? []).length === before) {
          if (Date.now() > deadline) throw new Error(`${name} did not report a reload within 10 s:\n${log.slice(-2000)}`);
          await sleep(50);
        }
      },
      logs: () => log,
    };
    nodes.push(node);
  }

  const cluster: NatsCluster = {
    nodes,
    pki,
    accounts: path.join(dir, 'accounts.conf'),
    dir,
    tls: (identity) => ({ ca: path.join(pki, 'ca.crt'), cert: path.join(pki, `${identity}.crt`), key: path.join(pki, `${identity}.key`) }),
    async waitHealthy(timeoutMs = startTimeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const codes = await Promise.all(nodes.filter((n) => n.running).map((n) => healthz(n.monitorPort)));
        if (codes.every((c) => c === 200)) return;
        if (Date.now() > deadline) {
          const states = nodes.map((n, i) => `${n.name}: ${n.running ? `healthz ${codes[i] ?? '?'}` : 'stopped'}`).join(', ');
          throw new Error(`NATS cluster not healthy within ${timeoutMs} ms (${states})`);
        }
        await sleep(200);
      }
    },
    async close() {
      await Promise.all(nodes.map((n) => n.kill()));
      await rm(dir, { recursive: true, force: true });
    },
  };
  opts.t?.teardown(() => cluster.close());
  try {
    await Promise.all(nodes.map((n) => n.start()));
    await cluster.waitHealthy();
  } catch (err) {
    await cluster.close();
    throw err;
  }
  return cluster;
}
