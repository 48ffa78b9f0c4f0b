// Starts the real argus binary against a private store and talks to it over
// HTTP. The store is chosen by ARGUS_TEST_STORE: "sqlite" (a file in a temp
// dir) or "postgres" (a fresh database on the private server whose URL is in
// ARGUS_TEST_PG_URL, started by scripts/test.sh). The bus is chosen by
// ARGUS_TEST_BUS: "mem" (in-process, the default), "redis" or "nats" — then
// every server gets a private redis-server or nats-server -js of its own on
// a free loopback port, stopped with it.
import { spawn, execFileSync } from 'node:child_process';
import { createServer, connect } from 'node:net';
import { mkdtempSync, rmSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';

export const ROOT = resolve(import.meta.dirname, '../../..');
export const BIN = process.env.ARGUS_BIN || join(ROOT, 'build/argus');
export const STORE_KIND = process.env.ARGUS_TEST_STORE || 'sqlite';
export const BUS_KIND = process.env.ARGUS_TEST_BUS || 'mem';
/** "[sqlite]" or "[postgres+redis]": the label of a test's configuration. */
export const KIND = BUS_KIND === 'mem' ? STORE_KIND : `${STORE_KIND}+${BUS_KIND}`;

export function freePort() {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.on('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => res(port));
    });
  });
}

