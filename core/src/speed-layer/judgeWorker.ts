import { parentPort } from 'node:worker_threads';
import { judge, type Judgement } from './judge.js';
import { Policy } from './policy.js';
import type { FromJudgeWorker, ToJudgeWorker } from './judgeThread.js';

/** The worker side of `JudgeThread`: the policies of this process's validators, requests answered in arrival order. */
const policies = new Map<number, Policy>();
const port = parentPort;
if (port === null) throw new Error('judgeWorker runs only as a worker thread');
port.on('message', (message: ToJudgeWorker) => {
  switch (message.kind) {
    case 'policy': {
      const { policy, projectRoot } = message.data;
      policies.set(message.policyId, new Policy(policy, projectRoot === undefined ? {} : { projectRoot }));
      return;
    }
    case 'drop':
      policies.delete(message.policyId);
      return;
    case 'judge': {
      let judgement: Judgement;
      const policy = policies.get(message.policyId);
      try {
        judgement = policy === undefined ? { kind: 'unavailable', reason: 'no policy on the validation thread; failing closed' } : judge(policy, message.raw);
      } catch (error) {
        judgement = { kind: 'unavailable', reason: `internal error, failing closed: ${(error as Error).message}` };
      }
      port.postMessage({ id: message.id, judgement } satisfies FromJudgeWorker);
    }
  }
});
