import { parseArgs } from 'node:util';
import { openStore, storeUrlFrom } from '@lighthouse-bridge/core';
import { createValidator, loadPolicyFile, PolicyError, readProjectPolicy } from '@lighthouse-bridge/core/speed-layer';
import { positionals, projectArg, runCommand, writeOut } from '../args.js';
import { EXIT, UsageError } from '../command.js';

const USAGE = `usage: lighthouse-bridge validate <project> --agent A --tool T --input JSON [options]
Asks the speed layer whether agent A may run tool T with INPUT and prints the JSON answer.
An escalated request waits for an expert ('lighthouse-bridge decide') or the deadline.
Exit status: 0 allowed, 2 denied, 1 error (bad arguments, unreadable policy, ...).

  --policy FILE     project rules, YAML or JSON ({mode: extend|replace, rules: [...]});
                    default: the policy in the project's config in Redis (with --redis), else none
  --root DIR        the project tree as the agent sees it; absolute paths outside it escalate
  --deadline SECS   how long an escalation waits (default: the policy's, else 30)
  --redis URL       shared decision cache, redis://HOST:PORT[/DB]
  --store URL       where escalations go (default: $LHB_STORE, else file://./.lighthouse-bridge).
                    The embedded store takes one writer process per project, so an expert in
                    another process can only answer over a Redis store.`;

/** Exit statuses of `validate`: 2 is kept for "denied", so every failure to answer is 1. */
const DECISION_EXIT = { allow: EXIT.ok, deny: 2 } as const;

export async function run(argv: string[]): Promise<number> {
  let exit: number | undefined;
  await runCommand('validate', USAGE, async () => {
    exit = await validate(argv);
    return exit;
  });
  return exit ?? EXIT.error;
}

async function validate(argv: string[]): Promise<number> {
  const { values, positionals: args } = parseArgs({
    args: argv,
    options: {
      agent: { type: 'string' },
      tool: { type: 'string' },
      input: { type: 'string' },
      policy: { type: 'string' },
      root: { type: 'string' },
      deadline: { type: 'string' },
      redis: { type: 'string' },
      store: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: true,
  });
  if (values.help) {
    await writeOut(`${USAGE}\n`);
    return EXIT.ok;
  }
  const [projectText = ''] = positionals(args, ['<project>']);
  const project = projectArg(projectText);
  const { agent, tool } = values;
  if (agent === undefined || tool === undefined || values.input === undefined) throw new UsageError('--agent, --tool and --input are required');
  let input: unknown;
  try {
    input = JSON.parse(values.input);
  } catch (error) {
    throw new UsageError(`--input is not valid JSON: ${(error as Error).message}`);
  }
  let escalationTimeoutMs: number | undefined;
  if (values.deadline !== undefined) {
    const seconds = Number(values.deadline);
    if (!(seconds > 0 && seconds <= 86_400)) throw new UsageError(`--deadline expects seconds in (0, 86400], got "${values.deadline}"`);
    escalationTimeoutMs = seconds * 1000;
  }
  // Without --policy, a project managed by the operator brings its own rules in Redis.
  const policy =
    values.policy !== undefined
      ? await loadPolicyFile(values.policy).catch(usageOnPolicyError)
      : values.redis !== undefined
        ? await readProjectPolicy(values.redis, project).catch(usageOnPolicyError)
        : undefined;
  const storeUrl = storeUrlFrom(values.store);

  const validator = await createValidator({
    project,
    ...(policy !== undefined ? { policy } : {}),
    ...(values.root !== undefined ? { projectRoot: values.root } : {}),
    ...(values.redis !== undefined ? { redisUrl: values.redis } : {}),
    ...(escalationTimeoutMs !== undefined ? { escalationTimeoutMs } : {}),
    store: () => openStore(storeUrl),
  }).catch(usageOnPolicyError);
  try {
    const answer = await validator.validate({ agent, tool, input });
    await writeOut(`${JSON.stringify(answer)}\n`);
    if (answer.error !== undefined || answer.decision === 'escalate') return EXIT.error;
    return DECISION_EXIT[answer.decision];
  } finally {
    await validator.close();
  }
}

function usageOnPolicyError(error: unknown): never {
  if (error instanceof PolicyError) throw new UsageError(error.message);
  throw error;
}
