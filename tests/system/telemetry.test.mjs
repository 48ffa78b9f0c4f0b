// Telemetry over HTTP: devices ingest with their key, 202 once durable;
// users query points, rollups and latest values; bad input is refused with
// a reason and loses nothing else.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startArgus, isProblem, KIND } from './lib/harness.mjs';

let argus, org, dev, gw, child, other, key, gwKey, otherKey;
const T0 = Date.parse('2026-01-05T10:00:00Z');

before(async () => {
  argus = await startArgus();
  org = await argus.org('Telemetry Co');
  const call = async (m, p, b) => {
    const r = await argus.req(m, p, { token: org.token, body: b });
    assert.ok(r.status < 300, `${m} ${p}: ${r.text}`);
    return r.json;
  };
  const dt = await call('POST', '/api/v1/device-types', { name: 'Sensor' });
  dev = await call('POST', '/api/v1/devices', { name: 'S1', deviceTypeId: dt.id });
  gw = await call('POST', '/api/v1/devices', { name: 'GW', deviceTypeId: dt.id, deviceRole: 'gateway' });
  child = await call('POST', '/api/v1/devices', { name: 'C1', deviceTypeId: dt.id, parentDeviceId: gw.id, logicalIdentifier: 'c1' });
  other = await call('POST', '/api/v1/devices', { name: 'S2', deviceTypeId: dt.id });
  key = (await call('POST', `/api/v1/devices/${dev.id}/api-keys`, {})).key;
  gwKey = (await call('POST', `/api/v1/devices/${gw.id}/api-keys`, {})).key;
  otherKey = (await call('POST', `/api/v1/devices/${other.id}/api-keys`, {})).key;
});
after(async () => {
  const st = await argus.close();
  assert.equal(st.code, 0, 'clean exit (under ASan: no leak)');
});

const ingest = (body, apiKey = key, headers) => argus.req('POST', '/api/v1/telemetry/ingest', { apiKey, body, headers });
const query = (id, qs = '') => argus.req('GET', `/api/v1/telemetry/device/${id}${qs}`, { token: org.token });

test(`[${KIND}] one message: 202 with its id, then queryable`, async () => {
  const r = await ingest({ deviceId: dev.id, metrics: { temp: 21.5, door: true, mode: 'eco' }, timestamp: '2026-01-05T09:00:00Z' });
  assert.equal(r.status, 202, r.text);
  assert.match(r.json.id, /^[0-9a-f-]{36}$/);
  assert.equal(r.json.accepted, 1);
  await argus.settle();
  const q = await query(dev.id, '?startTime=2026-01-05T00:00:00Z&endTime=2026-01-06T00:00:00Z');
  assert.equal(q.status, 200, q.text);
  const byMetric = Object.fromEntries(q.json.data.map((p) => [p.metric, p]));
  assert.deepEqual(Object.keys(byMetric).sort(), ['door', 'mode', 'temp']);
  assert.equal(byMetric.temp.value, 21.5);
  assert.equal(byMetric.door.value, true);
  assert.equal(byMetric.mode.value, 'eco');
  assert.equal(byMetric.temp.timestamp, '2026-01-05T09:00:00.000Z');
  const d = await argus.req('GET', `/api/v1/devices/${dev.id}`, { token: org.token });
  assert.equal(d.json.status, 'online');
  assert.match(d.json.lastSeenAt, /Z$/);
});

