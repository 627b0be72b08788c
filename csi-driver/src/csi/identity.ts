import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { EventStore } from '@lighthouse-bridge/core';

/** What kubelet, CSIDriver objects and volumes call this driver. */
export const DRIVER_NAME = 'bridge.lighthouse.dev';

/**
 * Below the liveness check's 2 s deadline (healthServer.ts), so a hanging store makes Probe answer
 * "not ready" in time instead of making the plugin look wedged and get restarted (ADR 0076).
 */
const PROBE_DEADLINE_MS = 1000;

/** The csi-driver package's version, read once from its package.json (beside dist/ and src/). */
const DRIVER_VERSION: string = (
  JSON.parse(readFileSync(fileURLToPath(new URL('../../package.json', import.meta.url)), 'utf8')) as { version: string }
).version;

/** The Identity service. Ready means the store answers: without it no mount can serve a byte. */
export class IdentityService {
  constructor(
    private readonly store: EventStore,
    private readonly controller: boolean,
  ) {}

  async GetPluginInfo(): Promise<{ name: string; vendor_version: string }> {
    return { name: DRIVER_NAME, vendor_version: DRIVER_VERSION };
  }

  async GetPluginCapabilities(): Promise<{ capabilities: Array<{ service: { type: string } }> }> {
    return { capabilities: this.controller ? [{ service: { type: 'CONTROLLER_SERVICE' } }] : [] };
  }

  /** Answers within the probe deadline even when the store hangs: kubelet's liveness relies on it. */
  async Probe(): Promise<{ ready: { value: boolean } }> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), PROBE_DEADLINE_MS);
    });
    const ping = this.store.ping().then(
      () => true,
      () => false,
    );
    const ready = await Promise.race([ping, deadline]);
    clearTimeout(timer);
    return { ready: { value: ready } };
  }
}
