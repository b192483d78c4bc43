// Settings → Team: members and roles, invitations (email + role), role changes, removal.
import {
  Badge,
  Button,
  Group,
  Modal,
  Paper,
  Select,
  Stack,
  Table,
  Text,
  TextInput,
  Title,
  VisuallyHidden,
} from '@mantine/core';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { api, ApiError } from '../../api/client';
import type { InvitationList, TeamMember } from '../../api/types';
import { Empty, ErrorNotice, formatTime, Loading, PageHeader } from '../../app/feedback';
import { useWorkspace } from '../../app/session';
import { AdminOnly } from './AdminOnly';

export default function Team() {
  return (
    <AdminOnly title="Team">
      <TeamPage />
    </AdminOnly>
  );
}

function TeamPage() {
  const { tenant, can } = useWorkspace();
  const base = `/api/tenants/${tenant?.id}`;
  const client = useQueryClient();
  const roles = can('owner') ? ['viewer', 'member', 'admin', 'owner'] : ['viewer', 'member'];
  const members = useQuery({
    queryKey: ['members', 'team', tenant?.id],
    queryFn: () => api.get<{ results: TeamMember[] }>(`${base}/members/`),
  });
  const invitations = useQuery({
    queryKey: ['invitations', tenant?.id],
    queryFn: () => api.get<InvitationList>(`${base}/invitations/`),
  });
  const refresh = () => {
    void client.invalidateQueries({ queryKey: ['members', 'team'] });
    void client.invalidateQueries({ queryKey: ['invitations'] });
  };
  const changeRole = useMutation({
    mutationFn: ({ userId, role }: { userId: number; role: string }) =>
      api.patch(`${base}/members/${userId}/`, { role }),
    onSuccess: refresh,
  });
  const [removing, setRemoving] = useState<TeamMember | null>(null);
  const remove = useMutation({
    mutationFn: (userId: number) => api.delete(`${base}/members/${userId}/`),
    onSuccess: () => {
      setRemoving(null);
      refresh();
    },
  });
  const revokeInvite = useMutation({
    mutationFn: (id: number) => api.delete(`${base}/invitations/${id}/`),
    onSuccess: refresh,
  });
  const pending = invitations.data?.results ?? [];
  // Pending invitations are also listed as members without an account; they show once, below, revocable.
  const joined = (members.data?.results ?? []).filter((m) => m.user_id !== null);
  return (
    <>
      <PageHeader title="Team" />
      <Stack>
        <InviteForm base={base} roles={roles} onInvited={refresh} />
        <ErrorNotice error={members.error ?? changeRole.error} />
        {members.isPending ? (
          <Loading />
        ) : joined.length === 0 ? (
          <Empty>No members.</Empty>
        ) : (
          <Table.ScrollContainer minWidth={600}>
            <Table striped>
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>Email</Table.Th>
                  <Table.Th>Role</Table.Th>
                  <Table.Th>Status</Table.Th>
                  <Table.Th>
                    <VisuallyHidden>Actions</VisuallyHidden>
                  </Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {joined.map((m) => {
                  const manageable = m.user_id !== null && (can('owner') || (m.role !== 'owner' && m.role !== 'admin'));
                  return (
                    <Table.Tr key={m.email}>
                      <Table.Td>{m.email}</Table.Td>
                      <Table.Td>
                        {manageable ? (
                          <Select
                            aria-label={`Role of ${m.email}`}
                            size="xs"
                            w={120}
                            data={roles}
                            value={m.role}
                            allowDeselect={false}
                            onChange={(role) =>
                              role && m.user_id !== null && changeRole.mutate({ userId: m.user_id, role })
                            }
                          />
                        ) : (
                          <Badge variant="light">{m.role}</Badge>
                        )}
                      </Table.Td>
                      <Table.Td>{m.status}</Table.Td>
                      <Table.Td>
                        {manageable && (
                          <Button
                            size="xs"
                            variant="subtle"
                            color="red"
                            onClick={() => setRemoving(m)}
                            aria-label={`Remove ${m.email}`}
                          >
                            Remove
                          </Button>
                        )}
                      </Table.Td>
                    </Table.Tr>
                  );
                })}
              </Table.Tbody>
            </Table>
          </Table.ScrollContainer>
        )}
        {pending.length > 0 && (
          <Paper withBorder p="sm" component="section" aria-labelledby="pending-invitations">
            <Title order={2} size="h4" mb="xs" id="pending-invitations">
              Pending invitations
            </Title>
            <Table.ScrollContainer minWidth={560}>
              <Table>
                <Table.Tbody>
                  {pending.map((i) => (
                    <Table.Tr key={i.id}>
                      <Table.Td>{i.email}</Table.Td>
                      <Table.Td>{i.role}</Table.Td>
                      <Table.Td>expires {formatTime(i.expires_at)}</Table.Td>
                      <Table.Td>
                        <Button
                          size="xs"
                          variant="subtle"
                          color="red"
                          onClick={() => revokeInvite.mutate(i.id)}
                          aria-label={`Revoke invitation of ${i.email}`}
                        >
                          Revoke
                        </Button>
                      </Table.Td>
                    </Table.Tr>
                  ))}
                </Table.Tbody>
              </Table>
            </Table.ScrollContainer>
          </Paper>
        )}
      </Stack>
      <Modal opened={removing !== null} onClose={() => setRemoving(null)} title="Remove member?">
        <Stack>
          <Text>{removing?.email} will lose access to this tenant.</Text>
          <ErrorNotice error={remove.error} />
          <Group justify="flex-end">
            <Button variant="default" onClick={() => setRemoving(null)}>
              Cancel
            </Button>
            <Button
              color="red"
              loading={remove.isPending}
              onClick={() => removing?.user_id != null && remove.mutate(removing.user_id)}
            >
              Remove
            </Button>
          </Group>
        </Stack>
      </Modal>
    </>
  );
}

function InviteForm({ base, roles, onInvited }: { base: string; roles: string[]; onInvited: () => void }) {
  const [email, setEmail] = useState('');
  const [role, setRole] = useState('member');
  const invite = useMutation({
    mutationFn: () => api.post(`${base}/members/`, { email, role }),
    onSuccess: () => {
      setEmail('');
      onInvited();
    },
  });
  const fields = invite.error instanceof ApiError ? invite.error.fieldErrors : {};
  return (
    <Paper withBorder p="sm">
      <form
        onSubmit={(e) => {
          e.preventDefault();
          invite.mutate();
        }}
      >
        <Group align="flex-end" wrap="wrap">
          <TextInput
            label="Invite by email"
            type="email"
            required
            value={email}
            onChange={(e) => setEmail(e.currentTarget.value)}
            error={fields['/email']}
            w={260}
          />
          <Select
            label="Role"
            data={roles}
            value={role}
            onChange={(v) => v && setRole(v)}
            allowDeselect={false}
            error={fields['/role']}
            w={140}
          />
          <Button type="submit" loading={invite.isPending}>
            Invite
          </Button>
        </Group>
      </form>
      {Object.keys(fields).length === 0 && <ErrorNotice error={invite.error} />}
      {invite.isSuccess && (
        <Text size="sm" mt="xs" role="status">
          Invitation sent.
        </Text>
      )}
    </Paper>
  );
}