test(`[${KIND}] batches: every point stored once, rollups equal a recomputation`, async () => {
  const model = [];
  for (let b = 0; b < 3; b++) {
    const batch = [];
    for (let i = 0; i < 100; i++) {
      const n = b * 100 + i;
      const ts = T0 + n * 37_000; // spread over ~3 hours
      const metrics = {};
      for (let k = 0; k < 5; k++) metrics[`m${k}`] = Math.round(Math.sin(n * (k + 1)) * 1000) / 10;
      batch.push({ deviceId: dev.id, metrics, timestamp: ts });
      for (const [metric, value] of Object.entries(metrics)) model.push({ metric, ts, value });
    }
    const r = await ingest(batch);
    assert.equal(r.status, 202, r.text);
    assert.equal(r.json.accepted, 100);
    assert.equal(new Set(r.json.ids).size, 100);
  }
  await argus.settle();
  const range = `startTime=${new Date(T0).toISOString()}&endTime=${new Date(T0 + 4 * 3600_000).toISOString()}`;
  const raw = await query(dev.id, `?${range}&metricKey=m3&limit=10000`);
  const m3 = model.filter((p) => p.metric === 'm3');
  assert.equal(raw.json.data.length, m3.length);
  assert.deepEqual(raw.json.data.map((p) => p.value), m3.sort((a, b) => b.ts - a.ts).map((p) => p.value), 'newest first, exact values');

  for (const [agg, width] of [['5min', 300_000], ['1hour', 3600_000], ['1day', 86400_000]]) {
    const r = await query(dev.id, `?${range}&metricKey=m1&aggregation=${agg}&limit=10000`);
    assert.equal(r.status, 200, r.text);
    const want = new Map();
    for (const p of model.filter((x) => x.metric === 'm1')) {
      const bucket = Math.floor(p.ts / width) * width;
      const w = want.get(bucket) || { min: Infinity, max: -Infinity, sum: 0, count: 0, lastTs: -1, last: null };
      w.min = Math.min(w.min, p.value); w.max = Math.max(w.max, p.value); w.sum += p.value; w.count++;
      if (p.ts > w.lastTs) { w.lastTs = p.ts; w.last = p.value; }
      want.set(bucket, w);
    }
    assert.equal(r.json.data.length, want.size, agg);
    for (const row of r.json.data) {
      const w = want.get(Date.parse(row.timestamp));
      assert.ok(w, `${agg} bucket ${row.timestamp}`);
      assert.equal(row.count, w.count);
      assert.equal(row.min, w.min);
      assert.equal(row.max, w.max);
      assert.ok(Math.abs(row.sum - w.sum) < 1e-6);
      assert.ok(Math.abs(row.avg - w.sum / w.count) < 1e-6);
      assert.equal(row.last, w.last);
    }
  }
  const latest = await argus.req('GET', `/api/v1/telemetry/device/${dev.id}/latest`, { token: org.token });
  assert.equal(latest.status, 200);
  const newest = model.filter((p) => p.metric === 'm0').sort((a, b) => b.ts - a.ts)[0];
  assert.equal(latest.json.metrics.m0.value, newest.value);
  assert.equal(latest.json.metrics.m0.timestamp, new Date(newest.ts).toISOString());
});

test(`[${KIND}] a gateway's key writes for the devices behind it, no other`, async () => {
  const ok = await ingest([{ deviceId: child.id, metrics: { rssi: -70 } }, { deviceId: gw.id, metrics: { up: 1 } }], gwKey);
  assert.equal(ok.status, 202, ok.text);
  const notBehind = await ingest({ deviceId: dev.id, metrics: { x: 1 } }, gwKey);
  assert.ok(isProblem(notBehind, 403));
  const others = await ingest({ deviceId: dev.id, metrics: { x: 1 } }, otherKey);
  assert.ok(isProblem(others, 403), "another device's key");
  const unknown = await ingest({ deviceId: '00000000-0000-7000-8000-000000000000', metrics: { x: 1 } });
  assert.ok(isProblem(unknown, 404));
  await argus.settle();
  const c = await query(child.id);
  assert.equal(c.json.data.length, 1);
  assert.equal(c.json.data[0].value, -70);
});

