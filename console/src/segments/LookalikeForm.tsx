// A lookalike's definition (`docs/ai.md`, "Lookalike"): a seed segment, the N best-scoring users or
// every user above a score, the lookback and whether the seed is left out. It replaces the rule
// builder for lookalike segments; Preview trains and scores now (`POST /api/segments/lookalike/preview/`).
import {
  Button,
  Checkbox,
  Group,
  NumberInput,
  Paper,
  SegmentedControl,
  Select,
  Stack,
  Table,
  Text,
} from '@mantine/core';
import { useMutation, useQuery } from '@tanstack/react-query';
import { api, ApiError } from '../api/client';
import type { LookalikePreview, SegmentList } from '../api/types';
import { ErrorNotice } from '../app/feedback';
import { useWorkspace } from '../app/session';

/** The API's shape; exactly one of `size` and `min_score` is set. */
export interface LookalikeDefinition {
  seed_segment_id?: number;
  size?: number;
  min_score?: number;
  lookback_days?: number;
  exclude_seed?: boolean;
}

export const emptyLookalike = (): LookalikeDefinition => ({ size: 1000, lookback_days: 90, exclude_seed: true });

interface Props {
  definition: LookalikeDefinition;
  onChange: (definition: LookalikeDefinition) => void;
  /** The save's messages by JSON pointer (`/definition/size` …). */
  errors: Record<string, string>;
  readOnly: boolean;
}

// A number box's value is a number or '' while empty; an empty box leaves its key out for the API to name.
function numberOrNothing(value: number | string): number | undefined {
  return typeof value === 'number' ? value : undefined;
}

export function LookalikeForm({ definition, onChange, errors, readOnly }: Props) {
  const { tenant } = useWorkspace();
  // Seeds are the tenant's rule and ai segments (the API refuses a lookalike as a seed).
  const seeds = useQuery({
    queryKey: ['segments', tenant?.id, 'seeds'],
    queryFn: () => api.get<SegmentList>('/api/segments/', { limit: 500 }),
    select: (page) => page.results.filter((s) => s.segment_type !== 'lookalike'),
  });
  const preview = useMutation({
    mutationFn: () => api.post<LookalikePreview>('/api/segments/lookalike/preview/', { definition }),
  });
  const previewFields = preview.error instanceof ApiError ? preview.error.fieldErrors : {};
  const fieldError = (name: string) => previewFields[`/definition/${name}`] ?? errors[`/definition/${name}`];
  const bySize = definition.min_score === undefined;
  const set = (patch: Partial<LookalikeDefinition>) => onChange({ ...definition, ...patch });

  return (
    <Paper withBorder p="sm" maw={900} component="section" aria-label="Lookalike definition">
      <Stack gap="sm">
        <Select
          label="Seed segment"
          description="The users the lookalike resembles: a computed rule or ai segment."
          placeholder={seeds.isPending ? 'Loading segments…' : 'Choose a segment'}
          data={(seeds.data ?? []).map((s) => ({ value: String(s.id), label: s.name }))}
          value={definition.seed_segment_id === undefined ? null : String(definition.seed_segment_id)}
          onChange={(v) => set({ seed_segment_id: v === null ? undefined : Number(v) })}
          searchable
          readOnly={readOnly}
          error={fieldError('seed_segment_id')}
        />
        <ErrorNotice error={seeds.error} />
        <Stack gap={4}>
          <Text size="sm" fw={500} id="lookalike-by">
            Select by
          </Text>
          <SegmentedControl
            aria-labelledby="lookalike-by"
            maw={360}
            data={[
              { value: 'size', label: 'Size' },
              { value: 'min_score', label: 'Minimum score' },
            ]}
            value={bySize ? 'size' : 'min_score'}
            readOnly={readOnly}
            onChange={(v) =>
              // Exactly one of the two is sent: switching drops the other.
              onChange({
                ...definition,
                size: v === 'size' ? (definition.size ?? 1000) : undefined,
                min_score: v === 'min_score' ? (definition.min_score ?? 0.5) : undefined,
              })
            }
          />
        </Stack>
        <Group align="flex-start" grow>
          {bySize ? (
            <NumberInput
              label="Size"
              description="The best-scoring users to keep."
              min={1}
              allowDecimal={false}
              value={definition.size ?? ''}
              onChange={(v) => set({ size: numberOrNothing(v) })}
              readOnly={readOnly}
              error={fieldError('size')}
            />
          ) : (
            <NumberInput
              label="Minimum score"
              description="Every user scoring at least this (between 0 and 1)."
              min={0}
              max={1}
              step={0.05}
              decimalScale={3}
              value={definition.min_score ?? ''}
              onChange={(v) => set({ min_score: numberOrNothing(v) })}
              readOnly={readOnly}
              error={fieldError('min_score')}
            />
          )}
          <NumberInput
            label="Lookback days"
            description="The behaviour the model learns from."
            min={1}
            max={3650}
            allowDecimal={false}
            value={definition.lookback_days ?? ''}
            onChange={(v) => set({ lookback_days: numberOrNothing(v) })}
            readOnly={readOnly}
            error={fieldError('lookback_days')}
          />
        </Group>
        <Checkbox
          label="Exclude seed users"
          checked={definition.exclude_seed ?? true}
          onChange={(e) => set({ exclude_seed: e.currentTarget.checked })}
          disabled={readOnly}
          error={fieldError('exclude_seed')}
        />
        {!readOnly && (
          <Group>
            <Button type="button" variant="light" loading={preview.isPending} onClick={() => preview.mutate()}>
              Preview
            </Button>
          </Group>
        )}
        {Object.keys(previewFields).length === 0 && <ErrorNotice error={preview.error} />}
        {preview.data && <PreviewResult result={preview.data} />}
      </Stack>
    </Paper>
  );
}

function PreviewResult({ result }: { result: LookalikePreview }) {
  return (
    <Stack gap="xs" role="region" aria-label="Lookalike preview">
      <Text>
        Estimated size:{' '}
        <Text span fw={700} data-testid="lookalike-size">
          {result.estimated_size}
        </Text>{' '}
        (trained on {result.seed_users} seed users, {result.scored_users} users scored)
      </Text>
      <Table maw={420} striped>
        <Table.Caption>Users by score</Table.Caption>
        <Table.Thead>
          <Table.Tr>
            <Table.Th>Score</Table.Th>
            <Table.Th>Users</Table.Th>
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {result.histogram.map((b) => (
            <Table.Tr key={b.min_score}>
              <Table.Td>
                {b.min_score.toFixed(1)}–{b.max_score.toFixed(1)}
              </Table.Td>
              <Table.Td>{b.users}</Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
    </Stack>
  );
}
