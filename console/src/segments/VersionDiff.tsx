// Two versions of a definition side by side; lines only in the left are red, only in the right green.
import { Box, Code, Grid, Select, Stack, Text } from '@mantine/core';
import { diffLines } from 'diff';
import { useState } from 'react';
import type { VersionList } from '../api/types';
import { formatTime } from '../app/feedback';

type Version = VersionList['results'][number];

interface Line {
  text: string;
  kind: 'same' | 'removed' | 'added' | 'blank';
}

function sideBySide(left: string, right: string): [Line[], Line[]] {
  const l: Line[] = [];
  const r: Line[] = [];
  for (const part of diffLines(left, right)) {
    const lines = part.value.replace(/\n$/, '').split('\n');
    if (part.added) lines.forEach((text) => r.push({ text, kind: 'added' }));
    else if (part.removed) lines.forEach((text) => l.push({ text, kind: 'removed' }));
    else {
      // Pad the shorter side so unchanged lines line up again.
      while (l.length < r.length) l.push({ text: '', kind: 'blank' });
      while (r.length < l.length) r.push({ text: '', kind: 'blank' });
      lines.forEach((text) => {
        l.push({ text, kind: 'same' });
        r.push({ text, kind: 'same' });
      });
    }
  }
  return [l, r];
}

const BG = {
  same: undefined,
  blank: 'var(--mantine-color-gray-1)',
  removed: 'var(--mantine-color-red-1)',
  added: 'var(--mantine-color-green-1)',
};
const SIGN = { same: ' ', blank: ' ', removed: '-', added: '+' };

function Column({ lines, title }: { lines: Line[]; title: string }) {
  return (
    <Stack gap={4}>
      <Text fw={600} size="sm">
        {title}
      </Text>
      <Code block p={0} aria-label={title}>
        {lines.map((line, i) => (
          <Box key={i} bg={BG[line.kind]} px="xs" data-kind={line.kind}>
            {SIGN[line.kind]} {line.text || ' '}
          </Box>
        ))}
      </Code>
    </Stack>
  );
}

export function VersionDiff({ versions }: { versions: Version[] }) {
  const options = versions.map((v) => ({
    value: String(v.version),
    label: `v${v.version} · ${formatTime(v.created_at)}${v.created_by ? ` · ${v.created_by}` : ''}`,
  }));
  const [leftId, setLeft] = useState(String(versions[1]?.version ?? versions[0]?.version ?? ''));
  const [rightId, setRight] = useState(String(versions[0]?.version ?? ''));
  if (versions.length === 0) return <Text c="dimmed">No versions yet: save a definition first.</Text>;
  const find = (id: string) => versions.find((v) => String(v.version) === id);
  const left = JSON.stringify(find(leftId)?.definition ?? {}, null, 2);
  const right = JSON.stringify(find(rightId)?.definition ?? {}, null, 2);
  const [l, r] = sideBySide(left, right);
  return (
    <Stack>
      <Grid>
        <Grid.Col span={{ base: 12, sm: 6 }}>
          <Select
            label="Compare version"
            data={options}
            value={leftId}
            onChange={(v) => v && setLeft(v)}
            allowDeselect={false}
          />
        </Grid.Col>
        <Grid.Col span={{ base: 12, sm: 6 }}>
          <Select
            label="With version"
            data={options}
            value={rightId}
            onChange={(v) => v && setRight(v)}
            allowDeselect={false}
          />
        </Grid.Col>
      </Grid>
      <Grid>
        <Grid.Col span={{ base: 12, sm: 6 }}>
          <Column lines={l} title={`Version ${leftId}`} />
        </Grid.Col>
        <Grid.Col span={{ base: 12, sm: 6 }}>
          <Column lines={r} title={`Version ${rightId}`} />
        </Grid.Col>
      </Grid>
    </Stack>
  );
}
