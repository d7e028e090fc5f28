// Validates AsyncAPI documents with the official parser (@asyncapi/parser v3).
// Usage: node tests/asyncapi/validate.mjs FILE...
// Exits non-zero when any document has an error diagnostic.
import { readFileSync } from 'node:fs';
import { Parser } from '@asyncapi/parser';

const severities = ['error', 'warning', 'info', 'hint'];
const parser = new Parser();
const files = process.argv.slice(2);
if (files.length === 0) {
  console.error('usage: node validate.mjs FILE...');
  process.exit(2);
}
let failed = 0;
for (const file of files) {
  const { document, diagnostics } = await parser.parse(readFileSync(file, 'utf8'));
  const errors = diagnostics.filter((d) => d.severity === 0);
  for (const d of diagnostics) {
    if (d.code === 'asyncapi-latest-version') continue; // we emit 3.0.0 on purpose
    console.log(`${file}: ${severities[d.severity]} ${d.code}: ${d.message} at /${d.path.join('/')}`);
  }
  if (errors.length > 0 || !document) {
    failed += 1;
    console.log(`FAIL ${file}: ${errors.length} error(s)`);
  } else {
    console.log(`ok   ${file}`);
  }
}
process.exit(failed > 0 ? 1 : 0);
