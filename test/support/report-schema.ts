/** Validates a --json report against schemas/report.schema.json with ajv (JSON Schema 2020-12). */
import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { REPORT_SCHEMA_FILE } from '../../harness/report/json.ts';

const ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true });
const validate = ajv.compile(JSON.parse(readFileSync(REPORT_SCHEMA_FILE, 'utf8')) as object);

/** The schema's complaints about `report` (none when it is valid), each with its JSON path. */
export function reportSchemaErrors(report: unknown): string[] {
  if (validate(report)) return [];
  return (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}${e.params ? ` ${JSON.stringify(e.params)}` : ''}`);
}
