// A definition edited two ways over one JSON document: the visual builder and a JSON tab. Either
// edits the same object, so switching tabs never loses or reorders anything. A debounced preview asks
// the API for the matched users and SQL, and its validation errors land at the offending fields.
import { Alert, Badge, Code, Group, Paper, Stack, Tabs, Text, Title } from '@mantine/core';
import { useDebouncedValue } from '@mantine/hooks';
import { useQuery } from '@tanstack/react-query';
import { useEffect, useState } from 'react';
import { api, ApiError } from '../api/client';
import type { Preview } from '../api/types';
import { LazyJsonEditor } from '../app/LazyJsonEditor';
import { useWorkspace } from '../app/session';
import type { Group as DslGroup } from './dsl';
import { RuleBuilder } from './RuleBuilder';
import { useSuggestions } from './suggestions';

interface Props {
  definition: DslGroup;
  onChange: (definition: DslGroup) => void;
  /** The last save's error: its `/definition/...` problems are shown at their fields until the next edit. */
  saveError: unknown;
  readOnly: boolean;
}

export function DefinitionEditor({ definition, onChange, saveError, readOnly }: Props) {
  const suggestions = useSuggestions();
  const { tenant } = useWorkspace();
  const [debounced] = useDebouncedValue(definition, 400);
  const preview = useQuery({
    queryKey: ['preview', tenant?.id, debounced],
    queryFn: () => api.post<Preview>('/api/segments/preview/', { definition: debounced, limit: 10 }),
    enabled: !readOnly && Array.isArray(debounced.conditions) && debounced.conditions.length > 0,
    retry: false,
  });
  // A save's errors are about the definition it sent: an edit since retires them (the preview judges the edit).
  const [saved, setSaved] = useState({ error: saveError, definition });
  if (saved.error !== saveError) setSaved({ error: saveError, definition });
  const saveErrors = saved.definition === definition && saveError instanceof ApiError ? saveError.fieldErrors : {};
  const previewErrors = preview.error instanceof ApiError ? preview.error.fieldErrors : {};
  const shown = Object.fromEntries(
    Object.entries({ ...previewErrors, ...saveErrors }).filter(([pointer]) => pointer.startsWith('/definition')),
  );
  // What the builder has no control for (`/definition/logic` of a typed document); the other fields of
  // the page show their own.
  const unplaced = Object.entries(shown).filter(([pointer]) => !pointer.startsWith('/definition/conditions'));

  return (
    <Stack>
      <Tabs defaultValue="builder" keepMounted={false}>
        <Tabs.List>
          <Tabs.Tab value="builder">Builder</Tabs.Tab>
          <Tabs.Tab value="json">JSON</Tabs.Tab>
        </Tabs.List>
        <Tabs.Panel value="builder" pt="sm">
          <RuleBuilder
            definition={definition}
            onChange={onChange}
            pointer="/definition"
            errors={shown}
            readOnly={readOnly}
            suggestions={suggestions}
          />
        </Tabs.Panel>
        <Tabs.Panel value="json" pt="sm">
          <JsonTab definition={definition} onChange={onChange} readOnly={readOnly} />
        </Tabs.Panel>
      </Tabs>
      {unplaced.map(([pointer, message]) => (
        <Alert key={pointer} color="red" role="alert">
          {pointer}: {message}
        </Alert>
      ))}
      {!readOnly && (
        <Paper withBorder p="sm" aria-live="polite" aria-label="Preview">
          <Title order={2} size="h4" mb="xs">
            Preview
          </Title>
          {preview.isFetching && <Text size="sm">Evaluating…</Text>}
          {preview.data && !preview.isFetching && (
            <Stack gap="xs">
              <Group gap="xs">
                <Text size="sm">Matched users:</Text>
                <Badge size="lg" data-testid="preview-count">
                  {preview.data.matched_users}
                </Badge>
              </Group>
              {preview.data.sample_user_ids.length > 0 && (
                <Text size="sm">Sample: {preview.data.sample_user_ids.join(', ')}</Text>
              )}
              <details>
                <summary>SQL</summary>
                <Code block>{preview.data.sql}</Code>
              </details>
            </Stack>
          )}
          {preview.isError && !(preview.error instanceof ApiError && preview.error.status === 400) && (
            <Text c="red" size="sm">
              {preview.error.message}
            </Text>
          )}
          {preview.isError && preview.error instanceof ApiError && preview.error.status === 400 && (
            <Text c="red" size="sm">
              Fix the highlighted fields to see a preview.
            </Text>
          )}
          {!preview.data && !preview.isFetching && !preview.isError && (
            <Text size="sm">Add a condition to preview.</Text>
          )}
        </Paper>
      )}
    </Stack>
  );
}

function JsonTab({
  definition,
  onChange,
  readOnly,
}: {
  definition: DslGroup;
  onChange: (d: DslGroup) => void;
  readOnly: boolean;
}) {
  const [text, setText] = useState(() => JSON.stringify(definition, null, 2));
  const [problem, setProblem] = useState<string | null>(null);
  useEffect(() => {
    // Follow outside changes, but never rewrite what is being typed when it already means the same.
    setText((current) => {
      try {
        if (JSON.stringify(JSON.parse(current)) === JSON.stringify(definition)) return current;
      } catch {
        // the current text is mid-edit and invalid: replace it with the document
      }
      return JSON.stringify(definition, null, 2);
    });
  }, [definition]);
  return (
    <Stack gap="xs">
      <Text size="sm" fw={500}>
        Definition (JSON)
      </Text>
      <LazyJsonEditor
        value={text}
        height="360px"
        label="Definition JSON"
        readOnly={readOnly}
        onChange={(value) => {
          setText(value);
          try {
            const parsed: unknown = JSON.parse(value);
            if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
              throw new Error('The definition must be a JSON object');
            setProblem(null);
            onChange(parsed as DslGroup);
          } catch (err) {
            setProblem((err as Error).message);
          }
        }}
      />
      {problem && (
        <Text c="red" size="sm" role="alert">
          {problem}
        </Text>
      )}
    </Stack>
  );
}
