// One segment: its rules (builder/JSON, preview, save → new version), Recompute with live status,
// members with a membership check, version diff, and exports.
import {
  Alert,
  Anchor,
  Badge,
  Button,
  Group,
  Paper,
  SegmentedControl,
  SimpleGrid,
  Stack,
  Switch,
  Table,
  Tabs,
  Text,
  TextInput,
} from '@mantine/core';
import { notifications } from '@mantine/notifications';
import { useInfiniteQuery, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect, useState } from 'react';
import { Link, useParams } from 'react-router';
import { api, ApiError, download } from '../api/client';
import type { ComputeStatus, Export, Members, Membership, Segment, VersionList } from '../api/types';
import { Empty, ErrorNotice, formatTime, Loading, PageHeader } from '../app/feedback';
import { useWorkspace } from '../app/session';
import { AudienceDraft } from '../segments/AudienceDraft';
import { ComputeBadge } from '../segments/ComputeBadge';
import { DefinitionEditor } from '../segments/DefinitionEditor';
import { emptyDefinition, type Group as DslGroup } from '../segments/dsl';
import { emptyLookalike, LookalikeForm, type LookalikeDefinition } from '../segments/LookalikeForm';
import { ConflictNotice, useDefinitionSave } from '../segments/definitionSave';
import { DeleteSegmentButton, EditDetailsButton } from '../segments/SegmentActions';
import { VersionDiff } from '../segments/VersionDiff';
import NotFound from './NotFound';

export default function SegmentDetail() {
  const param = useParams().segmentId ?? '';
  // Segment ids are positive integers: anything else is no page (not a request for /api/segments/NaN/).
  const id = /^[1-9]\d*$/.test(param) ? Number(param) : null;
  const segment = useQuery({
    queryKey: ['segment', id],
    queryFn: () => api.get<Segment>(`/api/segments/${id}/`),
    enabled: id !== null,
  });
  if (id === null) return <NotFound />;
  if (segment.isPending) return <Loading />;
  if (segment.isError) return <ErrorNotice error={segment.error} />;
  return <SegmentPage segment={segment.data} />;
}

function SegmentPage({ segment }: { segment: Segment }) {
  const { can } = useWorkspace();
  const editable = can('member');
  const client = useQueryClient();
  const activate = useMutation({
    mutationFn: (active: boolean) => api.patch<Segment>(`/api/segments/${segment.id}/`, { active }),
    onSuccess: (saved) => {
      client.setQueryData(['segment', segment.id], saved);
      void client.invalidateQueries({ queryKey: ['segments'] });
    },
  });
  return (
    <>
      <PageHeader
        title={segment.name}
        actions={
          editable && (
            <Group gap="xs">
              <EditDetailsButton segment={segment} />
              <DeleteSegmentButton segment={segment} />
              <RecomputeButton segment={segment} />
            </Group>
          )
        }
      >
        <Group gap="xs">
          <Badge variant="light">{segment.segment_type}</Badge>
          <Badge variant="outline">version {segment.version}</Badge>
          <Switch
            label="Active"
            checked={segment.active}
            disabled={!editable || activate.isPending}
            onChange={(e) => activate.mutate(e.currentTarget.checked)}
          />
        </Group>
        {segment.description && <Text size="sm">{segment.description}</Text>}
        <ErrorNotice error={activate.error} />
      </PageHeader>
      <ComputePanel segment={segment} />
      <Tabs defaultValue="definition" mt="md" keepMounted={false}>
        <Tabs.List>
          <Tabs.Tab value="definition">Definition</Tabs.Tab>
          <Tabs.Tab value="members">Members</Tabs.Tab>
          <Tabs.Tab value="versions">Versions</Tabs.Tab>
          {editable && <Tabs.Tab value="export">Export</Tabs.Tab>}
        </Tabs.List>
        <Tabs.Panel value="definition" pt="md">
          {segment.segment_type === 'lookalike' ? (
            <LookalikeTab segment={segment} readOnly={!editable} />
          ) : (
            <DefinitionTab segment={segment} readOnly={!editable} />
          )}
        </Tabs.Panel>
        <Tabs.Panel value="members" pt="md">
          <MembersTab segment={segment} />
        </Tabs.Panel>
        <Tabs.Panel value="versions" pt="md">
          <VersionsTab segment={segment} />
        </Tabs.Panel>
        {editable && (
          <Tabs.Panel value="export" pt="md">
            <ExportTab segment={segment} />
          </Tabs.Panel>
        )}
      </Tabs>
    </>
  );
}

