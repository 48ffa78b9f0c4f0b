// kill -9 of `argus serve` under continuous load: every message that got a
// 2xx is stored exactly once after a restart (at-least-once: messages stored
// but not yet acknowledged when the process died may be there too; none
// twice). With an external bus the acknowledged messages wait in the bus
// and the restarted stages store them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startArgus, KIND } from './lib/harness.mjs';
import { expectStored, runSim, waitAcked } from './lib/load.mjs';

test(`[${KIND}] kill -9 during ingest loses no acknowledged message`, { timeout: 120000 }, async () => {
  const argus = await startArgus();
  try {
    const org = await argus.org('Crash Co');
    const record = join(argus.dir, 'acked.txt');
    const sim = runSim(['--url', argus.base, '--email', org.email, '--password', org.password,
      '--devices', '20', '--connections', '8', '--batch', '10', '--metrics', '3',
      '--duration', '6', '--record', record]);
    await waitAcked(record, 50); // kill once acknowledgements are on disk
    argus.proc.kill('SIGKILL');
    const st = await argus.exited;
    assert.equal(st.signal, 'SIGKILL');
    const result = await sim;
    assert.notEqual(result.out, '', result.err);

    await argus.start();
    const total = await expectStored(argus, org.token, record);
    assert.ok(total > 500, `only ${total} messages were acknowledged before the kill`);
  } finally {
    await argus.close();
  }
});
