// Ingestion at a glance: health of the bus, its worker and ClickHouse; volume over a window with the
// event types; the latest refused events.
import { BarChart } from '@mantine/charts';
import '@mantine/charts/styles.css';
import { Badge, Group, Paper, SegmentedControl, SimpleGrid, Stack, Table, Text, Title } from '@mantine/core';
import { useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { api, ApiError } from '../api/client';
import type { Health, IngestionErrors, IngestionStats } from '../api/types';
import { Empty, ErrorNotice, formatTime, Loading, PageHeader } from '../app/feedback';
import { useWorkspace } from '../app/session';

const WINDOWS = ['24h', '7d', '30d'] as const;

export default function Events() {
  const [window, setWindow] = useState<(typeof WINDOWS)[number]>('24h');
  const { tenant } = useWorkspace();
  const health = useQuery({
    queryKey: ['health', tenant?.id],
    queryFn: () => api.get<Health>('/api/ingestion/health/'),
    refetchInterval: 15_000,
    // 503 carries the same body with the failing part named: show it rather than a bare error.
    retry: false,
  });
  const stats = useQuery({
    queryKey: ['ingestion-stats', tenant?.id, window],
    queryFn: () => api.get<IngestionStats>('/api/ingestion/stats/', { window }),
  });
  const errors = useQuery({
    queryKey: ['ingestion-errors', tenant?.id],
    queryFn: () => api.get<IngestionErrors>('/api/ingestion/errors/', { limit: 20 }),
  });
  const degraded =
    health.error instanceof ApiError && health.error.status === 503 ? (health.error.body as Health | null) : null;
  const healthState = health.data ?? (degraded && 'worker' in degraded ? degraded : null);
  const hourly = window === '24h';
  const points = (stats.data?.timeseries ?? []).map((b) => ({
    time: new Date(b.bucket).toLocaleString(
      undefined,
      hourly ? { hour: '2-digit', minute: '2-digit' } : { month: 'short', day: 'numeric' },
    ),
    events: b.event_count,
    users: b.unique_users,
  }));
  return (
    <>
      <PageHeader title="Events" />
      <Stack>
        <Paper withBorder p="sm">
          <Title order={2} size="h4" mb="xs">
            Health
          </Title>
          {health.isPending ? (
            <Loading />
          ) : healthState ? (
            <Group>
              <HealthBadge label="Bus" value={healthState.pubsub_topic} />
              <HealthBadge label="Worker" value={healthState.worker} />
              <HealthBadge label="ClickHouse" value={healthState.clickhouse} />
            </Group>
          ) : (
            <ErrorNotice error={health.error} />
          )}
        </Paper>
        <Paper withBorder p="sm">
          <Group justify="space-between" mb="sm">
            <Title order={2} size="h4">
              Volume
            </Title>
            <SegmentedControl
              aria-label="Window"
              data={[...WINDOWS]}
              value={window}
              onChange={(v) => setWindow(v as (typeof WINDOWS)[number])}
            />
          </Group>
          <ErrorNotice error={stats.error} />
          {stats.isPending ? (
            <Loading />
          ) : stats.data ? (
            <Stack>
              <SimpleGrid cols={2} maw={400}>
                <div>
                  <Text size="xs" c="dimmed">
                    Events
                  </Text>
                  <Text fw={700} size="xl" data-testid="total-events">
                    {stats.data.total_events}
                  </Text>
                </div>
                <div>
                  <Text size="xs" c="dimmed">
                    Unique users
                  </Text>
                  <Text fw={700} size="xl">
                    {stats.data.unique_users}
                  </Text>
                </div>
              </SimpleGrid>
              {points.length === 0 ? (
                <Empty>No events in this window.</Empty>
              ) : (
                <div role="img" aria-label={`Events and unique users per ${hourly ? 'hour' : 'day'}`}>
                  <BarChart
                    h={220}
                    data={points}
                    dataKey="time"
                    series={[
                      { name: 'events', label: 'Events', color: 'indigo.7' },
                      { name: 'users', label: 'Unique users', color: 'teal.7' },
                    ]}
                    withLegend
                    barProps={{ isAnimationActive: false }}
                  />
                </div>
              )}
              <Table striped>
                <Table.Thead>
                  <Table.Tr>
                    <Table.Th>Event type</Table.Th>
                    <Table.Th>Count</Table.Th>
                  </Table.Tr>
                </Table.Thead>
                <Table.Tbody>
                  {stats.data.event_types.map((e) => (
                    <Table.Tr key={e.event_type}>
                      <Table.Td>{e.event_type}</Table.Td>
                      <Table.Td>{e.count}</Table.Td>
                    </Table.Tr>
                  ))}
                </Table.Tbody>
              </Table>
            </Stack>
          ) : null}
        </Paper>
        <Paper withBorder p="sm">
          <Title order={2} size="h4" mb="xs">
            Recent errors
          </Title>
          <ErrorNotice error={errors.error} />
          {errors.isPending ? (
            <Loading />
          ) : (errors.data?.results ?? []).length === 0 ? (
            <Empty>No refused events.</Empty>
          ) : (
            <Table.ScrollContainer minWidth={600}>
              <Table>
                <Table.Thead>
                  <Table.Tr>
                    <Table.Th>Type</Table.Th>
                    <Table.Th>Detail</Table.Th>
                    <Table.Th>Time</Table.Th>
                  </Table.Tr>
                </Table.Thead>
                <Table.Tbody>
                  {(errors.data?.results ?? []).map((e, i) => (
                    <Table.Tr key={i}>
                      <Table.Td>{e.error_type}</Table.Td>
                      <Table.Td>{e.detail}</Table.Td>
                      <Table.Td>{formatTime(e.ts)}</Table.Td>
                    </Table.Tr>
                  ))}
                </Table.Tbody>
              </Table>
            </Table.ScrollContainer>
          )}
        </Paper>
      </Stack>
    </>
  );
}

function HealthBadge({ label, value }: { label: string; value: string }) {
  const ok = value === 'ok';
  return (
    <Badge color={ok ? 'green' : 'red'} variant="dot" size="lg">
      {label}: {value}
    </Badge>
  );
}
