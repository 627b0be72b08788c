import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freePort } from './ports.js';

const owned = fileURLToPath(new URL('./owned.js', import.meta.url));

/** Exited (reaped, or a zombie waiting for its parent, which is gone). */
function gone(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z');
  } catch {
    return true;
  }
}

describe('servers a test starts', () => {
  it('do not keep the test process alive once its own work is done, and die with it', { timeout: 30_000 }, async () => {
    // What a test file whose before() failed after one server came up does: it has nothing left to run.
    const script = `import { spawnOwned } from ${JSON.stringify(owned)};
      const child = spawnOwned('sleep', ['300'], { stdio: ['ignore', 'pipe', 'pipe'] });
      child.once('spawn', () => console.log(child.pid));`;
    const started = Date.now();
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, ['--input-type=module', '-e', script], { timeout: 20_000 }, (error, out) => (error ? reject(error) : resolve(out)));
    });
    assert.ok(Date.now() - started < 10_000, `the process took ${Date.now() - started} ms to end`);
    // setpriv execs sleep in place, so the pid is the sleep's.
    const pid = Number(stdout.trim());
    assert.ok(pid > 0, stdout);
    for (let i = 0; i < 100 && !gone(pid); i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(gone(pid), `sleep ${pid} outlived the test process`);
  });
});

describe('free ports', () => {
  it('are distinct, bindable and outside the range outgoing connections take their local ports from', async () => {
    const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    const ports = await Promise.all(Array.from({ length: 50 }, () => freePort()));
    assert.equal(new Set(ports).size, ports.length);
    // Where the range leaves no room below it (it starts under 11000), the kernel picks instead.
    if (low! > 11_000) for (const port of ports) assert.ok(port >= 10_000 && port < low!, `port ${port} is in the ephemeral range from ${low}`);
  });
});
