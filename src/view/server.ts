/**
 * The live view's HTTP server, in the supervisor (which owns the fleet link and outlives worker
 * crashes, so /healthz can say "not ready" while the worker is down): the page (static files in
 * src/view/page/, no build step, nothing from the network), GET /metrics, GET /healthz,
 * GET /api/state, POST /api/threshold and the WebSocket /live.
 *
 * WebSocket (ws), not MJPEG or Server-Sent Events: one connection carries the pictures, their
 * overlay and the figures, and the write callback tells exactly when a viewer has taken a message,
 * which is what the per-viewer newest-only slot (viewers.ts) needs; SSE or a multipart stream
 * would need their own backpressure bookkeeping on a plain response for the same thing.
 *
 * Security: a bare port binds 127.0.0.1. Any other address needs a token (Authorization: Bearer or
 * ?token= for scripts; a browser opens /?token=TOKEN once, gets it back as an HttpOnly,
 * SameSite=Strict cookie and is redirected to /, and the page's files, WebSocket and POST carry
 * the cookie); without one the server refuses to start. With a token every route but /healthz answers 401 to a request without
 * it and sends nothing else. Without a token (loopback), requests must name a loopback Host, so a
 * web page elsewhere cannot reach the view through DNS rebinding, and the threshold can only be
 * set with a JSON body (a cross-site form cannot send one without a CORS preflight, never granted).
 * The WebSocket upgrade is refused (403) when the browser's Origin is not the view's own host:port.
 */
import { timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';

import { WebSocketServer, type WebSocket } from 'ws';

import { packageRoot } from '../runtime/native/binding.js';
import type { PreviewMessage } from '../supervisor/ipc.js';
import { isLoopback, type ListenAddress } from './listen.js';
import type { LiveFigures } from './live-figures.js';
import type { Metrics } from './metrics.js';
import { Viewer } from './viewers.js';

/** The page's files, served by name only (no paths from the request reach the file system). */
const PAGE_FILES: Readonly<Record<string, { file: string; type: string }>> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
};

/** The cookie that carries the token for the page (set by GET /?token=TOKEN). */
const TOKEN_COOKIE = 'lvunet_view_token';

/** Largest POST body (a threshold is a few bytes). */
const MAX_BODY_BYTES = 1024;

export interface ViewServerOptions {
  readonly listen: ListenAddress;
  readonly token?: string;
  readonly figures: LiveFigures;
  readonly metrics: Metrics;
  /** The same path as the fleet's set-threshold command; resolves with what the worker applied. */
  readonly setThreshold: (value: number) => Promise<unknown>;
  /** The number of viewers changed (the supervisor asks the worker for pictures only while > 0). */
  readonly onViewers: (count: number) => void;
  readonly log: (line: string) => void;
  /** How often the figures go to each viewer, ms (default 1000). */
  readonly stateIntervalMs?: number;
}

export class ViewServer {
  private readonly server: Server;
  private readonly wss: WebSocketServer;
  private readonly viewers = new Set<Viewer>();
  private readonly pageDir = join(packageRoot(), 'src', 'view', 'page');
  private stateTimer: NodeJS.Timeout | undefined;
  private readonly token: Buffer | undefined;

  constructor(private readonly o: ViewServerOptions) {
    if (!isLoopback(o.listen.host) && !o.token) {
      throw new Error(
        `the live view would listen on ${o.listen.host}:${o.listen.port}, reachable from other machines, without a token: set ui.token_file (or LVUNET_UI_TOKEN, --ui-token), or listen on 127.0.0.1`,
      );
    }
    this.token = o.token ? Buffer.from(o.token) : undefined;
    this.server = createServer((req, res) => void this.route(req, res));
    // maxPayload: viewers send nothing but pings; a large message is not from our page.
    this.wss = new WebSocketServer({ noServer: true, maxPayload: 4096 });
    this.server.on('upgrade', (req, socket, head) => this.upgrade(req, socket, head));
  }

  get viewerCount(): number {
    return this.viewers.size;
  }