test(`[${KIND}] bad input gets a clear 4xx and nothing else is lost`, async () => {
  const before = (await query(other.id, '?limit=10000')).json.data.length;
  const good = (x) => ({ deviceId: other.id, metrics: { x } });
  const cases = [
    ['{"deviceId": ', 400, 'malformed-json'],
    ['', 400, 'malformed-json'],
    [`{"deviceId":"${other.id}","metrics":{"x":NaN}}`, 400, 'malformed-json'],
    [`{"deviceId":"${other.id}","metrics":{"x":Infinity}}`, 400, 'malformed-json'],
    [`{"deviceId":"${other.id}","metrics":{"x":1e999}}`, 400, 'malformed-json'],
    [{ deviceId: other.id, metrics: { x: 'a'.repeat(2000) } }, 400, 'validation'],
    [{ deviceId: other.id, metrics: { x: [1, 2] } }, 400, 'validation'],
    [{ deviceId: other.id, metrics: 5 }, 400, 'validation'],
    [{ deviceId: other.id }, 400, 'validation'],
    [{ deviceId: 42, metrics: { x: 1 } }, 400, 'validation'],
    [{ deviceId: other.id, metrics: { x: 1 }, timestamp: '3026-01-01T00:00:00Z' }, 400, 'validation'],
    [{ deviceId: other.id, metrics: { x: 1 }, timestamp: 0 }, 400, 'validation'],
    [{ deviceId: other.id, metrics: { x: 1 }, timestamp: 'soon' }, 400, 'validation'],
    [[], 400, 'validation'],
    [Array.from({ length: 1001 }, () => good(1)), 400, 'validation'],
    [[good(1), { deviceId: other.id, metrics: {} }, good(2)], 400, 'validation'],
    ['x'.repeat(10 * 1024 * 1024), 413, 'payload-too-large'],
  ];
  for (const [body, status, slug] of cases) {
    const r = await ingest(body, otherKey);
    assert.ok(isProblem(r, status), `${JSON.stringify(body).slice(0, 80)} → ${r.status} ${r.text.slice(0, 200)}`);
    assert.equal(r.json.type, `urn:argus:problem:${slug}`);
  }
  const mixed = await ingest([good(1), { deviceId: other.id, metrics: {} }, good(2)], otherKey);
  assert.deepEqual(mixed.json.errors, [{ index: 1, message: 'metrics is empty' }]);
  const manyMetrics = {};
  for (let i = 0; i < 100000; i++) manyMetrics[`m${i}`] = i;
  const huge = await ingest({ deviceId: other.id, metrics: manyMetrics }, otherKey);
  assert.ok(huge.status === 400 || huge.status === 413, `100,000 metrics → ${huge.status}`);
  assert.ok(isProblem(huge, huge.status));
  assert.ok(isProblem(await ingest(good(1), ''), 401), 'no key');
  assert.ok(isProblem(await argus.req('POST', '/api/v1/telemetry/ingest', { token: org.token, body: good(1) }), 401), 'a user token is not a device key');
  assert.ok(isProblem(await ingest(good(1), otherKey, { 'content-type': 'text/plain' }), 415));

  await argus.settle();
  const after = (await query(other.id, '?limit=10000')).json.data.length;
  assert.equal(after, before, 'nothing from the refused requests was stored');
  const r = await ingest(good(7), otherKey);
  assert.equal(r.status, 202, 'the device can still send');
  await argus.settle();
  assert.equal((await query(other.id, '?limit=10000')).json.data.length, before + 1);
});

test(`[${KIND}] query parameters are checked`, async () => {
  for (const qs of ['?aggregation=2min', '?limit=0', '?limit=10001', '?startTime=yesterday',
    '?startTime=2026-01-02T00:00:00Z&endTime=2026-01-01T00:00:00Z', '?metricKey=', '?colour=red']) {
    const r = await query(dev.id, qs);
    assert.ok(isProblem(r, 400), `${qs} → ${r.status}`);
  }
  assert.ok(isProblem(await query('nope'), 400));
  assert.ok(isProblem(await query('00000000-0000-7000-8000-000000000000'), 404));
});

test(`[${KIND}] clients that hang up while their answer is pending lose nothing`, async () => {
  const u = new URL(argus.base);
  const before = (await query(dev.id, '?metricKey=gone&limit=10000')).json.data.length;
  const n = 40;
  await Promise.all(Array.from({ length: n }, (_, i) => new Promise((res) => {
    const body = JSON.stringify({ deviceId: dev.id, metrics: { gone: i }, timestamp: T0 + 10_000_000 + i });
    const sock = net.connect(Number(u.port), u.hostname, () => {
      sock.write(`POST /api/v1/telemetry/ingest HTTP/1.1\r\nHost: x\r\nX-API-Key: ${key}\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
      setImmediate(() => { sock.destroy(); res(); });
    });
    sock.on('error', res);
  })));
  // Each request was complete when the client left: it is stored anyway.
  const deadline = Date.now() + 10000;
  let have = before;
  while (have < before + n && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    have = (await query(dev.id, '?metricKey=gone&limit=10000&startTime=2000-01-01T00:00:00Z')).json.data.length;
  }
  assert.equal(have, before + n);
  assert.equal((await argus.req('GET', '/healthz')).status, 200);
});
