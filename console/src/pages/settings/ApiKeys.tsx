// Settings → API Keys: list, + New Key (the secret is shown once), revoke with confirmation. A key is
// secret (`sk_live_`, servers) or publishable (`pk_live_`: only sends events, only from its allowed
// origins; the one kind a web page may embed).
import {
  Alert,
  Badge,
  Button,
  Code,
  CopyButton,
  Group,
  Modal,
  Radio,
  Select,
  Stack,
  Table,
  Text,
  Textarea,
  TextInput,
  VisuallyHidden,
} from '@mantine/core';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { api, ApiError } from '../../api/client';
import type { ApiKey, ApiKeyCreated } from '../../api/types';
import { Empty, ErrorNotice, formatTime, Loading, PageHeader } from '../../app/feedback';
import { useWorkspace } from '../../app/session';
import { AdminOnly } from './AdminOnly';

export default function ApiKeys() {
  return (
    <AdminOnly title="API Keys">
      <KeyList />
    </AdminOnly>
  );
}

function KeyList() {
  const client = useQueryClient();
  const { tenant, can } = useWorkspace();
  const keys = useQuery({
    queryKey: ['api-keys', tenant?.id],
    queryFn: () => api.get<{ results: ApiKey[] }>('/api/keys/'),
  });
  const [creating, setCreating] = useState(false);
  const [revoking, setRevoking] = useState<ApiKey | null>(null);
  const revoke = useMutation({
    mutationFn: (key: ApiKey) => api.delete(`/api/keys/${key.id}/`),
    onSuccess: () => {
      setRevoking(null);
      void client.invalidateQueries({ queryKey: ['api-keys'] });
    },
  });
  const live = (keys.data?.results ?? []).filter((k) => !k.revoked_at);
  return (
    <>
      <PageHeader title="API Keys" actions={<Button onClick={() => setCreating(true)}>+ New Key</Button>}>
        <Text size="sm">Keys authenticate your servers and SDKs to one tenant. Treat them like passwords.</Text>
      </PageHeader>
      <ErrorNotice error={keys.error} />
      {keys.isPending ? (
        <Loading />
      ) : live.length === 0 ? (
        <Empty>No API keys yet.</Empty>
      ) : (
        <Table.ScrollContainer minWidth={760}>
          <Table striped>
            <Table.Thead>
              <Table.Tr>
                <Table.Th>Prefix</Table.Th>
                <Table.Th>Name</Table.Th>
                <Table.Th>Kind</Table.Th>
                <Table.Th>Role</Table.Th>
                <Table.Th>Created</Table.Th>
                <Table.Th>Last used</Table.Th>
                <Table.Th>
                  <VisuallyHidden>Actions</VisuallyHidden>
                </Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {live.map((k) => (
                <Table.Tr key={k.id}>
                  <Table.Td>
                    <Code>{k.prefix}…</Code>
                  </Table.Td>
                  <Table.Td>{k.name}</Table.Td>
                  <Table.Td>
                    <Badge variant="outline" color={k.kind === 'publishable' ? 'teal' : 'gray'}>
                      {k.kind}
                    </Badge>
                    {k.allowed_origins.map((origin) => (
                      <Text key={origin} size="xs">
                        {origin}
                      </Text>
                    ))}
                  </Table.Td>
                  <Table.Td>
                    <Badge variant="light">{k.role}</Badge>
                  </Table.Td>
                  <Table.Td>{formatTime(k.created_at)}</Table.Td>
                  <Table.Td>{formatTime(k.last_used_at)}</Table.Td>
                  <Table.Td>
                    <Button
                      size="xs"
                      color="red"
                      variant="subtle"
                      onClick={() => setRevoking(k)}
                      aria-label={`Revoke ${k.name}`}
                    >
                      Revoke
                    </Button>
                  </Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        </Table.ScrollContainer>
      )}
      <NewKeyModal opened={creating} onClose={() => setCreating(false)} maxRole={can('owner') ? 'admin' : 'member'} />
      <Modal opened={revoking !== null} onClose={() => setRevoking(null)} title="Revoke API key?">
        <Stack>
          <Text>
            Requests with <Code>{revoking?.prefix}…</Code> ({revoking?.name}) will be refused at once. This cannot be
            undone.
          </Text>
          <ErrorNotice error={revoke.error} />
          <Group justify="flex-end">
            <Button variant="default" onClick={() => setRevoking(null)}>
              Cancel
            </Button>
            <Button color="red" loading={revoke.isPending} onClick={() => revoking && revoke.mutate(revoking)}>
              Revoke key
            </Button>
          </Group>
        </Stack>
      </Modal>
    </>
  );
}

const ROLES = ['viewer', 'member', 'admin'];

function NewKeyModal({ opened, onClose, maxRole }: { opened: boolean; onClose: () => void; maxRole: string }) {
  const client = useQueryClient();
  const [name, setName] = useState('');
  const [role, setRole] = useState('member');
  const [kind, setKind] = useState('secret');
  const [originsText, setOriginsText] = useState('');
  const origins = originsText
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean);
  const create = useMutation({
    mutationFn: () =>
      api.post<ApiKeyCreated>(
        '/api/keys/',
        // A publishable key's role is always member: the API sets it.
        kind === 'publishable' ? { name, kind, allowed_origins: origins } : { name, role },
      ),
    onSuccess: () => void client.invalidateQueries({ queryKey: ['api-keys'] }),
  });
  const close = () => {
    create.reset();
    setName('');
    setRole('member');
    setKind('secret');
    setOriginsText('');
    onClose();
  };
  const fields = create.error instanceof ApiError ? create.error.fieldErrors : {};
  // `/allowed_origins/1` is the second origin sent: named by its text. A missing one is the body's ('').
  const originErrors = Object.entries(fields).flatMap(([pointer, message]) => {
    const index = /^\/allowed_origins(?:\/(\d+))?$/.exec(pointer);
    if (index) return [index[1] === undefined ? message : `${origins[Number(index[1])]}: ${message}`];
    return pointer === '' && kind === 'publishable' ? [message] : [];
  });
  return (
    <Modal opened={opened} onClose={close} title={create.data ? 'Your new API key' : 'New API key'}>
      {create.data ? (
        <Stack>
          <Alert color="red" title="Copy it now">
            This key is shown only once. Store it somewhere safe: you will not be able to see it again.
          </Alert>
          <Code block data-testid="new-api-key">
            {create.data.key}
          </Code>
          <Group justify="space-between">
            <CopyButton value={create.data.key}>
              {({ copied, copy }) => (
                <Button variant="light" onClick={copy}>
                  {copied ? 'Copied' : 'Copy key'}
                </Button>
              )}
            </CopyButton>
            <Button onClick={close}>Done</Button>
          </Group>
        </Stack>
      ) : (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            create.mutate();
          }}
        >
          <Stack>
            <TextInput
              label="Name"
              required
              data-autofocus
              value={name}
              onChange={(e) => setName(e.currentTarget.value)}
              error={fields['/name']}
            />
            <Radio.Group label="Kind" value={kind} onChange={setKind} error={fields['/kind']}>
              <Stack gap="xs" mt={4}>
                <Radio
                  value="secret"
                  label="Secret"
                  description="sk_live_: for servers and SDKs; never in a web page"
                />
                <Radio
                  value="publishable"
                  label="Publishable"
                  description="pk_live_: for web pages; only sends events, only from the origins below"
                />
              </Stack>
            </Radio.Group>
            {kind === 'publishable' ? (
              <Textarea
                label="Allowed origins"
                description="One per line, as the browser sends it: https://www.example.com"
                required
                autosize
                minRows={2}
                value={originsText}
                onChange={(e) => setOriginsText(e.currentTarget.value)}
                error={originErrors.length > 0 ? originErrors.join('; ') : undefined}
              />
            ) : (
              <Select
                label="Role"
                data={ROLES.slice(0, ROLES.indexOf(maxRole) + 1)}
                value={role}
                onChange={(v) => v && setRole(v)}
                allowDeselect={false}
                error={fields['/role']}
                comboboxProps={{ withinPortal: false }}
              />
            )}
            {Object.keys(fields).length === 0 && <ErrorNotice error={create.error} />}
            <Button type="submit" loading={create.isPending}>
              Create key
            </Button>
          </Stack>
        </form>
      )}
    </Modal>
  );
}