  /** The viewers, for tests and the benchmark (messages sent and replaced, bytes held). */
  viewerStats(): { sent: number; replaced: number; heldBytes: number }[] {
    return [...this.viewers].map((v) => ({ sent: v.sent, replaced: v.replaced, heldBytes: v.heldBytes() }));
  }

  async start(): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.o.listen.port, this.o.listen.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.stateTimer = setInterval(() => this.broadcastState(), this.o.stateIntervalMs ?? 1000);
    this.stateTimer.unref();
    const address = this.server.address() as AddressInfo;
    this.o.log(`live view on http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}/${this.token ? ' (token required)' : ''}`);
    return address;
  }

  async close(): Promise<void> {
    clearInterval(this.stateTimer);
    for (const v of this.viewers) v.socket.terminate();
    this.wss.close();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** A picture from the worker: offered to every viewer's newest-only slot. */
  onPreview(p: PreviewMessage): void {
    if (this.viewers.size === 0) return;
    const text = JSON.stringify({ type: 'frame', frame: p.frame, width: p.width, height: p.height, jpeg: p.jpeg, overlay: p.overlay });
    for (const v of this.viewers) v.offer('frame', text);
  }

  private broadcastState(): void {
    if (this.viewers.size === 0) return;
    const text = JSON.stringify({ type: 'state', state: this.o.figures.state() });
    for (const v of this.viewers) v.offer('state', text);
  }

  /** The request carries the token (Bearer header, ?token= or the page's cookie), or none is needed. */
  private authorised(req: IncomingMessage, url: URL): boolean {
    if (!this.token) return hostIsLoopback(req.headers.host);
    const header = req.headers.authorization;
    const given = [header?.startsWith('Bearer ') ? header.slice(7) : undefined, url.searchParams.get('token') ?? undefined, cookie(req, TOKEN_COOKIE)];
    return given.some((g) => g !== undefined && this.isToken(g));
  }

  private isToken(given: string): boolean {
    if (!this.token) return false;
    const b = Buffer.from(given);
    return b.length === this.token.length && timingSafeEqual(b, this.token);
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://view');
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('X-Content-Type-Options', 'nosniff');
    try {
      if (url.pathname === '/healthz' && req.method === 'GET') {
        // Unauthenticated by design: systemd units and orchestrators poll it; it says only live/ready.
        const ready = this.o.figures.isReady;
        return send(res, ready ? 200 : 503, 'application/json', JSON.stringify({ live: true, ready }));
      }
      if (!this.authorised(req, url)) return send(res, 401, 'text/plain', 'a valid token is required (Authorization: Bearer TOKEN or ?token=TOKEN)\n');
      const page = PAGE_FILES[url.pathname];
      const query = url.searchParams.get('token');
      if (url.pathname === '/' && req.method === 'GET' && query !== null && this.isToken(query)) {
        // The page opened with ?token=: the token goes into a cookie and out of the address bar,
        // so the page's own files, its WebSocket and its threshold POST carry it (a browser can
        // put no header on a <script src> or a WebSocket). HttpOnly: no script reads it;
        // SameSite=Strict: no other site's page sends it.
        res.writeHead(303, {
          Location: '/',
          'Set-Cookie': `${TOKEN_COOKIE}=${encodeURIComponent(query)}; HttpOnly; SameSite=Strict; Path=/`,
          'Content-Length': 0,
        });
        return void res.end();
      }
      if (page && req.method === 'GET') {
        // Read on request: the page is a few KiB, and an edited file shows without a restart.
        return send(res, 200, page.type, readFileSync(join(this.pageDir, page.file)));
      }
      if (url.pathname === '/metrics' && req.method === 'GET') return send(res, 200, this.o.metrics.contentType, await this.o.metrics.text());
      if (url.pathname === '/api/state' && req.method === 'GET') return send(res, 200, 'application/json', JSON.stringify(this.o.figures.state()));
      if (url.pathname === '/api/threshold' && req.method === 'POST') return await this.threshold(req, res);
      return send(res, 404, 'text/plain', `no ${req.method ?? ''} ${url.pathname} here\n`);
    } catch (err) {
      this.o.log(`live view: ${req.method ?? ''} ${url.pathname} failed: ${(err as Error).message}`);
      if (!res.headersSent) send(res, 500, 'text/plain', `${(err as Error).message}\n`);
    }
  }

  private async threshold(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!(req.headers['content-type'] ?? '').startsWith('application/json')) return send(res, 415, 'text/plain', 'send {"value": 0.5} as application/json\n');
    const text = await readBody(req);
    if (text === undefined) return send(res, 413, 'text/plain', `a threshold body is a few bytes, not over ${MAX_BODY_BYTES}\n`);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (err) {
      return send(res, 400, 'text/plain', `not a JSON body: ${(err as Error).message}\n`);
    }
    const value = (body as { value?: unknown } | null)?.value;
    if (typeof value !== 'number' || !(value >= 0 && value <= 1)) return send(res, 400, 'text/plain', 'value must be a number in [0, 1]\n');
    try {
      const result = await this.o.setThreshold(value);
      this.o.figures.onThreshold(value);
      send(res, 200, 'application/json', JSON.stringify(result));
    } catch (err) {
      send(res, 503, 'text/plain', `threshold not applied: ${(err as Error).message}\n`);
    }
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    // On 'upgrade' Node takes its own 'error' listener off the socket: without this one a viewer
    // that resets the connection while it is refused (ECONNRESET) would crash the supervisor.
    socket.on('error', () => socket.destroy());
    const url = new URL(req.url ?? '/', 'http://view');
    const status =
      url.pathname !== '/live'
        ? '404 Not Found'
        : !sameOrigin(req)
          ? '403 Forbidden'
          : !this.authorised(req, url)
            ? '401 Unauthorized'
            : undefined;
    if (status) {
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      const viewer = new Viewer(ws);
      this.viewers.add(viewer);
      this.o.onViewers(this.viewers.size);
      viewer.offer('state', JSON.stringify({ type: 'state', state: this.o.figures.state() }));
      const gone = (): void => {
        if (!this.viewers.delete(viewer)) return;
        this.o.onViewers(this.viewers.size);
      };
      ws.on('close', gone);
      ws.on('error', gone);
    });
  }
}

