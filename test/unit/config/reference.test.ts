import { it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { configReference } from '../../../scripts/config-reference.js';

it('docs/configuration.md is generated from the current schema (run `npm run docs:config`)', () => {
  const committed = readFileSync(new URL('../../../docs/configuration.md', import.meta.url), 'utf8');
  assert.equal(committed, configReference());
});
