// Replay of raw telemetry and the dead-letter queue: replays are idempotent,
// messages that fail now go to the DLQ with their reason, and DLQ entries
// can be listed, inspected, replayed and deleted — nothing vanishes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startArgus, isProblem, KIND } from './lib/harness.mjs';

let argus, org, dt;
const call = (m, p, b) => argus.req(m, p, { token: org.token, body: b });
const T0 = Date.parse('2026-03-01T00:00:00Z');

before(async () => {
  argus = await startArgus();
  org = await argus.org('Replay Co');
  dt = (await call('POST', '/api/v1/device-types', { name: 'R' })).json;
});
after(async () => {
  const st = await argus.close();
  assert.equal(st.code, 0);
});

async function device(name) {
  const d = (await call('POST', '/api/v1/devices', { name, deviceTypeId: dt.id })).json;
  const k = (await call('POST', `/api/v1/devices/${d.id}/api-keys`, {})).json.key;
  return { ...d, key: k };
}

const window = () => ({ startTime: new Date(Date.now() - 3600_000).toISOString(), endTime: new Date(Date.now() + 60_000).toISOString() });

test(`[${KIND}] replaying raw telemetry changes nothing that was right`, async () => {
  const d = await device('steady');
  const batch = Array.from({ length: 50 }, (_, i) => ({ deviceId: d.id, metrics: { v: i, w: i * 2 }, timestamp: T0 + i * 60_000 }));
  assert.equal((await argus.req('POST', '/api/v1/telemetry/ingest', { apiKey: d.key, body: batch })).status, 202);
  await argus.settle();
  const q = `/api/v1/telemetry/device/${d.id}?metricKey=v&startTime=2026-03-01T00:00:00Z&endTime=2026-03-02T00:00:00Z&limit=10000`;
  const before = (await call('GET', q)).json.data;
  const beforeAgg = (await call('GET', `${q}&aggregation=1hour`)).json.data;
  const r = await call('POST', '/api/v1/telemetry/replay', { ...window(), deviceId: d.id });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json, { replayed: 50, deadLettered: 0, more: false });
  assert.deepEqual((await call('GET', q)).json.data, before, 'points unchanged');
  assert.deepEqual((await call('GET', `${q}&aggregation=1hour`)).json.data, beforeAgg, 'rollups unchanged');
  const capped = await call('POST', '/api/v1/telemetry/replay', { ...window(), deviceId: d.id, limit: 10 });
  assert.deepEqual(capped.json, { replayed: 10, deadLettered: 0, more: true });
});

test(`[${KIND}] messages that fail on replay go to the DLQ, and can be inspected, replayed, deleted`, async () => {
  const d = await device('doomed');
  for (let i = 0; i < 3; i++) {
    const r = await argus.req('POST', '/api/v1/telemetry/ingest', { apiKey: d.key, body: { deviceId: d.id, metrics: { x: i }, timestamp: T0 + i } });
    assert.equal(r.status, 202);
  }
  await argus.settle();
  assert.equal((await call('DELETE', `/api/v1/devices/${d.id}`)).status, 204);
  const r = await call('POST', '/api/v1/telemetry/replay', { ...window(), deviceId: d.id });
  assert.deepEqual(r.json, { replayed: 0, deadLettered: 3, more: false });
  const again = await call('POST', '/api/v1/telemetry/replay', { ...window(), deviceId: d.id });
  assert.equal(again.json.deadLettered, 3);

  const list = await call('GET', `/api/v1/dlq?deviceId=${d.id}`);
  assert.equal(list.status, 200);
  assert.equal(list.json.pagination.total, 3, 'one entry per message, not per attempt');
  for (const e of list.json.data) {
    assert.equal(e.stage, 'normalize');
    assert.match(e.reason, /no longer exists/);
    assert.equal(e.attempts, 2);
    assert.equal(e.deviceId, d.id);
  }
  assert.equal((await call('GET', '/api/v1/dlq?reason=no%20longer')).json.pagination.total >= 3, true);
  assert.equal((await call('GET', '/api/v1/dlq?stage=archive')).json.pagination.total, 0);

  const one = await call('GET', `/api/v1/dlq/${list.json.data[0].id}`);
  assert.equal(one.status, 200);
  assert.equal(one.json.payload.deviceId, d.id, 'the message itself is kept');
  const still = await call('POST', `/api/v1/dlq/${one.json.id}/replay`);
  assert.ok(isProblem(still, 422));
  assert.match(still.json.detail, /no longer exists/);
  assert.equal((await call('GET', `/api/v1/dlq/${one.json.id}`)).json.attempts, 3);
  const many = await call('POST', '/api/v1/dlq/replay', { ids: list.json.data.map((e) => e.id) });
  assert.equal(many.json.replayed, 0);
  assert.equal(many.json.failed.length, 3);

  assert.equal((await call('DELETE', `/api/v1/dlq/${one.json.id}`)).status, 204);
  assert.ok(isProblem(await call('GET', `/api/v1/dlq/${one.json.id}`), 404));
  assert.ok(isProblem(await call('DELETE', `/api/v1/dlq/${one.json.id}`), 404));
  assert.equal((await call('GET', `/api/v1/dlq?deviceId=${d.id}`)).json.pagination.total, 2);
});

test(`[${KIND}] replay and DLQ input is checked`, async () => {
  for (const body of [{}, { startTime: 'x', endTime: 'y' }, { ...window(), limit: 0 }, { ...window(), deviceId: 'nope' },
    { ...window(), extra: 1 }, { startTime: '2026-02-01T00:00:00Z', endTime: '2026-01-01T00:00:00Z' }]) {
    assert.ok(isProblem(await call('POST', '/api/v1/telemetry/replay', body), 400), JSON.stringify(body));
  }
  for (const body of [{}, { ids: [] }, { ids: ['x'] }, { ids: 'x' }]) {
    assert.ok(isProblem(await call('POST', '/api/v1/dlq/replay', body), 400), JSON.stringify(body));
  }
  assert.ok(isProblem(await call('GET', '/api/v1/dlq?deviceId=x'), 400));
  assert.ok(isProblem(await call('GET', '/api/v1/dlq?startTime=soon'), 400));
  const viewer = await argus.user(org.token, 'viewer');
  assert.ok(isProblem(await argus.req('GET', '/api/v1/dlq', { token: viewer.token }), 403));
});
