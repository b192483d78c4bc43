/** The TypeScript snippets of the public quickstart (handbook `reference/quickstart.txt`), verbatim. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { REPO_ROOT } from './dev-stack.js';

/** CI checks the repository out with the team handbook beside it, as `../shared/`. */
export const QUICKSTART_PATH = join(REPO_ROOT, '..', 'shared', 'handbook', 'reference', 'quickstart.txt');

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
