// Connectors: push a segment's entered/exited users to Klaviyo, Braze, Talon.One or files.
// Credentials are write-only: the form never holds a stored value, only a new one typed to replace it.
import {
  Badge,
  Button,
  Drawer,
  Group,
  Modal,
  PasswordInput,
  Select,
  Stack,
  Switch,
  Table,
  Text,
  TextInput,
  VisuallyHidden,
} from '@mantine/core';
import { notifications } from '@mantine/notifications';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { api, ApiError } from '../api/client';
import type { Connector, Segment, SyncList } from '../api/types';
import { Empty, ErrorNotice, formatTime, Loading, PageHeader } from '../app/feedback';
import { LazyJsonEditor } from '../app/LazyJsonEditor';
import { useWorkspace } from '../app/session';
import { AdminOnly } from './settings/AdminOnly';

type ConnectorType = 'klaviyo' | 'braze' | 'talonone' | 'file';

// Starting configuration per destination (docs/connectors.md lists every field).
const TEMPLATES: Record<ConnectorType, Record<string, unknown>> = {
  klaviyo: { list_id: '', identifier: 'email' },
  braze: { rest_endpoint: 'https://rest.iad-01.braze.com', subscription_group_id: '', identifier: 'external_id' },
  talonone: { base_url: 'https://yourdeployment.talon.one', audience_name: '' },
  file: { format: 'csv', prefix: 'connectors', snapshot: false },
};
const LABELS: Record<ConnectorType, string> = {
  klaviyo: 'Klaviyo',
  braze: 'Braze',
  talonone: 'Talon.One',
  file: 'File (GCS)',
};

const inProgress = (status: string | undefined) => status === 'queued' || status === 'running';

export default function Connectors() {
  return (
    <AdminOnly title="Connectors">
      <ConnectorList />
    </AdminOnly>
  );
}

