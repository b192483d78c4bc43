// Settings → Plan: the tenant's quotas and rate limits, read-only (operators set them), and how much
// of this month's events quota is used.
import { Badge, Group, Paper, Progress, Table, Text, Title } from '@mantine/core';
import { useQuery } from '@tanstack/react-query';
import { api } from '../../api/client';
import type { Plan as PlanShape } from '../../api/types';
import { ErrorNotice, formatTime, Loading, PageHeader } from '../../app/feedback';
import { useWorkspace } from '../../app/session';
import { AdminOnly } from './AdminOnly';

export default function Plan() {
  return (
    <AdminOnly title="Plan">
      <PlanLimits />
    </AdminOnly>
  );
}

const number = new Intl.NumberFormat();

function PlanLimits() {
  const { tenant } = useWorkspace();
  const plan = useQuery({
    queryKey: ['plan', tenant?.id],
    queryFn: () => api.get<PlanShape>(`/api/tenants/${tenant?.id}/plan/`),
  });
  if (plan.isPending) return <Loading />;
  if (plan.isError) return <ErrorNotice error={plan.error} />;
  const p = plan.data;
  const counted = p.events_this_month;
  const used =
    counted === null ? 0 : p.events_per_month > 0 ? Math.min(100, (counted / p.events_per_month) * 100) : 100;
  const rows: [string, string][] = [
    ['Events per month (UTC calendar month)', number.format(p.events_per_month)],
    ['API calls per minute, whole tenant', number.format(p.api_calls_per_minute)],
    ['API calls per minute, each API key', number.format(p.api_calls_per_minute_per_key)],
    ['Active segments', number.format(p.active_segments)],
    ['Connectors', number.format(p.connectors)],
  ];
  return (
    <>
      <PageHeader title="Plan">
        <Group gap="xs">
          <Badge variant="light">{p.name}</Badge>
          {p.updated_at && <Text size="sm">set {formatTime(p.updated_at)}</Text>}
        </Group>
      </PageHeader>
      <Paper withBorder p="md" maw={720}>
        <Title order={2} size="h4" mb="xs">
          Events this month
        </Title>
        <Text size="sm" mb="xs">
          {counted === null
            ? `The count is unavailable right now (its cache is unreachable); the quota is ${number.format(p.events_per_month)}.`
            : `${number.format(counted)} of ${number.format(p.events_per_month)};`}{' '}
          past the quota, ingestion answers 429 <code>quota_exceeded</code> until the month ends.
        </Text>
        <Progress value={used} color={used >= 90 ? 'red' : 'blue'} aria-label="Events quota used" mb="md" />
        <Title order={2} size="h4" mb="xs">
          Limits
        </Title>
        <Table>
          <Table.Tbody>
            {rows.map(([label, value]) => (
              <Table.Tr key={label}>
                <Table.Th scope="row">{label}</Table.Th>
                <Table.Td>{value}</Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
        <Text size="sm" mt="md" c="dimmed">
          Set by the operator of this SegOps installation. Over a rate, the API answers 429 with Retry-After.
        </Text>
      </Paper>
    </>
  );
}
