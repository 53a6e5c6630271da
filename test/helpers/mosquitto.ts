// Test helper: runs a real mosquitto broker as a child process on loopback.
//
// The broker keeps its port, config file and persistence directory across
// stop()/start(), so a test can take the broker away (gracefully or with
// SIGKILL), wait, and bring it back where clients expect it with its
// retained messages and persistent sessions intact.

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants, readFileSync } from 'node:fs';
import { chown, copyFile, mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from './paths.js';

/** Anything with tap's `t.teardown`. */
export interface TeardownHost {
  teardown(fn: () => unknown): void;
}

export interface BrokerTlsOptions {
  caFile: string;
  certFile: string;
  keyFile: string;
  /** Default true: clients must present a certificate signed by caFile. */
  requireCertificate?: boolean;
  /** Default true: the client certificate CN becomes the MQTT username. */
  useIdentityAsUsername?: boolean;
}

export interface StartBrokerOptions {
  /** Registers close() as teardown so the broker never outlives the test. */
  t?: TeardownHost;
  /** Fixed port; default is a free loopback port chosen at start. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /**
   * Persistence directory. Pass the same directory to a second startBroker()
   * to simulate a broker replaced on the same host. Default: inside the
   * helper's temp dir (deleted by close()); a caller-provided one is kept.
   */
  dataDir?: string;
  /** Default true. Ignored when `config` is given. */
  persistence?: boolean;
  tls?: BrokerTlsOptions;
  aclFile?: string;
  /** Default: true for a plain listener, false for a TLS one. */
  allowAnonymous?: boolean;
  /** Extra lines appended to the generated config. Ignored with `config`. */
  extraConfig?: string;
  /**
   * Complete config text used instead of the generated one. `{{PORT}}`,
   * `{{HOST}}` and `{{DATA_DIR}}` are replaced; without `{{PORT}}` the
   * `port` option must say where the listener is.
   */
  config?: string;
  /** How long start() waits for the listener. Default 10 s. */
  startTimeoutMs?: number;
  /** Path of the mosquitto binary; default $MOSQUITTO_BIN or a PATH/sbin search. */
  binary?: string;
  /** Picks the port when `port` is not given; default freePort(host). Tests of the retry inject one. */
  pickPort?: (host: string) => Promise<number>;
}

export interface Broker {
  readonly host: string;
  readonly port: number;
  /** mqtt://host:port, or mqtts:// when the listener is TLS. */
  readonly url: string;
  readonly dataDir: string;
  readonly configPath: string;
  /** pid of the current process, undefined while stopped. */
  readonly pid: number | undefined;
  readonly running: boolean;
  /** (Re)starts on the same port, config and persistence dir. */
  start(): Promise<void>;
  /** SIGTERM and wait: mosquitto writes its persistence file on the way out. */
  stop(): Promise<void>;
  /** SIGKILL and wait: a crash or power cut, nothing is saved beyond the last autosave. */
  kill(): Promise<void>;
  /** stop() then start(). */
  restart(): Promise<void>;
  /** SIGSTOP: the socket stays open but nothing is answered (a hung broker). */
  pause(): void;
  /** SIGCONT after pause(). */
  resume(): void;
  /** Everything mosquitto wrote to stdout/stderr over all runs (bounded). */
  logs(): string;
  /**
   * Resolves with the first matching line in the output so far (all runs),
   * waiting for it to appear; rejects after timeoutMs.
   */
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Stops the broker (SIGKILL if it is paused or hangs) and removes the helper's temp dir. */
  close(): Promise<void>;
}

const LOG_LIMIT = 512 * 1024;
const RUNNING_LINE = /mosquitto version \S+ running/;
const PROBE_AFTER_MS = 1_000;
const SEARCH_DIRS = ['/usr/sbin', '/usr/local/sbin', '/opt/homebrew/sbin', '/usr/local/opt/mosquitto/sbin'];

/** Absolute path of the mosquitto binary, or undefined when it is not installed. */
export function findMosquitto(): string | undefined {
  const fromEnv = process.env.MOSQUITTO_BIN;
  if (fromEnv) return isExecutable(fromEnv) ? fromEnv : undefined;
  // /usr/sbin is not on a normal user's PATH on Debian, which is where the package puts it.
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean), ...SEARCH_DIRS];
  for (const dir of dirs) {
    const candidate = path.join(dir, 'mosquitto');
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Asks the kernel for a currently free port on host. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const [port] = await freePorts(1, host);
  return port;
}

