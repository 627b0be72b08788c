import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../main.js', import.meta.url));

function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const { LHB_REDIS_URL: _drop, ...rest } = process.env;
    execFile(process.execPath, [CLI, ...args], { env: { ...rest, ...env }, timeout: 30_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe('lighthouse-bridge operator (arguments)', () => {
  it('--help prints the options and exits 0', async () => {
    const { code, stdout } = await cli(['operator', '--help']);
    assert.equal(code, 0);
    for (const flag of ['--redis', '--namespace', '--leader-elect', '--lease-name', '--metrics-port']) assert.ok(stdout.includes(flag), flag);
  });

  it('refuses to start without a Redis URL (exit 2)', async () => {
    const { code, stderr } = await cli(['operator']);
    assert.equal(code, 2);
    assert.match(stderr, /--redis URL is required/);
  });

  it('refuses an unknown flag and a bad number (exit 2)', async () => {
    assert.equal((await cli(['operator', '--redis', 'redis://127.0.0.1:1', '--bogus'])).code, 2);
    assert.equal((await cli(['operator', '--redis', 'redis://127.0.0.1:1', '--lease-duration', 'soon'])).code, 2);
  });
});
