// kill -9 under continuous load: every message that got a 2xx is stored
// exactly once after a restart (at-least-once: messages stored but not yet
// acknowledged when the process died may be there too; none twice).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { startArgus, BIN, STORE_KIND } from './lib/harness.mjs';

function runSim(args) {
  return new Promise((res) => {
    const p = spawn(BIN, ['sim', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    p.on('close', (code) => res({ code, out, err }));
  });
}

test(`[${STORE_KIND}] kill -9 during ingest loses no acknowledged message`, { timeout: 120000 }, async () => {
  const argus = await startArgus();
  try {
    const org = await argus.org('Crash Co');
    const record = join(argus.dir, 'acked.txt');
    const sim = runSim(['--url', argus.base, '--email', org.email, '--password', org.password,
      '--devices', '20', '--connections', '8', '--batch', '10', '--metrics', '3',
      '--duration', '6', '--record', record]);
    // Kill once the first acknowledgements are on disk.
    const deadline = Date.now() + 30000;
    for (;;) {
      let acked = '';
      try { acked = readFileSync(record, 'utf8'); } catch { /* not yet */ }
      if (acked.split('\n').length > 50) break;
      assert.ok(Date.now() < deadline, 'the simulator got no acknowledgement');
      await new Promise((r) => setTimeout(r, 50));
    }
    argus.proc.kill('SIGKILL');
    const st = await argus.exited;
    assert.equal(st.signal, 'SIGKILL');
    const result = await sim;
    assert.notEqual(result.out, '', result.err);

    await argus.start();
    const acked = new Map(); // device → set of acknowledged timestamps
    for (const line of readFileSync(record, 'utf8').trim().split('\n')) {
      const [dev, first, count] = line.split(' ');
      if (!acked.has(dev)) acked.set(dev, new Set());
      for (let i = 0; i < Number(count); i++) acked.get(dev).add(Number(first) + i);
    }
    let total = 0;
    for (const [dev, times] of acked) {
      total += times.size;
      for (const metric of ['m0', 'm2']) {
        const r = await argus.req('GET', `/api/v1/telemetry/device/${dev}?metricKey=${metric}&limit=10000&startTime=2000-01-01T00:00:00Z`, { token: org.token });
        assert.equal(r.status, 200, r.text);
        const stored = r.json.data.map((p) => Date.parse(p.timestamp));
        assert.equal(new Set(stored).size, stored.length, `${dev}/${metric}: a point stored twice`);
        const have = new Set(stored);
        const missing = [...times].filter((t) => !have.has(t));
        assert.deepEqual(missing, [], `${dev}/${metric}: acknowledged but not stored`);
      }
    }
    assert.ok(total > 500, `only ${total} messages were acknowledged before the kill`);
  } finally {
    await argus.close();
  }
});