/**
 * `count` distinct free ports: all are held open until every one is known. Calling freePort() in a
 * row can hand back the same port twice once the first is let go (a NATS node was once given one port
 * for both its client and its cluster listener: "bind: address already in use").
 */
export async function freePorts(count: number, host = '127.0.0.1'): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < count; i++) {
      const server = net.createServer();
      server.unref();
      servers.push(server);
      ports.push(
        await new Promise<number>((resolve, reject) => {
          server.once('error', reject);
          server.listen(0, host, () => {
            const address = server.address();
            if (address === null || typeof address === 'string') reject(new Error('could not determine a free port'));
            else resolve(address.port);
          });
        }),
      );
    }
    return ports;
  } finally {
    await Promise.all(servers.map((server) => new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve()))));
  }
}

interface UnixIds {
  uid: number;
  gid: number;
}

/**
 * Started as root, mosquitto drops to the `mosquitto` user (or `nobody`)
 * before it loads TLS keys and writes persistence, so those files must
 * belong to that user. Non-root runs need nothing.
 */
function brokerUser(): UnixIds | undefined {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return undefined;
  let passwd: string;
  try {
    passwd = readFileSync('/etc/passwd', 'utf8');
  } catch {
    return undefined;
  }
  const entries = new Map<string, UnixIds>();
  for (const line of passwd.split('\n')) {
    const [name, , uid, gid] = line.split(':');
    if (name && uid !== undefined && gid !== undefined) {
      entries.set(name, { uid: Number(uid), gid: Number(gid) });
    }
  }
  return entries.get('mosquitto') ?? entries.get('nobody');
}

/**
 * Makes files or directory trees readable/writable by the user mosquitto runs
 * as. Only has an effect when the tests run as root; use it on certificate
 * and persistence directories that a config with `user mosquitto` points at.
 */
export async function grantBrokerAccess(...paths: string[]): Promise<void> {
  const ids = brokerUser();
  if (!ids) return;
  for (const p of paths) await chownTree(p, ids);
}

async function chownTree(p: string, ids: UnixIds): Promise<void> {
  await chown(p, ids.uid, ids.gid);
  if ((await stat(p)).isDirectory()) {
    for (const entry of await readdir(p)) await chownTree(path.join(p, entry), ids);
  }
}

// A test process that dies without running teardown must not leave brokers
// holding ports on the machine.
const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function trackChild(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const c of live) c.kill('SIGKILL');
    });
  }
}

function generatedConfig(opts: StartBrokerOptions): string {
  const tls = opts.tls;
  const allowAnonymous = opts.allowAnonymous ?? !tls;
  const lines = [
    'per_listener_settings false',
    `allow_anonymous ${allowAnonymous}`,
    // The test process owns every file it hands to the broker; staying root
    // avoids chowning the caller's files. No effect when not run as root.
    'user root',
  ];
  if (opts.aclFile) lines.push(`acl_file ${opts.aclFile}`);
  if (opts.persistence ?? true) {
    lines.push('persistence true', 'persistence_location {{DATA_DIR}}/');
  } else {
    lines.push('persistence false');
  }
  lines.push(
    'log_dest stderr',
    'log_type error',
    'log_type warning',
    'log_type notice',
    'log_type information',
    'connection_messages true',
    'listener {{PORT}} {{HOST}}',
  );
  if (tls) {
    lines.push(
      `cafile ${tls.caFile}`,
      `certfile ${tls.certFile}`,
      `keyfile ${tls.keyFile}`,
      `require_certificate ${tls.requireCertificate ?? true}`,
      `use_identity_as_username ${tls.useIdentityAsUsername ?? true}`,
    );
  }
  if (opts.extraConfig) lines.push(opts.extraConfig);
  return lines.join('\n') + '\n';
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function tryConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * Starts mosquitto and resolves once it reports itself running (or, for
 * configs that do not log to stdout/stderr, once the port accepts TCP).
 * Throws with install instructions if the binary is missing, and with the
 * broker's own output if it exits during start-up.
 *
 * While a broker is stopped its port is free; another process asking the
 * kernel for a free port could in principle take it before start().
 */
export async function startBroker(opts: StartBrokerOptions = {}): Promise<Broker> {
  // A port the caller fixed is never changed: its bind error is the caller's to see.
  return opts.port !== undefined ? startBrokerOnce(opts) : onFreshPorts(() => startBrokerOnce(opts));
}

/**
 * Runs `start` (which picks its ports with freePort/freePorts) again, up to three times in all, when
 * it fails with "address already in use": a picked port is let go before the server binds it, and
 * another test file running at the same time may take it first.
 */
export async function onFreshPorts<T>(start: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start();
    } catch (err) {
      if (attempt >= 3 || !/address already in use/i.test((err as Error).message)) throw err;
    }
  }
}