async function waitPort(port, proc, what, log) {
  const deadline = Date.now() + 20000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`${what} exited: ${log()}`);
    const ok = await new Promise((res) => {
      const s = connect(port, '127.0.0.1');
      s.on('connect', () => { s.destroy(); res(true); });
      s.on('error', () => res(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${what} did not start: ${log()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A private bus server in dir: {url, stop()}; null for the in-process bus. */
export async function startBus(dir, kind = BUS_KIND) {
  if (kind === 'mem') return null;
  const port = await freePort();
  const data = join(dir, `${kind}-data`);
  mkdirSync(data, { recursive: true });
  let args, bin;
  if (kind === 'redis') {
    bin = 'redis-server';
    args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', data, '--appendonly', 'yes',
      '--appendfsync', 'everysec', '--save', '', '--protected-mode', 'yes'];
  } else if (kind === 'nats') {
    bin = 'nats-server';
    // Messages up to the ingest limit (1 MiB bodies) plus their envelope.
    const conf = join(dir, 'nats.conf');
    writeFileSync(conf, 'max_payload: 4194304\n');
    args = ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', data, '-c', conf];
  } else {
    throw new Error(`unknown ARGUS_TEST_BUS ${kind}`);
  }
  let out = '';
  const proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout.on('data', (d) => { out += d; });
  proc.stderr.on('data', (d) => { out += d; });
  const exited = new Promise((res) => proc.on('exit', res));
  await waitPort(port, proc, bin, () => out);
  return {
    kind,
    url: `${kind}://127.0.0.1:${port}`,
    async stop() {
      if (proc.exitCode === null) { proc.kill('SIGTERM'); await exited; }
    },
  };
}

/** The bus options of a server or worker on bus (short leases, so that a
 * killed worker's messages move on within seconds). */
export function busArgs(bus) {
  return bus ? ['--bus', bus.url, '--bus-lease', '1500', '--bus-ack-wait', '1500'] : [];
}

function pgAdmin(url, sql) {
  execFileSync('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', url, '-c', sql], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** A fresh, empty store URL and a function that drops it. */
export function freshStore(dir) {
  if (STORE_KIND === 'sqlite') {
    return { url: `sqlite:${join(dir, 'argus.db')}`, drop() {} };
  }
  if (STORE_KIND !== 'postgres') throw new Error(`unknown ARGUS_TEST_STORE ${STORE_KIND}`);
  const base = process.env.ARGUS_TEST_PG_URL;
  if (!base) throw new Error('ARGUS_TEST_STORE=postgres needs ARGUS_TEST_PG_URL (scripts/test.sh sets it)');
  const name = `t_${randomBytes(6).toString('hex')}`;
  pgAdmin(base, `CREATE DATABASE ${name}`);
  const u = new URL(base);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    drop() {
      try { pgAdmin(base, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`); } catch { /* best effort */ }
    },
  };
}

/** One value from a store by SQL (for checks the API does not offer):
 * the first column of the first row, as text. */
export function storeSql(store, query) {
  if (store.url.startsWith('sqlite:')) {
    return execFileSync('sqlite3', [store.url.slice('sqlite:'.length), query], { encoding: 'utf8' }).trim();
  }
  return execFileSync('psql', ['-X', '-q', '-t', '-A', store.url, '-c', query], { encoding: 'utf8' }).trim();
}

/** Runs an argus CLI command to completion; returns {code, stdout, stderr}. */
export function runCli(args, opts = {}) {
  return new Promise((res) => {
    const p = spawn(BIN, args, { env: { ...process.env, ...opts.env } });
    let stdout = '', stderr = '';
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; });
    p.on('close', (code) => res({ code, stdout, stderr }));
  });
}

export class Argus {
  constructor({ store, dir, bus = null, command = 'serve', extraArgs = [] }) {
    this.store = store;
    this.dir = dir;
    this.bus = bus;
    this.command = command;
    this.extraArgs = extraArgs;
    this.log = '';
  }

  /** Starts the server and waits until it prints its URL. */
  async start() {
    this.log = '';
    const web = join(this.dir, 'web');
    mkdirSync(web, { recursive: true });
    writeFileSync(join(web, 'index.html'), '<!doctype html><title>Argus</title><h1>Argus test page</h1>');
    const args = [this.command, '--store', this.store.url, '--port', '0', '--web-dir', web,
      '--threads', '2', '--log-requests=false', ...busArgs(this.bus), ...this.extraArgs];
    this.proc = spawn(BIN, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    this.exited = new Promise((res) => this.proc.on('exit', (code, signal) => res({ code, signal })));
    this.base = await new Promise((res, rej) => {
      const timer = setTimeout(() => rej(new Error(`argus did not start in 30 s:\n${this.log}`)), 30000);
      this.proc.stderr.on('data', (d) => {
        this.log += d;
        const m = /msg="listening" url=(http:\/\/[^\s]+)/.exec(this.log);
        if (m) { clearTimeout(timer); res(m[1]); }
      });
      this.exited.then(({ code }) => { clearTimeout(timer); rej(new Error(`argus exited with ${code}:\n${this.log}`)); });
    });
    return this;
  }

  /** SIGTERM and wait; resolves to the exit status. */
  async stop() {
    if (!this.proc || this.proc.exitCode !== null) return this.exited;
    this.proc.kill('SIGTERM');
    const timeout = new Promise((_, rej) => setTimeout(() => rej(new Error('argus did not stop in 20 s')), 20000));
    return Promise.race([this.exited, timeout]);
  }

  cli(args) {
    return runCli([...args, '--store', this.store.url]);
  }

  /** Prometheus samples of /metrics as a Map of "name{labels}" → value. */
  async metrics() {
    const r = await fetch(`${this.base}/metrics`);
    const m = new Map();
    for (const line of (await r.text()).split('\n')) {
      if (!line || line.startsWith('#')) continue;
      const i = line.lastIndexOf(' ');
      m.set(line.slice(0, i), Number(line.slice(i + 1)));
    }
    return m;
  }

  /** With an external bus, waits until the stages in this process have
   * finished every message it published (202 means durable in the bus;
   * points follow a moment later). Immediate with the in-process bus. */
  async settle(timeoutMs = 30000) {
    if (!this.bus) return;
    const deadline = Date.now() + timeoutMs;
    const done = (m, stage) => ['ok', 'dead', 'malformed']
      .reduce((a, r) => a + (m.get(`argus_stage_messages_total{stage="${stage}",result="${r}"}`) || 0), 0);
    for (;;) {
      const m = await this.metrics();
      const published = m.get('argus_pipeline_messages_total{result="published"}') || 0;
      const normalized = m.get('argus_stage_messages_total{stage="normalize",result="ok"}') || 0;
      if (done(m, 'archive') >= published && done(m, 'normalize') >= published &&
          done(m, 'device-writer') >= normalized) return;
      if (Date.now() > deadline) throw new Error(`the pipeline did not settle: ${[...m].filter(([k]) => k.startsWith('argus_stage_messages')).join(' ')}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** One HTTP request; body objects are sent as JSON, strings as they are. */
  async req(method, path, { token, body, headers = {}, apiKey } = {}) {
    const h = { ...headers };
    if (token) h.authorization = `Bearer ${token}`;
    if (apiKey) h['x-api-key'] = apiKey;
    let payload;
    if (body !== undefined) {
      payload = typeof body === 'string' || body instanceof Uint8Array ? body : JSON.stringify(body);
      if (!('content-type' in h)) h['content-type'] = 'application/json';
    }
    const r = await fetch(this.base + path, { method, headers: h, body: payload });
    const text = await r.text();
    let json;
    try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
    return { status: r.status, headers: r.headers, text, json };
  }

  async login(email, password) {
    const r = await this.req('POST', '/api/v1/auth/login', { body: { email, password } });
    if (r.status !== 200) throw new Error(`login ${email}: ${r.status} ${r.text}`);
    return r.json.token;
  }

  /** Creates an organisation through the CLI and signs its admin in. */
  async org(name) {
    const email = `admin-${randomBytes(4).toString('hex')}@${name.toLowerCase().replace(/[^a-z0-9]/g, '')}.test`;
    const password = 'correct horse battery';
    const r = await this.cli(['org', 'create', name, '--admin-email', email, '--admin-password', password]);
    if (r.code !== 0) throw new Error(`org create: ${r.code} ${r.stderr}`);
    const token = await this.login(email, password);
    return { id: r.stdout.trim(), email, password, token };
  }

  /** Creates a user of the given role in the org of adminToken; returns its token. */
  async user(adminToken, role) {
    const email = `${role}-${randomBytes(4).toString('hex')}@example.test`;
    const password = 'another long password';
    const r = await this.req('POST', '/api/v1/users', { token: adminToken, body: { email, name: `A ${role}`, role, password } });
    if (r.status !== 201) throw new Error(`user create: ${r.status} ${r.text}`);
    return { id: r.json.id, token: await this.login(email, password) };
  }
}

/** A started server on a fresh store; call .close() in after(). */
export async function startArgus(opts = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'argus-test-'));
  const store = freshStore(dir);
  let bus = null;
  const a = new Argus({ store, dir, ...opts });
  try {
    a.bus = bus = await startBus(dir);
    await a.start();
  } catch (e) {
    if (bus) await bus.stop();
    store.drop();
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  // Closing checks the exit status: 0 after SIGTERM means a graceful stop,
  // and under ASan also that nothing leaked.
  a.close = async () => {
    const st = await a.stop();
    if (bus) await bus.stop();
    store.drop();
    rmSync(dir, { recursive: true, force: true });
    if (st.code !== 0) {
      const report = a.log.split('\n').filter((l) => /Sanitizer|runtime error|#\d+ /.test(l)).slice(0, 40).join('\n');
      throw new Error(`argus exited with ${st.code} (signal ${st.signal})\n${report}`);
    }
    return st;
  };
  return a;
}

/** Asserts a problem+json answer with the given status. */
export function isProblem(r, status) {
  const ct = r.headers.get('content-type') || '';
  return r.status === status && ct.startsWith('application/problem+json') &&
    r.json && typeof r.json.type === 'string' && r.json.type.startsWith('urn:argus:problem:') &&
    r.json.status === status && typeof r.json.detail === 'string';
}
