import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const loggerModule = fileURLToPath(new URL('./logger.js', import.meta.url));

function runScript(script: string, env: NodeJS.ProcessEnv): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, ...env }, timeout: 20_000 }, (error, stdout, stderr) =>
      error ? reject(error) : resolve({ stdout, stderr }),
    );
  });
}

test('logs are JSON lines on stderr with component and requestId; LHB_LOG_LEVEL filters', async () => {
  const script = `
    const { createLogger } = await import(${JSON.stringify(loggerModule)});
    const log = createLogger('speed-layer');
    log.child({ requestId: 'r-1' }).warn('escalated', { tool: 'Bash' });
    log.debug('hidden unless debug');
    log.on('finish', () => {}); log.end();`;
  const { stdout, stderr } = await runScript(script, { LHB_LOG_LEVEL: 'warn' });
  assert.equal(stdout, '');
  const lines = stderr.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(lines.length, 1);
  assert.equal(lines[0]?.['component'], 'speed-layer');
  assert.equal(lines[0]?.['requestId'], 'r-1');
  assert.equal(lines[0]?.['level'], 'warn');
  assert.equal(lines[0]?.['message'], 'escalated');
  assert.equal(typeof lines[0]?.['timestamp'], 'string');

  const verbose = await runScript(script, { LHB_LOG_LEVEL: 'debug' });
  assert.equal(verbose.stderr.trim().split('\n').length, 2);
});
