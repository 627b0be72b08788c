import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import type { PolicyConfig } from '../config/projectConfig.js';
import { Policy, PolicyError } from './policy.js';
import { isPlainObject } from './request.js';

/**
 * Reads a policy file, YAML or JSON (JSON is YAML, so one parser serves both), and compiles it once
 * so a bad rule (e.g. a pattern RE2 cannot express) is reported here, naming the file, rather than
 * when a mount or validator starts.
 */
export async function loadPolicyFile(path: string): Promise<PolicyConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new PolicyError(`cannot read policy file ${path}: ${(error as Error).message}`);
  }
  let value: unknown;
  try {
    value = parseYaml(text);
  } catch (error) {
    throw new PolicyError(`policy file ${path} is not valid YAML or JSON: ${(error as Error).message}`);
  }
  if (!isPlainObject(value)) throw new PolicyError(`policy file ${path} must hold a mapping with "rules"`);
  if (value['rules'] !== undefined && !Array.isArray(value['rules'])) throw new PolicyError(`policy file ${path}: "rules" must be a list`);
  try {
    new Policy(value as PolicyConfig);
  } catch (error) {
    if (error instanceof PolicyError) throw new PolicyError(`policy file ${path}: ${error.message}`);
    throw error;
  }
  return value as PolicyConfig;
}
