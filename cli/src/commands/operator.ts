import { parseArgs } from 'node:util';
import { createLogger, serveMetrics } from '@lighthouse-bridge/core/observability';
import { startOperator } from '@lighthouse-bridge/operator';
import { redisUrlFlag, runCommand, writeOut } from '../args.js';
import { EXIT, UsageError } from '../command.js';

const USAGE = `usage: lighthouse-bridge operator [options]
Runs the BridgeProject operator. Kubernetes credentials come from the pod (in-cluster), KUBECONFIG,
or ~/.kube/config.

  --redis URL             Redis holding the projects: redis://[user:pass@]HOST:PORT or
                          redis+cluster://H1:P1,H2:P2 (default: LHB_REDIS_URL)
  --image IMAGE           image of spec.restoreFrom's import Jobs (default: LHB_IMAGE; none: no restores)
  --namespace NS          watch BridgeProjects in NS only (default: all namespaces)
  --leader-elect          reconcile only while holding the Lease (run several replicas safely)
  --lease-name N          Lease name (default lighthouse-bridge-operator)
  --lease-namespace NS    namespace of the Lease (default: POD_NAMESPACE, else default)
  --lease-duration SEC    lease duration (default 15); a dead leader is replaced within it
  --relist-seconds SEC    relist all projects at least this often (default 60)
  --metrics-port N        serve /metrics and /healthz on N (0 = off, the default)
  --metrics-host H        address for /metrics (default 127.0.0.1; 0.0.0.0 in a pod)
  --kubeconfig FILE       use this kubeconfig instead of the defaults`;

export function run(argv: string[]): Promise<number> {
  return runCommand('operator', USAGE, () => operate(argv));
}

async function operate(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      redis: { type: 'string' },
      image: { type: 'string' },
      namespace: { type: 'string' },
      'leader-elect': { type: 'boolean', default: false },
      'lease-name': { type: 'string', default: 'lighthouse-bridge-operator' },
      'lease-namespace': { type: 'string' },
      'lease-duration': { type: 'string', default: '15' },
      'relist-seconds': { type: 'string', default: '60' },
      'metrics-port': { type: 'string', default: '0' },
      'metrics-host': { type: 'string', default: '127.0.0.1' },
      kubeconfig: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    await writeOut(`${USAGE}\n`);
    return EXIT.ok;
  }
  const redisUrl = redisUrlFlag(values.redis);
  const number = (text: string, min: number): number => {
    const n = Number(text);
    if (!(Number.isFinite(n) && n >= min)) throw new UsageError('numeric flags need a positive number');
    return n;
  };
  const leaseSeconds = number(values['lease-duration'], 1);
  const relistSeconds = number(values['relist-seconds'], 1);
  const metricsPort = number(values['metrics-port'], 0);
  if (metricsPort > 65535) throw new UsageError('numeric flags need a positive number');

  const image = values.image ?? process.env['LHB_IMAGE'];
  const logger = createLogger('operator');
  const operator = await startOperator({
    redisUrl,
    ...(image ? { image } : {}),
    ...(values.namespace ? { namespace: values.namespace } : {}),
    ...(values.kubeconfig ? { kubeconfig: values.kubeconfig } : {}),
    leaderElect: values['leader-elect'],
    leaseName: values['lease-name'],
    operatorNamespace: values['lease-namespace'] ?? process.env['POD_NAMESPACE'] ?? 'default',
    ...(process.env['POD_NAME'] ? { identity: process.env['POD_NAME'] } : {}),
    leaseDurationMs: leaseSeconds * 1000,
    relistAfterMs: relistSeconds * 1000,
    log: (level, message, fields) => logger.log(level, message, fields),
  });
  const metrics = metricsPort > 0 ? await serveMetrics({ port: metricsPort, host: values['metrics-host'] }) : undefined;

  let signalled = false;
  const onSignal = (): void => {
    signalled = true;
    void operator.stop();
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  await operator.done;
  await metrics?.close();
  process.off('SIGTERM', onSignal);
  process.off('SIGINT', onSignal);
  // Stopping without a signal means leadership was lost: exit non-zero so the pod restarts and campaigns again.
  return signalled ? EXIT.ok : EXIT.error;
}
