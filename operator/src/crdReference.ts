import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { parse } from 'yaml';

/** The parts of an OpenAPI v3 schema node the reference shows. */
interface SchemaNode {
  type?: string;
  format?: string;
  description?: string;
  default?: unknown;
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: boolean;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  pattern?: string;
  required?: string[];
  properties?: Record<string, SchemaNode>;
  items?: SchemaNode;
  'x-kubernetes-validations'?: Array<{ message?: string; rule: string }>;
}

interface Crd {
  spec: { group: string; names: { kind: string; shortNames?: string[] }; scope: string; versions: Array<{ name: string; schema: { openAPIV3Schema: SchemaNode } }> };
}

/**
 * docs/reference/bridgeproject.md, rendered from the CRD so the reference cannot drift from what the
 * API server enforces: `make chart` writes it, helmChart.test.ts fails when the committed copy differs.
 */
export function crdReference(crdYaml: string): string {
  const crd = parse(crdYaml) as Crd;
  const { kind, shortNames = [] } = crd.spec.names;
  const lines = [
    `<!-- Generated from crds/ by \`make chart\` (operator/src/crdReference.ts); edit the CRD, not this file. -->`,
    `# ${kind} reference`,
    '',
    `\`${crd.spec.group}\`, ${crd.spec.scope.toLowerCase()}; short names ${shortNames.map((s) => `\`${s}\``).join(', ')}. Every field has a default unless marked required, so \`spec: {}\` is a complete project. How to use it: docs/install.md.`,
  ];
  for (const version of crd.spec.versions) {
    const root = version.schema.openAPIV3Schema.properties ?? {};
    for (const part of ['spec', 'status'] as const) {
      const node = root[part];
      if (!node) continue;
      lines.push('', `## ${version.name} \`${part}\``, '');
      if (part === 'status') lines.push('Written by the operator; read-only for users.', '');
      lines.push('| field | type | default | constraints | meaning |', '|---|---|---|---|---|');
      lines.push(...rows(node, part, false));
    }
  }
  return `${lines.join('\n')}\n`;
}

function rows(node: SchemaNode, path: string, required: boolean): string[] {
  const own = path.includes('.') || path.includes('[]') ? [row(node, path, required)] : [];
  const children = Object.entries(node.properties ?? {}).flatMap(([name, child]) => rows(child, `${path}.${name}`, node.required?.includes(name) ?? false));
  const items = node.items?.properties ? rows({ ...node.items, description: undefined }, `${path}[]`, false).slice(1) : [];
  return [...own, ...children, ...items];
}

function row(node: SchemaNode, path: string, required: boolean): string {
  const type = node.type === 'array' ? `${node.items?.type ?? 'any'}[]` : `${node.type ?? 'any'}${node.format ? ` (${node.format})` : ''}`;
  const fallback = required ? '**required**' : node.default === undefined ? '' : code(JSON.stringify(node.default));
  return `| \`${path}\` | ${type} | ${fallback} | ${constraints(node).join('; ')} | ${cell(node.description ?? '')} |`;
}

function constraints(node: SchemaNode): string[] {
  const out: string[] = [];
  if (node.enum) out.push(`one of ${node.enum.map((e) => code(String(e))).join(', ')}`);
  if (node.minimum !== undefined || node.maximum !== undefined) out.push(`${node.minimum ?? '…'}${node.exclusiveMinimum ? ' (exclusive)' : ''} to ${node.maximum ?? '…'}`);
  if (node.minLength !== undefined || node.maxLength !== undefined) out.push(`length ${node.minLength ?? 0} to ${node.maxLength ?? '…'}`);
  if (node.minItems !== undefined || node.maxItems !== undefined) out.push(`${node.minItems ?? 0} to ${node.maxItems ?? '…'} items`);
  const items = node.items;
  if (items && !items.properties) out.push(...constraints(items).map((c) => `each: ${c}`));
  if (node.pattern) out.push(`pattern ${code(node.pattern)}`);
  for (const v of node['x-kubernetes-validations'] ?? []) out.push(cell(v.message ?? v.rule));
  return out;
}

/** Markdown inline code that survives a table: a pipe would end the cell, a backtick the span. */
function code(text: string): string {
  return `\`\` ${text.replaceAll('|', '\\|')} \`\``;
}

function cell(text: string): string {
  return text.replace(/\s+/g, ' ').trim().replaceAll('|', '\\|');
}

export async function writeCrdReference(crdFile: string, outFile: string): Promise<void> {
  await mkdir(dirname(outFile), { recursive: true });
  await writeFile(outFile, crdReference(await readFile(crdFile, 'utf8')));
}
