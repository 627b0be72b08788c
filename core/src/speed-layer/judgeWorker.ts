import { parentPort, workerData } from 'node:worker_threads';
import { judge, type Judgement } from './judge.js';
import { Policy } from './policy.js';
import type { JudgeRequest, JudgeWorkerData } from './judgeThread.js';

/** The worker side of `JudgeThread`: one policy, judged requests answered in arrival order. */
const data = workerData as JudgeWorkerData;
const policy = new Policy(data.policy, data.projectRoot === undefined ? {} : { projectRoot: data.projectRoot });
const port = parentPort;
if (port === null) throw new Error('judgeWorker runs only as a worker thread');
port.on('message', ({ id, raw }: JudgeRequest) => {
  let judgement: Judgement;
  try {
    judgement = judge(policy, raw);
  } catch (error) {
    judgement = { kind: 'unavailable', reason: `internal error, failing closed: ${(error as Error).message}` };
  }
  port.postMessage({ id, judgement });
});