function useComputeStatus(segmentId: number) {
  return useQuery({
    queryKey: ['compute', segmentId],
    queryFn: () => api.get<ComputeStatus>(`/api/segments/${segmentId}/compute/`),
    refetchInterval: (q) => (q.state.data?.status === 'queued' || q.state.data?.status === 'running' ? 1000 : false),
  });
}

function RecomputeButton({ segment }: { segment: Segment }) {
  const client = useQueryClient();
  const status = useComputeStatus(segment.id).data?.status;
  const recompute = useMutation({
    mutationFn: () => api.post(`/api/segments/${segment.id}/compute/`),
    onSuccess: () => void client.invalidateQueries({ queryKey: ['compute', segment.id] }),
    onError: (error) => notifications.show({ color: 'red', title: 'Recompute refused', message: error.message }),
  });
  return (
    <Button
      onClick={() => recompute.mutate()}
      loading={recompute.isPending || status === 'queued' || status === 'running'}
      disabled={!segment.definition}
    >
      Recompute
    </Button>
  );
}

function ComputePanel({ segment }: { segment: Segment }) {
  const client = useQueryClient();
  const compute = useComputeStatus(segment.id);
  const status = compute.data?.status ?? null;
  useEffect(() => {
    if (status === 'succeeded' || status === 'failed') {
      void client.invalidateQueries({ queryKey: ['members', segment.id] });
      void client.invalidateQueries({ queryKey: ['segments'] });
    }
  }, [status, client, segment.id]);
  const data = compute.data;
  return (
    <Paper withBorder p="sm" aria-live="polite" aria-label="Compute status">
      <SimpleGrid cols={{ base: 2, sm: 5 }}>
        <Stat label="Status" value={<ComputeBadge status={status} />} />
        <Stat label="Members" value={<span data-testid="member-count">{data?.member_count ?? '—'}</span>} />
        <Stat label="Entered" value={<span data-testid="entered-count">{data?.entered_count ?? '—'}</span>} />
        <Stat label="Exited" value={<span data-testid="exited-count">{data?.exited_count ?? '—'}</span>} />
        <Stat label="Last computed" value={formatTime(data?.last_computed_at)} />
      </SimpleGrid>
      {data?.error && (
        <Alert color="red" mt="xs">
          {data.error}
        </Alert>
      )}
    </Paper>
  );
}

function Stat({ label, value }: { label: string; value: React.ReactNode }) {
  return (
    <div>
      <Text size="xs" c="dimmed">
        {label}
      </Text>
      <Text fw={600} component="div">
        {value}
      </Text>
    </div>
  );
}