/**
 * A browser names the page that opens a WebSocket in Origin, and WebSockets are exempt from the
 * same-origin policy: without this check any web page in a browser on the device could open
 * ws://127.0.0.1:PORT/live (cross-site WebSocket hijacking). A request with an Origin must come
 * from the view's own page (same host:port as Host); one without (a script, curl) is not a browser.
 */
function sameOrigin(req: IncomingMessage): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  const host = req.headers.host;
  if (!host) return false;
  try {
    const o = new URL(origin);
    if (o.protocol !== 'http:' && o.protocol !== 'https:') return false;
    // Through URL on both sides, so a default port (":80") compares equal to none.
    return o.host === new URL(`${o.protocol}//${host}`).host;
  } catch {
    return false; // "null" (a sandboxed or file: page) or garbage
  }
}

/** A cookie's value from the request, undefined when absent or not decodable. */
function cookie(req: IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim() !== name) continue;
    try {
      return decodeURIComponent(part.slice(eq + 1).trim());
    } catch {
      return undefined;
    }
  }
  return undefined;
}

function hostIsLoopback(host: string | undefined): boolean {
  if (!host) return false;
  const name = host.startsWith('[') ? host.slice(1, host.indexOf(']')) : host.replace(/:\d+$/, '');
  return isLoopback(name);
}

function send(res: ServerResponse, status: number, type: string, body: string | Buffer): void {
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

/** The body as text; undefined when it is over MAX_BODY_BYTES (read to its end, not kept). */
function readBody(req: IncomingMessage): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    req.on('data', (c: Buffer) => {
      n += c.length;
      if (n <= MAX_BODY_BYTES) chunks.push(c);
    });
    req.on('end', () => resolve(n > MAX_BODY_BYTES ? undefined : Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