function ConnectorList() {
  const { tenant } = useWorkspace();
  const client = useQueryClient();
  const connectors = useQuery({
    queryKey: ['connectors', tenant?.id],
    queryFn: () => api.get<{ results: Connector[] }>('/api/connectors/'),
    // A sync runs after it is queued: poll until none is waiting or running.
    refetchInterval: (q) => (q.state.data?.results.some((c) => inProgress(c.last_sync?.status)) ? 1500 : false),
  });
  const segments = useQuery({
    queryKey: ['segment-names', tenant?.id],
    queryFn: () => api.get<{ results: Segment[] }>('/api/segments/', { limit: 500 }),
  });
  const [editing, setEditing] = useState<Connector | 'new' | null>(null);
  const [history, setHistory] = useState<Connector | null>(null);
  const sync = useMutation({
    mutationFn: (c: Connector) => api.post(`/api/connectors/${c.id}/sync/`),
    onSuccess: (_, c) => {
      notifications.show({ color: 'green', message: `Full sync of ${c.name} queued` });
      void client.invalidateQueries({ queryKey: ['connectors'] });
    },
  });
  const segmentName = (id: number) => segments.data?.results.find((s) => s.id === id)?.name ?? `#${id}`;
  const rows = connectors.data?.results ?? [];
  return (
    <>
      <PageHeader title="Connectors" actions={<Button onClick={() => setEditing('new')}>New connector</Button>} />
      <ErrorNotice error={connectors.error ?? sync.error} />
      {connectors.isPending ? (
        <Loading />
      ) : rows.length === 0 ? (
        <Empty>No connectors yet.</Empty>
      ) : (
        <Table.ScrollContainer minWidth={760}>
          <Table striped>
            <Table.Thead>
              <Table.Tr>
                <Table.Th>Name</Table.Th>
                <Table.Th>Destination</Table.Th>
                <Table.Th>Segment</Table.Th>
                <Table.Th>Active</Table.Th>
                <Table.Th>Credentials</Table.Th>
                <Table.Th>Last sync</Table.Th>
                <Table.Th>
                  <VisuallyHidden>Actions</VisuallyHidden>
                </Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {rows.map((c) => (
                <Table.Tr key={c.id}>
                  <Table.Td>{c.name}</Table.Td>
                  <Table.Td>{LABELS[c.type as ConnectorType] ?? c.type}</Table.Td>
                  <Table.Td>{segmentName(c.segment_id)}</Table.Td>
                  <Table.Td>
                    <Badge color={c.active ? 'green' : 'gray'} variant="dot">
                      {c.active ? 'active' : 'paused'}
                    </Badge>
                  </Table.Td>
                  <Table.Td>{c.credentials_set ? 'set' : c.type === 'file' ? 'not needed' : 'missing'}</Table.Td>
                  <Table.Td>
                    {c.last_sync ? `${c.last_sync.status} · ${formatTime(c.last_sync.requested_at)}` : '—'}
                  </Table.Td>
                  <Table.Td>
                    <Group gap={4} wrap="nowrap">
                      <Button size="xs" variant="subtle" onClick={() => setEditing(c)} aria-label={`Edit ${c.name}`}>
                        Edit
                      </Button>
                      <Button
                        size="xs"
                        variant="subtle"
                        onClick={() => sync.mutate(c)}
                        aria-label={`Full sync ${c.name}`}
                      >
                        Full sync
                      </Button>
                      <Button
                        size="xs"
                        variant="subtle"
                        onClick={() => setHistory(c)}
                        aria-label={`Sync history of ${c.name}`}
                      >
                        History
                      </Button>
                    </Group>
                  </Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        </Table.ScrollContainer>
      )}
      {editing !== null && (
        <ConnectorForm
          connector={editing === 'new' ? null : editing}
          segments={segments.data?.results ?? []}
          onClose={() => setEditing(null)}
        />
      )}
      <Drawer
        opened={history !== null}
        onClose={() => setHistory(null)}
        title={`Sync history: ${history?.name ?? ''}`}
        position="right"
        size="lg"
      >
        {history && <SyncHistory connector={history} />}
      </Drawer>
    </>
  );
}

function ConnectorForm({
  connector,
  segments,
  onClose,
}: {
  connector: Connector | null;
  segments: Segment[];
  onClose: () => void;
}) {
  const client = useQueryClient();
  const [type, setType] = useState<ConnectorType>((connector?.type as ConnectorType) ?? 'klaviyo');
  const [name, setName] = useState(connector?.name ?? '');
  const [segmentId, setSegmentId] = useState<string | null>(connector ? String(connector.segment_id) : null);
  const [active, setActive] = useState(connector?.active ?? false);
  const [config, setConfig] = useState(JSON.stringify(connector?.config ?? TEMPLATES[type], null, 2));
  const [apiKey, setApiKey] = useState('');
  const [configProblem, setConfigProblem] = useState<string | null>(null);
  const [segmentMissing, setSegmentMissing] = useState(false);
  const save = useMutation({
    mutationFn: () => {
      const parsed = JSON.parse(config) as Record<string, unknown>;
      const credentials = apiKey ? { api_key: apiKey } : undefined;
      const body = {
        name,
        segment_id: Number(segmentId),
        active,
        config: parsed,
        ...(credentials ? { credentials } : {}),
      };
      return connector
        ? api.patch<Connector>(`/api/connectors/${connector.id}/`, body)
        : api.post<Connector>('/api/connectors/', { ...body, type });
    },
    onSuccess: () => {
      setApiKey('');
      void client.invalidateQueries({ queryKey: ['connectors'] });
      onClose();
    },
  });
  const fields = save.error instanceof ApiError ? save.error.fieldErrors : {};
  const configErrors = Object.entries(fields).filter(([p]) => p.startsWith('/config'));
  return (
    <Modal opened onClose={onClose} title={connector ? `Edit ${connector.name}` : 'New connector'} size="lg">
      <form
        onSubmit={(e) => {
          e.preventDefault();
          // Mantine's Select is no native select: the browser does not check that one is chosen.
          setSegmentMissing(segmentId === null);
          try {
            JSON.parse(config);
            setConfigProblem(null);
            if (segmentId !== null) save.mutate();
          } catch (err) {
            setConfigProblem((err as Error).message);
          }
        }}
      >
        <Stack>
          <Select
            label="Destination"
            data={Object.entries(LABELS).map(([value, label]) => ({ value, label }))}
            value={type}
            disabled={connector !== null}
            allowDeselect={false}
            onChange={(v) => {
              if (!v) return;
              setType(v as ConnectorType);
              setConfig(JSON.stringify(TEMPLATES[v as ConnectorType], null, 2));
            }}
            comboboxProps={{ withinPortal: false }}
          />
          <TextInput
            label="Name"
            required
            value={name}
            onChange={(e) => setName(e.currentTarget.value)}
            error={fields['/name']}
          />
          <Select
            label="Segment"
            required
            data={segments.map((s) => ({ value: String(s.id), label: s.name }))}
            value={segmentId}
            onChange={(id) => {
              setSegmentId(id);
              setSegmentMissing(false);
            }}
            error={segmentMissing ? 'Choose a segment' : fields['/segment_id']}
            comboboxProps={{ withinPortal: false }}
          />
          <div>
            <Text size="sm" fw={500}>
              Configuration (JSON)
            </Text>
            <LazyJsonEditor value={config} height="160px" label="Configuration (JSON)" onChange={setConfig} />
            {(configProblem ?? configErrors.length > 0) && (
              <Text c="red" size="sm" role="alert">
                {configProblem ?? configErrors.map(([p, m]) => `${p}: ${m}`).join('; ')}
              </Text>
            )}
          </div>
          {type !== 'file' && (
            <PasswordInput
              label={connector?.credentials_set ? 'Replace API key' : 'API key'}
              description={
                connector?.credentials_set
                  ? 'A key is stored. It is never shown; leave empty to keep it.'
                  : 'Write-only: it is never shown again'
              }
              autoComplete="off"
              value={apiKey}
              onChange={(e) => setApiKey(e.currentTarget.value)}
              error={fields['/credentials/api_key'] ?? fields['/credentials']}
            />
          )}
          <Switch
            label="Active (sync after each compute)"
            checked={active}
            onChange={(e) => setActive(e.currentTarget.checked)}
          />
          {Object.keys(fields).length === 0 && <ErrorNotice error={save.error} />}
          <Group justify="flex-end">
            <Button variant="default" onClick={onClose}>
              Cancel
            </Button>
            <Button type="submit" loading={save.isPending}>
              Save
            </Button>
          </Group>
        </Stack>
      </form>
    </Modal>
  );
}

function SyncHistory({ connector }: { connector: Connector }) {
  const syncs = useQuery({
    queryKey: ['syncs', connector.id],
    queryFn: () => api.get<SyncList>(`/api/connectors/${connector.id}/syncs/`),
    refetchInterval: (q) => (q.state.data?.results.some((s) => inProgress(s.status)) ? 1500 : false),
  });
  if (syncs.isPending) return <Loading />;
  if (syncs.isError) return <ErrorNotice error={syncs.error} />;
  if (syncs.data.results.length === 0) return <Empty>No syncs yet.</Empty>;
  return (
    <Table>
      <Table.Thead>
        <Table.Tr>
          <Table.Th>Requested</Table.Th>
          <Table.Th>Kind</Table.Th>
          <Table.Th>Status</Table.Th>
          <Table.Th>Added</Table.Th>
          <Table.Th>Removed</Table.Th>
          <Table.Th>Failed</Table.Th>
        </Table.Tr>
      </Table.Thead>
      <Table.Tbody>
        {syncs.data.results.map((s) => (
          <Table.Tr key={s.id}>
            <Table.Td>{formatTime(s.requested_at)}</Table.Td>
            <Table.Td>{s.kind}</Table.Td>
            <Table.Td>{s.status}</Table.Td>
            <Table.Td>{s.added}</Table.Td>
            <Table.Td>{s.removed}</Table.Td>
            <Table.Td>{s.failed}</Table.Td>
          </Table.Tr>
        ))}
      </Table.Tbody>
    </Table>
  );
}