function DefinitionTab({ segment, readOnly }: { segment: Segment; readOnly: boolean }) {
  const [definition, setDefinition] = useState<DslGroup>(
    () => (segment.definition as DslGroup | null) ?? emptyDefinition(),
  );
  // The prompts drafted into the rules since the last save; an ai segment's new version keeps them
  // (joined by "and": a refinement's conditions are AND-ed to the rules before it).
  const [prompts, setPrompts] = useState<string[]>([]);
  const keepsPrompt = segment.segment_type === 'ai' && prompts.length > 0;
  const { save, conflict, loadTheirs, saveOver } = useDefinitionSave({
    segment,
    body: () => ({ definition, ...(keepsPrompt ? { prompt: prompts.join(' and ') } : {}) }),
    onLoad: (loaded) => {
      setPrompts([]);
      setDefinition((loaded as DslGroup | null) ?? emptyDefinition());
    },
    onSaved: () => setPrompts([]),
  });
  const fields = save.error instanceof ApiError ? save.error.fieldErrors : {};
  return (
    <form
      onSubmit={(e) => {
        e.preventDefault();
        save.mutate(undefined);
      }}
    >
      <Stack>
        {!readOnly && (
          <AudienceDraft
            definition={definition}
            error={fields['/prompt']}
            onDrafted={(drafted, prompt, refined) => {
              setPrompts((before) => (refined ? [...before, prompt] : [prompt]));
              setDefinition(drafted);
            }}
          />
        )}
        <DefinitionEditor definition={definition} onChange={setDefinition} saveError={save.error} readOnly={readOnly} />
        {conflict ? (
          <ConflictNotice conflict={conflict} onLoad={loadTheirs} onSaveOver={saveOver} busy={save.isPending} />
        ) : (
          Object.keys(fields).length === 0 && <ErrorNotice error={save.error} />
        )}
        {!readOnly && (
          <Group>
            <Button type="submit" loading={save.isPending}>
              Save
            </Button>
          </Group>
        )}
      </Stack>
    </form>
  );
}

function LookalikeTab({ segment, readOnly }: { segment: Segment; readOnly: boolean }) {
  const [definition, setDefinition] = useState<LookalikeDefinition>(
    () => (segment.definition as LookalikeDefinition | null) ?? emptyLookalike(),
  );
  const { save, conflict, loadTheirs, saveOver } = useDefinitionSave({
    segment,
    body: () => ({ definition }),
    onLoad: (loaded) => setDefinition((loaded as LookalikeDefinition | null) ?? emptyLookalike()),
  });
  const fields = save.error instanceof ApiError ? save.error.fieldErrors : {};
  return (
    <form
      onSubmit={(e) => {
        e.preventDefault();
        save.mutate(undefined);
      }}
    >
      <Stack>
        <LookalikeForm definition={definition} onChange={setDefinition} errors={fields} readOnly={readOnly} />
        {conflict ? (
          <ConflictNotice conflict={conflict} onLoad={loadTheirs} onSaveOver={saveOver} busy={save.isPending} />
        ) : (
          Object.keys(fields).length === 0 && <ErrorNotice error={save.error} />
        )}
        {!readOnly && (
          <Group>
            <Button type="submit" loading={save.isPending}>
              Save
            </Button>
          </Group>
        )}
      </Stack>
    </form>
  );
}

