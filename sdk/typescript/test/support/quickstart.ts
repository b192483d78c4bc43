/** The TypeScript snippets of the public quickstart page (a copy in `test/fixtures/quickstart.txt`), verbatim. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { PACKAGE_ROOT } from './dev-stack.js';

/** The public quickstart page as published (plain text), kept with the tests that hold the SDK to it. */
export const QUICKSTART_PATH = join(PACKAGE_ROOT, 'test', 'fixtures', 'quickstart.txt');

/** The code blocks introduced by a `typescript` line, each ending at the next `Step ...`/`Note`/`Tip` line. */
export function quickstartTypeScriptBlocks(): string[] {
  const lines = readFileSync(QUICKSTART_PATH, 'utf8').split('\n');
  const blocks: string[] = [];
  for (let i = 0; i < lines.length; i += 1) {
    if (lines[i]!.trim() !== 'typescript') continue;
    const block: string[] = [];
    for (let j = i + 1; j < lines.length && !/^(Step \d|Note$|Tip$)/.test(lines[j]!.trim()); j += 1) {
      block.push(lines[j]!);
    }
    while (block.length > 0 && block.at(-1)!.trim() === '') block.pop();
    blocks.push(block.join('\n') + '\n');
  }
  return blocks;
}
