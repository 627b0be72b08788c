import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { fleetDashboard, fleetRuleGroups } from './monitoring.js';

/**
 * The chart's monitoring files, rendered from operator/src/monitoring.ts so the shipped rules and
 * dashboard and the tests that judge them are one source. `make chart` writes them into
 * charts/lighthouse-bridge/files; helmChart.test.ts fails when the committed copies differ.
 */
export const MONITORING_FILES = {
  rules: 'lighthouse-bridge.rules.yaml',
  dashboard: 'lighthouse-bridge.dashboard.json',
} as const;

const GENERATED = '# Generated from operator/src/monitoring.ts by `make chart`; edit that file, not this one.\n';

export function monitoringFiles(): Record<string, string> {
  return {
    [MONITORING_FILES.rules]: GENERATED + stringify({ groups: fleetRuleGroups() }, { lineWidth: 0 }),
    [MONITORING_FILES.dashboard]: `${JSON.stringify(fleetDashboard(), null, 2)}\n`,
  };
}

export async function writeMonitoringFiles(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const [name, text] of Object.entries(monitoringFiles())) await writeFile(join(dir, name), text);
}
