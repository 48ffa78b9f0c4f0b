// Health, readiness, metrics, static UI, OpenAPI completeness, sign-in.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startArgus, isProblem, runCli, STORE_KIND } from './lib/harness.mjs';

let argus, org;

function rawGet(base, path) {
  const u = new URL(base);
  return new Promise((res, rej) => {
    const sock = net.connect(Number(u.port), u.hostname, () => {
      sock.end(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    });
    let data = '';
    sock.on('data', (d) => { data += d; });
    sock.on('end', () => res(data));
    sock.on('error', rej);
  });
}

before(async () => {
  argus = await startArgus();
  org = await argus.org('Acme Foundation');
});
after(async () => {
  const st = await argus.close();
  assert.equal(st.code, 0, 'argus exits 0 on SIGTERM');
});

test(`[${STORE_KIND}] healthz and readyz answer`, async () => {
  const h = await argus.req('GET', '/healthz');
  assert.equal(h.status, 200);
  assert.equal(h.json.status, 'ok');
  const r = await argus.req('GET', '/readyz');
  assert.equal(r.status, 200);
  assert.equal(r.json.status, 'ready');
});

test(`[${STORE_KIND}] metrics are Prometheus text and count requests`, async () => {
  await argus.req('GET', '/healthz');
  const m = await argus.req('GET', '/metrics');
  assert.equal(m.status, 200);
  assert.match(m.headers.get('content-type'), /^text\/plain/);
  assert.match(m.text, /# TYPE argus_http_requests_total counter/);
  assert.match(m.text, /argus_http_requests_total\{method="GET",route="\/healthz",status="200"\} [1-9]/);
  assert.match(m.text, /argus_http_request_duration_seconds_bucket\{route="\/healthz",le="\+Inf"\} [1-9]/);
});

test(`[${STORE_KIND}] the placeholder page is served, with SPA fallback and no escapes`, async () => {
  const root = await argus.req('GET', '/');
  assert.equal(root.status, 200);
  assert.match(root.headers.get('content-type'), /^text\/html/);
  assert.match(root.text, /Argus test page/);
  const deep = await argus.req('GET', '/org/iot-hub/devices');
  assert.equal(deep.status, 200, 'client-side routes get index.html');
  assert.match(deep.text, /Argus test page/);
  const missing = await argus.req('GET', '/assets/missing.js');
  assert.ok(isProblem(missing, 404));
  // Raw requests: fetch would normalise the dots away before sending.
  for (const path of ['/../../etc/passwd', '/%2e%2e/%2e%2e/etc/passwd', '/static/..%2f..%2f..%2fetc/passwd']) {
    const raw = await rawGet(argus.base, path);
    assert.match(raw, /^HTTP\/1\.1 404/, `${path} is refused`);
    assert.doesNotMatch(raw, /root:/);
  }
  const api404 = await argus.req('GET', '/api/v1/nothing-here');
  assert.ok(isProblem(api404, 404), 'unknown API paths are 404 problems, not the page');
});

test(`[${STORE_KIND}] wrong method is 405 with Allow`, async () => {
  const r = await argus.req('PUT', '/api/v1/devices', { token: org.token, body: {} });
  assert.ok(isProblem(r, 405));
  assert.match(r.headers.get('allow'), /GET/);
  assert.match(r.headers.get('allow'), /POST/);
});

test(`[${STORE_KIND}] login, me, and bad credentials`, async () => {
  const me = await argus.req('GET', '/api/v1/auth/me', { token: org.token });
  assert.equal(me.status, 200);
  assert.equal(me.json.email, org.email);
  assert.equal(me.json.role, 'admin');
  assert.equal(me.json.organizationId, org.id);
  assert.equal(me.json.organization.name, 'Acme Foundation');
  assert.equal(me.json.password, undefined, 'the password hash is never returned');

  const wrong = await argus.req('POST', '/api/v1/auth/login', { body: { email: org.email, password: 'nope-nope-nope' } });
  assert.ok(isProblem(wrong, 401));
  const nobody = await argus.req('POST', '/api/v1/auth/login', { body: { email: 'nobody@x.test', password: 'nope-nope-nope' } });
  assert.ok(isProblem(nobody, 401));
  assert.equal(nobody.json.detail, wrong.json.detail, 'unknown email and wrong password look alike');
  const upper = await argus.req('POST', '/api/v1/auth/login', { body: { email: org.email.toUpperCase(), password: org.password } });
  assert.equal(upper.status, 200, 'emails are case-insensitive');

  assert.ok(isProblem(await argus.req('GET', '/api/v1/auth/me'), 401));
  assert.ok(isProblem(await argus.req('GET', '/api/v1/auth/me', { token: 'garbage' }), 401));
  const [h, p] = org.token.split('.');
  const forged = `${h}.${p}.${'A'.repeat(43)}`;
  assert.ok(isProblem(await argus.req('GET', '/api/v1/auth/me', { token: forged }), 401), 'a bad signature is refused');
  const none = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${p}.`;
  assert.ok(isProblem(await argus.req('GET', '/api/v1/auth/me', { token: none }), 401), 'alg none is refused');
});

test(`[${STORE_KIND}] a disabled user loses access at once`, async () => {
  const u = await argus.user(org.token, 'operator');
  assert.equal((await argus.req('GET', '/api/v1/devices', { token: u.token })).status, 200);
  const d = await argus.req('PATCH', `/api/v1/users/${u.id}`, { token: org.token, body: { status: 'disabled' } });
  assert.equal(d.status, 200);
  assert.ok(isProblem(await argus.req('GET', '/api/v1/devices', { token: u.token }), 401));
});

test(`[${STORE_KIND}] OpenAPI describes exactly the routes the server has`, async () => {
  const doc = await argus.req('GET', '/api/v1/openapi.json');
  assert.equal(doc.status, 200);
  assert.equal(doc.json.openapi, '3.1.0');
  const documented = new Set();
  for (const [path, item] of Object.entries(doc.json.paths)) {
    for (const method of Object.keys(item)) documented.add(`${method.toUpperCase()} ${path}`);
  }
  const routes = await runCli(['routes']);
  assert.equal(routes.code, 0);
  const actual = new Set(routes.stdout.trim().split('\n'));
  assert.ok(actual.size > 40);
  assert.deepEqual([...actual].filter((r) => !documented.has(r)), [], 'routes missing from the document');
  assert.deepEqual([...documented].filter((r) => !actual.has(r)), [], 'documented operations the server lacks');

  // Every documented operation is really served: probing it never meets
  // the router's "no such route" (404 with no resource / 405).
  const id = '00000000-0000-7000-8000-000000000000';
  for (const op of documented) {
    const [method, path] = op.split(' ');
    const concrete = path.replace(/\{[^}]+\}/g, id);
    const r = await argus.req(method, concrete, { token: org.token, body: ['POST', 'PATCH'].includes(method) ? {} : undefined });
    assert.notEqual(r.status, 405, `${op} answered 405`);
    if (r.status === 404) assert.doesNotMatch(r.json.detail, /^no resource at/, `${op} is not routed`);
    const opDoc = doc.json.paths[path][method.toLowerCase()];
    assert.ok(opDoc.responses, `${op} documents its responses`);
    for (const ref of JSON.stringify(opDoc).matchAll(/"#\/components\/schemas\/([^"]+)"/g)) {
      assert.ok(doc.json.components.schemas[ref[1]], `${op} refers to a missing schema ${ref[1]}`);
    }
  }
});

test(`[${STORE_KIND}] organisation can be read and renamed by its admin`, async () => {
  const g = await argus.req('GET', '/api/v1/organization', { token: org.token });
  assert.equal(g.status, 200);
  assert.equal(g.json.id, org.id);
  const p = await argus.req('PATCH', '/api/v1/organization', { token: org.token, body: { name: 'Acme Renamed', settings: { offlineAfterSeconds: 300 } } });
  assert.equal(p.status, 200);
  assert.equal(p.json.name, 'Acme Renamed');
  assert.deepEqual(p.json.settings, { offlineAfterSeconds: 300 });
  const bad = await argus.req('PATCH', '/api/v1/organization', { token: org.token, body: { slug: 'x' } });
  assert.ok(isProblem(bad, 400));
});

test(`[${STORE_KIND}] the CLI reports bad input with a message and non-zero exit`, async () => {
  const r = await argus.cli(['org', 'create', 'X', '--admin-email', 'not-an-email', '--admin-password', 'short']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /password of at least 8/);
  const dup = await argus.cli(['org', 'create', 'Y', '--admin-email', org.email, '--admin-password', 'long enough pw']);
  assert.equal(dup.code, 1);
  assert.match(dup.stderr, /exists already/);
  const unknown = await runCli(['serve', '--no-such-flag']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown option --no-such-flag/);
  const badPort = await runCli(['serve', '--port', '99999']);
  assert.equal(badPort.code, 2);
  assert.match(badPort.stderr, /--port must be an integer/);
  const cmd = await runCli(['frobnicate']);
  assert.equal(cmd.code, 2);
});