function MembersTab({ segment }: { segment: Segment }) {
  const members = useInfiniteQuery({
    queryKey: ['members', segment.id],
    queryFn: ({ pageParam }) =>
      api.get<Members>(`/api/segments/${segment.id}/members/`, { limit: 100, cursor: pageParam }),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.next_cursor,
  });
  const rows = members.data?.pages.flatMap((p) => p.results) ?? [];
  return (
    <Stack>
      <MembershipCheck />
      <ErrorNotice error={members.error} />
      {members.isPending ? (
        <Loading />
      ) : rows.length === 0 ? (
        <Empty>No members. Recompute the segment to fill it.</Empty>
      ) : (
        <>
          <Text size="sm">
            {rows.length} of {members.data?.pages[0]?.count ?? 0} members
          </Text>
          <Table striped>
            <Table.Thead>
              <Table.Tr>
                <Table.Th>User ID</Table.Th>
                <Table.Th>Computed at</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {rows.map((m) => (
                <Table.Tr key={m.user_id}>
                  <Table.Td>{m.user_id}</Table.Td>
                  <Table.Td>{formatTime(m.computed_at)}</Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
          {members.hasNextPage && (
            <Button variant="default" loading={members.isFetchingNextPage} onClick={() => void members.fetchNextPage()}>
              Load more
            </Button>
          )}
        </>
      )}
    </Stack>
  );
}

/** Which segments a user is in, from the membership endpoint (the one the quickstart calls). */
function MembershipCheck() {
  const { tenant } = useWorkspace();
  const [userId, setUserId] = useState('');
  const check = useMutation({
    mutationFn: () => api.get<Membership>('/api/segments/membership/', { user_id: userId }),
  });
  const segments = useQuery({
    queryKey: ['segment-names', tenant?.id],
    queryFn: () => api.get<{ results: Segment[] }>('/api/segments/', { limit: 500 }),
    enabled: check.isSuccess,
  });
  const name = (id: number) => segments.data?.results.find((s) => s.id === id)?.name ?? `#${id}`;
  return (
    <Paper withBorder p="sm">
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (userId) check.mutate();
        }}
      >
        <Group align="flex-end">
          <TextInput
            label="Check a user"
            placeholder="user-123"
            value={userId}
            onChange={(e) => setUserId(e.currentTarget.value)}
          />
          <Button type="submit" variant="light" loading={check.isPending}>
            Check
          </Button>
        </Group>
      </form>
      <ErrorNotice error={check.error} />
      {check.data && (
        <Text size="sm" mt="xs" data-testid="membership-result">
          {check.data.user_id} is in{' '}
          {check.data.segment_ids.length === 0
            ? 'no segments'
            : check.data.segment_ids.map((id, i) => (
                <span key={id}>
                  {i > 0 && ', '}
                  <Anchor component={Link} to={`/segments/${id}`}>
                    {name(id)}
                  </Anchor>
                </span>
              ))}
        </Text>
      )}
    </Paper>
  );
}

function VersionsTab({ segment }: { segment: Segment }) {
  const versions = useQuery({
    queryKey: ['versions', segment.id],
    queryFn: () => api.get<VersionList>(`/api/segments/${segment.id}/versions/`),
  });
  if (versions.isPending) return <Loading />;
  if (versions.isError) return <ErrorNotice error={versions.error} />;
  return <VersionDiff versions={versions.data.results} />;
}

function ExportTab({ segment }: { segment: Segment }) {
  const [format, setFormat] = useState<'csv' | 'parquet'>('csv');
  const [exportId, setExportId] = useState<number | null>(null);
  const start = useMutation({
    mutationFn: () => api.post<Export>(`/api/segments/${segment.id}/export/`, { format }),
    onSuccess: (started) => setExportId(started.export_id),
  });
  const progress = useQuery({
    queryKey: ['export', segment.id, exportId],
    queryFn: () => api.get<Export>(`/api/segments/${segment.id}/export/`, { export_id: exportId }),
    enabled: exportId !== null,
    refetchInterval: (q) => (q.state.data && ['succeeded', 'failed'].includes(q.state.data.status) ? false : 1000),
  });
  const done = progress.data?.status === 'succeeded';
  const [downloadError, setDownloadError] = useState<unknown>(null);
  return (
    <Stack maw={560}>
      <Group align="flex-end">
        <div>
          <Text size="sm" fw={500} id="export-format-label">
            Format
          </Text>
          <SegmentedControl
            aria-labelledby="export-format-label"
            data={[
              { value: 'csv', label: 'CSV' },
              { value: 'parquet', label: 'Parquet' },
            ]}
            value={format}
            onChange={(v) => setFormat(v as 'csv' | 'parquet')}
          />
        </div>
        <Button onClick={() => start.mutate()} loading={start.isPending}>
          Export
        </Button>
      </Group>
      <ErrorNotice error={start.error ?? progress.error} />
      {progress.data && (
        <Paper withBorder p="sm" aria-live="polite">
          <Group>
            <Text size="sm">Export #{progress.data.export_id}:</Text>
            <Badge data-testid="export-status">{progress.data.status}</Badge>
            {progress.data.row_count != null && <Text size="sm">{progress.data.row_count} rows</Text>}
          </Group>
          {progress.data.error && <Text c="red">{progress.data.error}</Text>}
          {done && (
            <Button
              mt="sm"
              variant="light"
              onClick={() =>
                download(
                  `/api/segments/exports/${progress.data.export_id}/download/`,
                  `segment-${segment.id}-members.${progress.data.format}`,
                ).catch(setDownloadError)
              }
            >
              Download
            </Button>
          )}
          <ErrorNotice error={downloadError} />
        </Paper>
      )}
    </Stack>
  );
}
