// Load from `argus sim` and the check that what it saw acknowledged is
// stored exactly once, shared by the crash tests.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { BIN } from './harness.mjs';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Runs argus sim to completion: {code, out, err, killed}; with
 * killAfterMs, it is killed (killed: true) if still running then. */
export function runSim(args, killAfterMs = 0) {
  return new Promise((res) => {
    const p = spawn(BIN, ['sim', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '', killed = false;
    const timer = killAfterMs ? setTimeout(() => { killed = true; p.kill('SIGKILL'); }, killAfterMs) : null;
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    p.on('close', (code) => { if (timer) clearTimeout(timer); res({ code, out, err, killed }); });
  });
}

/** Resolves once the simulator's record file has more than n lines. */
export async function waitAcked(record, n, timeoutMs = 30000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let acked = '';
    try { acked = readFileSync(record, 'utf8'); } catch { /* not yet */ }
    if (acked.split('\n').length > n) return;
    assert.ok(Date.now() < deadline, 'the simulator got no acknowledgement');
    await sleep(50);
  }
}

/** Polls (through argus's query API) until every acknowledged message of
 * the record is a point of metrics m0 and m2, failing on a point stored
 * twice or on time running out; returns how many messages were
 * acknowledged. */
export async function expectStored(argus, token, record, timeoutMs = 60000) {
  const acked = new Map(); // device → acknowledged timestamps
  for (const line of readFileSync(record, 'utf8').trim().split('\n')) {
    const [dev, first, count] = line.split(' ');
    if (!acked.has(dev)) acked.set(dev, new Set());
    for (let i = 0; i < Number(count); i++) acked.get(dev).add(Number(first) + i);
  }
  const deadline = Date.now() + timeoutMs;
  let total = 0;
  for (const [dev, times] of acked) {
    total += times.size;
    assert.ok(times.size <= 10000, 'more messages per device than one query returns; lower the rate');
    for (const metric of ['m0', 'm2']) {
      for (;;) {
        const r = await argus.req('GET', `/api/v1/telemetry/device/${dev}?metricKey=${metric}&limit=10000&startTime=2000-01-01T00:00:00Z`, { token });
        assert.equal(r.status, 200, r.text);
        const stored = r.json.data.map((p) => Date.parse(p.timestamp));
        // The simulator sends metric mK = sin(timestamp + K) * 100 with
        // three decimals.
        const k = Number(metric.slice(1));
        for (const p of r.json.data) {
          const want = Math.sin(Date.parse(p.timestamp) + k) * 100;
          assert.ok(Math.abs(p.value - want) <= 0.0005 + 1e-9,
            `${dev}/${metric} at ${p.timestamp}: ${p.value}, sent as ${want.toFixed(3)}`);
        }
        assert.equal(new Set(stored).size, stored.length, `${dev}/${metric}: a point stored twice`);
        const have = new Set(stored);
        const missing = [...times].filter((t) => !have.has(t));
        if (missing.length === 0) break;
        assert.ok(Date.now() < deadline, `${dev}/${metric}: ${missing.length} acknowledged messages not stored`);
        await sleep(200);
      }
    }
  }
  return total;
}