async function startBrokerOnce(opts: StartBrokerOptions): Promise<Broker> {
  const binary = opts.binary ?? findMosquitto();
  if (!binary || !isExecutable(binary)) {
    const where = binary ?? `$MOSQUITTO_BIN, PATH and ${SEARCH_DIRS.join(', ')}`;
    throw new Error(`mosquitto binary not found (looked at ${where}). Install it with: apt-get install mosquitto`);
  }
  if (opts.config !== undefined && !opts.config.includes('{{PORT}}') && opts.port === undefined) {
    throw new Error('startBroker: a custom config without {{PORT}} needs the port option');
  }

  const host = opts.host ?? '127.0.0.1';
  const port = opts.port ?? (await (opts.pickPort ?? freePort)(host));
  const tempDir = await mkdtemp(path.join(os.tmpdir(), 'lvunet-mosquitto-'));
  const dataDir = opts.dataDir ?? path.join(tempDir, 'data');
  await mkdir(dataDir, { recursive: true });
  await grantBrokerAccess(tempDir, dataDir);

  const template = opts.config ?? generatedConfig(opts);
  const configText = template
    .replaceAll('{{PORT}}', String(port))
    .replaceAll('{{HOST}}', host)
    .replaceAll('{{DATA_DIR}}', dataDir);
  const configPath = path.join(tempDir, 'mosquitto.conf');
  await writeFile(configPath, configText);

  const isTls = opts.tls !== undefined || /^\s*(cafile|capath|certfile)\s/m.test(configText);
  const url = `${isTls ? 'mqtts' : 'mqtt'}://${host}:${port}`;
  const startTimeoutMs = opts.startTimeoutMs ?? 10_000;

  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let log = '';
  // Output of the current run only, so a restart is not judged ready by the
  // previous run's start-up lines.
  let runLog = '';
  let logListeners: Array<() => void> = [];
  let closed = false;

  const appendLog = (chunk: Buffer): void => {
    const text = chunk.toString('utf8');
    log += text;
    if (log.length > LOG_LIMIT) log = log.slice(log.length - LOG_LIMIT);
    if (runLog.length < LOG_LIMIT) runLog += text;
    for (const listener of logListeners) listener();
  };

  const broker: Broker = {
    host,
    port,
    url,
    dataDir,
    configPath,
    get pid() {
      return child?.pid;
    },
    get running() {
      return child !== undefined;
    },

    async start() {
      if (closed) throw new Error('broker was closed');
      if (child) return;
      runLog = '';
      const proc = spawn(binary, ['-c', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
      trackChild(proc);
      proc.stdout?.on('data', appendLog);
      proc.stderr?.on('data', appendLog);
      const state: { exitInfo?: string; spawnError?: Error } = {};
      exited = new Promise((resolve) => {
        proc.once('exit', (code, signal) => {
          state.exitInfo = signal ? `signal ${signal}` : `code ${code}`;
          if (child === proc) child = undefined;
          resolve();
        });
        // spawn failures (ENOENT, EACCES) emit 'error' and never 'exit'.
        proc.once('error', (err) => {
          state.spawnError = err;
          if (child === proc) child = undefined;
          resolve();
        });
      });
      child = proc;

      const startedAt = Date.now();
      const deadline = startedAt + startTimeoutMs;
      for (;;) {
        if (state.spawnError) throw new Error(`could not run ${binary}: ${state.spawnError.message}`);
        if (state.exitInfo !== undefined) {
          throw new Error(`mosquitto exited during start-up (${state.exitInfo}):\n${log.slice(-4000)}`);
        }
        // mosquitto prints this once listeners are bound and TLS material is
        // loaded. Waiting for it instead of probing the port keeps a bogus
        // "connection failed" line out of TLS brokers' logs.
        if (RUNNING_LINE.test(runLog)) return;
        // Configs that log elsewhere than stdout/stderr never print it; fall
        // back to probing. A foreign listener on the port would also accept,
        // but then mosquitto exits with "address in use" (checked above).
        if (Date.now() - startedAt > PROBE_AFTER_MS && (await tryConnect(host, port))) {
          await sleep(50);
          if (state.exitInfo === undefined && child === proc) return;
          continue;
        }
        if (Date.now() > deadline) {
          proc.kill('SIGKILL');
          await exited;
          throw new Error(`mosquitto did not listen on ${host}:${port} within ${startTimeoutMs} ms:\n${log.slice(-4000)}`);
        }
        await sleep(50);
      }
    },

    async stop() {
      const proc = child;
      if (!proc) return;
      // A stopped process cannot act on SIGTERM until continued.
      proc.kill('SIGCONT');
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },

    async kill() {
      const proc = child;
      if (!proc) return;
      proc.kill('SIGKILL');
      await exited;
    },

    async restart() {
      await broker.stop();
      await broker.start();
    },

    pause() {
      child?.kill('SIGSTOP');
    },

    resume() {
      child?.kill('SIGCONT');
    },

    logs() {
      return log;
    },

    waitForLog(pattern, timeoutMs = 5_000) {
      return new Promise((resolve, reject) => {
        const check = (): boolean => {
          const line = log.split('\n').find((l) => pattern.test(l));
          if (line === undefined) return false;
          finish();
          resolve(line);
          return true;
        };
        const timer = setTimeout(() => {
          finish();
          reject(new Error(`no log line matching ${pattern} within ${timeoutMs} ms:\n${log.slice(-4000)}`));
        }, timeoutMs);
        const finish = (): void => {
          clearTimeout(timer);
          logListeners = logListeners.filter((l) => l !== listener);
        };
        const listener = (): void => {
          check();
        };
        if (!check()) logListeners.push(listener);
      });
    },

    async close() {
      if (closed) return;
      closed = true;
      await broker.stop();
      await rm(tempDir, { recursive: true, force: true });
    },
  };

  opts.t?.teardown(() => broker.close());
  try {
    await broker.start();
  } catch (err) {
    await broker.close();
    throw err;
  }
  return broker;
}

const DEPLOY_MOSQUITTO = path.join(REPO_ROOT, 'deploy', 'mosquitto');

/**
 * A broker with the shipped deployment's security: a test PKI from deploy/mosquitto/make-certs.sh
 * (in `dir`/pki, with client certificates for `devices` and the operator), the shipped ACL, mutual
 * TLS with the certificate CN as username. `pki(name)` gives a client's ca/cert/key paths.
 */
export async function startDeployTlsBroker(
  t: TeardownHost,
  dir: string,
  devices: readonly string[],
  extraConfig?: string,
): Promise<{ broker: Broker; pki: (name: string) => { ca: string; cert: string; key: string } }> {
  const pkiDir = path.join(dir, 'pki');
  await promisify(execFile)(path.join(DEPLOY_MOSQUITTO, 'make-certs.sh'), [pkiDir, ...devices]);
  const acl = path.join(dir, 'acl');
  await copyFile(path.join(DEPLOY_MOSQUITTO, 'acl'), acl);
  await grantBrokerAccess(dir);
  const broker = await startBroker({
    t,
    aclFile: acl,
    ...(extraConfig === undefined ? {} : { extraConfig }),
    tls: { caFile: path.join(pkiDir, 'ca.crt'), certFile: path.join(pkiDir, 'broker.crt'), keyFile: path.join(pkiDir, 'broker.key') },
  });
  const pki = (name: string): { ca: string; cert: string; key: string } => ({
    ca: path.join(pkiDir, 'ca.crt'),
    cert: path.join(pkiDir, `${name}.crt`),
    key: path.join(pkiDir, `${name}.key`),
  });
  return { broker, pki };
}
