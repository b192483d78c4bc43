// The Event Sandbox of reference/event-sandbox.txt: simulate one event, see which segments the user
// would enter or exit. Nothing is stored.
import { Anchor, Autocomplete, Badge, Button, Grid, List, Paper, Stack, Text, TextInput, Title } from '@mantine/core';
import { useMutation } from '@tanstack/react-query';
import { useState } from 'react';
import { Link } from 'react-router';
import { api, ApiError } from '../api/client';
import type { SandboxResult } from '../api/types';
import { ErrorNotice, PageHeader } from '../app/feedback';
import { LazyJsonEditor } from '../app/LazyJsonEditor';
import { useWorkspace } from '../app/session';
import { useSuggestions } from '../segments/suggestions';

/** `datetime-local` wants local time without zone: now, to the minute. */
function localNow(): string {
  const now = new Date();
  now.setSeconds(0, 0);
  return new Date(now.getTime() - now.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
}

function parsePayload(text: string): { value?: Record<string, unknown>; problem?: string } {
  if (text.trim() === '') return { value: {} };
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== 'object' || value === null || Array.isArray(value))
      return { problem: 'Payload must be a JSON object' };
    return { value: value as Record<string, unknown> };
  } catch (err) {
    return { problem: `Invalid JSON: ${(err as Error).message}` };
  }
}

export default function Sandbox() {
  const { can } = useWorkspace();
  const suggestions = useSuggestions();
  const [userId, setUserId] = useState('');
  const [eventType, setEventType] = useState('');
  const [occurredAt, setOccurredAt] = useState(localNow);
  const [payload, setPayload] = useState('{\n  \n}');
  const parsed = parsePayload(payload);
  const publish = useMutation({
    mutationFn: () =>
      api.post<SandboxResult>('/api/explorer/sandbox/publish/', {
        user_id: userId,
        event_type: eventType,
        // An emptied box means now, as it starts.
        occurred_at: (occurredAt ? new Date(occurredAt) : new Date()).toISOString(),
        payload: parsed.value,
      }),
  });
  const fields = publish.error instanceof ApiError ? publish.error.fieldErrors : {};
  const result = publish.data;
  return (
    <>
      <PageHeader title="Sandbox">
        <Text size="sm">
          Publish a test event and see which segments the user would enter or exit. Sandbox events are not stored.
        </Text>
      </PageHeader>
      <Grid>
        <Grid.Col span={{ base: 12, md: 6 }}>
          <form
            onSubmit={(e) => {
              e.preventDefault();
              if (!parsed.problem) publish.mutate();
            }}
          >
            <Stack>
              <TextInput
                label="User ID"
                required
                value={userId}
                onChange={(e) => setUserId(e.currentTarget.value)}
                error={fields['/user_id']}
              />
              <Autocomplete
                label="Event Type"
                placeholder="order_placed"
                required
                data={suggestions.eventTypes}
                value={eventType}
                onChange={setEventType}
                error={fields['/event_type']}
              />
              <TextInput
                label="Occurred At"
                type="datetime-local"
                value={occurredAt}
                onChange={(e) => setOccurredAt(e.currentTarget.value)}
                error={fields['/occurred_at']}
              />
              <div>
                <Text size="sm" fw={500}>
                  Payload
                </Text>
                <LazyJsonEditor value={payload} height="160px" label="Payload" onChange={setPayload} />
                {(parsed.problem ?? fields['/payload']) && (
                  <Text c="red" size="sm" role="alert">
                    {parsed.problem ?? fields['/payload']}
                  </Text>
                )}
              </div>
              {Object.keys(fields).length === 0 && <ErrorNotice error={publish.error} />}
              <Button type="submit" loading={publish.isPending} disabled={!can('member') || Boolean(parsed.problem)}>
                Publish
              </Button>
              {!can('member') && <Text size="sm">Viewers cannot publish sandbox events.</Text>}
            </Stack>
          </form>
        </Grid.Col>
        <Grid.Col span={{ base: 12, md: 6 }}>
          <Paper withBorder p="md" aria-live="polite" aria-label="Results">
            <Title order={2} size="h4" mb="sm">
              Results
            </Title>
            {!result ? (
              <Text c="dimmed" size="sm">
                Publish an event to see its effect.
              </Text>
            ) : (
              <Stack gap="sm">
                <SegmentRefs title="Entered" refs={result.entered} />
                <SegmentRefs title="Exited" refs={result.exited} />
                <div>
                  <Text fw={600}>Unchanged</Text>
                  <Badge variant="light" data-testid="unchanged-count">
                    {result.unchanged_count}
                  </Badge>
                </div>
              </Stack>
            )}
          </Paper>
        </Grid.Col>
      </Grid>
    </>
  );
}

function SegmentRefs({ title, refs }: { title: string; refs: SandboxResult['entered'] }) {
  return (
    <div data-testid={title.toLowerCase()}>
      <Text fw={600}>
        {title} ({refs.length})
      </Text>
      {refs.length === 0 ? (
        <Text size="sm" c="dimmed">
          none
        </Text>
      ) : (
        <List size="sm">
          {refs.map((s) => (
            <List.Item key={s.id}>
              <Anchor component={Link} to={`/segments/${s.id}`}>
                {s.name}
              </Anchor>
            </List.Item>
          ))}
        </List>
      )}
    </div>
  );
}
