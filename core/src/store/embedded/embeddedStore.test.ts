import { tempDir } from '@lighthouse-bridge/test/tmp';
import type { EventStore } from '../eventStore.js';
import { runEventStoreContract } from '../eventStore.contract.js';
import { openEmbeddedStore } from './embeddedStore.js';

runEventStoreContract('embedded', async () => {
  const { dir, remove } = await tempDir('lhb-embedded-');
  const opened: EventStore[] = [];
  // Small segments, so the suite also crosses segment boundaries.
  const openOne = async (): Promise<EventStore> => {
    const store = await openEmbeddedStore({ dir, readOnly: false, segmentBytes: 16 * 1024 });
    opened.push(store);
    return store;
  };
  const fixture = {
    store: await openOne(),
    reopen: async () => {
      await fixture.store.close();
      fixture.store = await openOne();
      return fixture.store;
    },
    openSecond: openOne,
    teardown: async () => {
      await Promise.all(opened.map((s) => s.close()));
      await remove();
    },
  };
  return fixture;
});
