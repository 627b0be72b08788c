import { tempDir } from '@lighthouse-bridge/test/tmp';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setImmediate as turn } from 'node:timers/promises';
import type { NewEvent } from '../../events/events.js';
import type { ProjectId } from '../../events/projectId.js';
import { openEmbeddedStore } from './embeddedStore.js';

/**
 * The reader → writer hand-over of one process (issue 14, item 1): a fresh project is being read
 * (head, read, a tail's polling) at the moment the same process becomes its writer. A scan that
 * was still running when the writer took over used to move the segment end the writer appends
 * at, leaving a gap of zeros that made the project unreadable for good.
 */
describe('embedded store: reader/writer hand-over on fresh projects', () => {
  let dir: string;
  let remove: () => Promise<void>;
  before(async () => {
    ({ dir, remove } = await tempDir('lhb-handover-'));
  });
  after(async () => {
    await remove();
  });

  it('keeps every acknowledged append readable when reads race the first append, 60 fresh projects under load', async () => {
    const event = (id: string): NewEvent => ({ type: 'AgentSessionStarted', actor: 'test', data: { sessionId: id, agent: 'a' } });
    const failures: string[] = [];
    for (let round = 0; round < 60; round++) {
      const project: ProjectId = { namespace: 'stress', name: `p${round}` };
      const store = await openEmbeddedStore({ dir, readOnly: false });
      const tail = store.subscribe(project, 0, () => {});
      let reading = true;
      // Readers in a loop; a busy loop between their awaits is the "loaded machine" that widens the window.
      const readers = Array.from({ length: 4 }, async (_, r) => {
        while (reading) {
          try {
            if (r % 2 === 0) await store.head(project);
            else await store.read(project, { from: 1 });
          } catch (error) {
            failures.push(`round ${round}, reader ${r}: ${(error as Error).message}`);
            return;
          }
          const until = Date.now() + (round % 3);
          while (Date.now() < until);
          await turn(); // head() of a writer never leaves the microtask queue
        }
      });
      const acknowledged: string[] = [];
      const writers = Array.from({ length: 3 }, async (_, w) => {
        for (let i = 0; i < 4; i++) {
          const id = `r${round}-w${w}-${i}`;
          await store.append(project, [event(id)]);
          acknowledged.push(id);
        }
      });
      await Promise.all(writers);
      reading = false;
      await Promise.all(readers);
      await tail.close();
      await store.close();

      const reopened = await openEmbeddedStore({ dir, readOnly: false });
      try {
        const ids = (await reopened.read(project)).map((e) => (e.data as { sessionId: string }).sessionId);
        const missing = acknowledged.filter((id) => !ids.includes(id));
        if (missing.length > 0) failures.push(`round ${round}: ${missing.length} acknowledged appends missing`);
        await reopened.append(project, [event('after-reopen')]);
      } catch (error) {
        failures.push(`round ${round}: ${(error as Error).message}`);
      } finally {
        await reopened.close();
      }
    }
    assert.deepEqual(failures, []);
  });
});
