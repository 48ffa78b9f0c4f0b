// Retention is an explicit job (`argus retention`): raw messages and points
// past their age go, rollups stay (aggregates live forever), and nothing
// younger is touched. On PostgreSQL, months of points that end before the
// cutoff are dropped as whole partitions.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startArgus, storeSql, KIND, STORE_KIND } from './lib/harness.mjs';

let argus, org, dev, key;
const call = async (m, p, b) => {
  const r = await argus.req(m, p, { token: org.token, body: b });
  assert.ok(r.status < 300, `${m} ${p}: ${r.status} ${r.text}`);
  return r.json;
};
const psql = (sql) => storeSql(argus.store, sql);

before(async () => {
  argus = await startArgus();
  org = await argus.org('Retention Co');
  const dt = await call('POST', '/api/v1/device-types', { name: 'R' });
  dev = await call('POST', '/api/v1/devices', { name: 'old and new', deviceTypeId: dt.id });
  key = (await call('POST', `/api/v1/devices/${dev.id}/api-keys`, {})).key;
});
after(async () => {
  const st = await argus.close();
  assert.equal(st.code, 0);
});

const OLD = Date.parse('2025-06-10T12:00:00Z');
const NEW = Date.now() - 3600_000;

test(`[${KIND}] argus retention ages out raw messages and points, keeps rollups and everything younger`, async () => {
  if (STORE_KIND === 'postgres') {
    // A month of its own for the old points, as a long-running store has.
    assert.equal(psql("SELECT argus_ts_partition_create('2025-06-01')"), 't');
  }
  const msgs = [];
  for (let i = 0; i < 3; i++) {
    msgs.push({ deviceId: dev.id, metrics: { t: i, h: 10 * i }, timestamp: OLD + i * 60_000 });
    msgs.push({ deviceId: dev.id, metrics: { t: 100 + i, h: 1 }, timestamp: NEW + i * 60_000 });
  }
  const r = await argus.req('POST', '/api/v1/telemetry/ingest', { apiKey: key, body: msgs });
  assert.equal(r.status, 202, r.text);
  await argus.settle();
  const series = async (from, to, agg = '') => (await call('GET',
    `/api/v1/telemetry/device/${dev.id}?metricKey=t&startTime=${new Date(from).toISOString()}&endTime=${new Date(to).toISOString()}${agg}`)).data;
  assert.equal((await series(OLD - 1, OLD + 3600_000)).length, 3);
  const dayBefore = await series(OLD - 86400_000, OLD + 86400_000, '&aggregation=1day');
  assert.equal(dayBefore.length, 1);
  assert.equal(dayBefore[0].count, 3);

  // Points older than a year; raw messages are kept (--raw-days 0).
  let run = await argus.cli(['retention', '--raw-days', '0', '--points-days', '365']);
  assert.equal(run.code, 0, run.stderr);
  assert.deepEqual(JSON.parse(run.stdout), { rawDeleted: 0, pointsDeleted: 6 });
  assert.deepEqual(await series(OLD - 1, OLD + 3600_000), [], 'old points gone');
  assert.deepEqual(await series(OLD - 86400_000, OLD + 86400_000, '&aggregation=1day'), dayBefore, 'their rollups stay');
  assert.equal((await series(NEW - 1, NEW + 3600_000)).length, 3, 'young points stay');
  if (STORE_KIND === 'postgres') {
    assert.equal(psql("SELECT to_regclass('ts_points_p202506') IS NULL"), 't', 'the old month was dropped whole');
    assert.notEqual(psql("SELECT count(*) FROM pg_inherits WHERE inhparent = 'ts_points'::regclass"), '0');
  }

  // Raw messages received before a cutoff in the future: all of them.
  const cutoff = new Date(Date.now() + 60_000).toISOString();
  run = await argus.cli(['retention', '--raw-before', cutoff, '--points-days', '0']);
  assert.equal(run.code, 0, run.stderr);
  assert.deepEqual(JSON.parse(run.stdout), { rawDeleted: 6, pointsDeleted: 0 });
  const replay = await call('POST', '/api/v1/telemetry/replay',
    { deviceId: dev.id, startTime: new Date(Date.now() - 3600_000).toISOString(), endTime: cutoff });
  assert.equal(replay.replayed, 0, 'nothing left to replay');
  assert.equal((await series(NEW - 1, NEW + 3600_000)).length, 3, 'points do not depend on raw');

  // Bad input: a clear message and exit 2, nothing deleted.
  run = await argus.cli(['retention', '--points-before', 'last tuesday']);
  assert.equal(run.code, 2);
  assert.match(run.stderr, /RFC 3339/);
  run = await argus.cli(['retention', '--raw-days', '-3']);
  assert.equal(run.code, 2);
  assert.equal((await series(NEW - 1, NEW + 3600_000)).length, 3);
});
