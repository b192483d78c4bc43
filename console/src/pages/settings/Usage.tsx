// Settings → Usage: the tenant's billable units over the last day (per hour) or month (per day), a chart
// of API calls and events, the breakdown per function, source or mode, and the same period as CSV.
import { BarChart } from '@mantine/charts';
import '@mantine/charts/styles.css';
import { Button, Paper, SegmentedControl, SimpleGrid, Stack, Table, Text, Title } from '@mantine/core';
import { useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { api, download } from '../../api/client';
import type { Usage as UsageReport } from '../../api/types';
import { Empty, ErrorNotice, Loading, PageHeader } from '../../app/feedback';
import { useWorkspace } from '../../app/session';
import { AdminOnly } from './AdminOnly';

const PERIODS = [
  { value: 'hour', label: 'Last 24 hours' },
  { value: 'day', label: 'Last 30 days' },
] as const;
type Granularity = (typeof PERIODS)[number]['value'];

const LABELS: Record<string, string> = {
  api_calls: 'API calls',
  events_accepted: 'Events accepted',
  events_refused: 'Events refused',
  events_stored: 'Events stored',
  computes: 'Computes',
  compute_rows_read: 'Compute rows read',
  compute_bytes_read: 'Compute bytes read',
  compute_cpu_us: 'Compute CPU (µs)',
  compute_elapsed_us: 'Compute time (µs)',
  exports: 'Exports',
  export_rows: 'Export rows',
  export_bytes: 'Export bytes',
  connector_syncs: 'Connector syncs',
  connector_users_pushed: 'Users pushed to connectors',
  sandbox_calls: 'Sandbox calls',
  ai_drafts: 'AI drafts',
};
const CHARTED = ['api_calls', 'events_accepted', 'events_stored'] as const;

export default function Usage() {
  return (
    <AdminOnly title="Usage">
      <UsagePage />
    </AdminOnly>
  );
}

function UsagePage() {
  const { tenant } = useWorkspace();
  const [granularity, setGranularity] = useState<Granularity>('hour');
  const usage = useQuery({
    queryKey: ['usage', tenant?.id, granularity],
    queryFn: () => api.get<UsageReport>('/api/usage/', { granularity }),
  });
  const [downloadError, setDownloadError] = useState<unknown>(null);
  const report = usage.data;
  const hourly = granularity === 'hour';
  const points = (report?.timeseries ?? []).map((bucket) => ({
    time: new Date(bucket.start).toLocaleString(
      undefined,
      hourly ? { hour: '2-digit', minute: '2-digit' } : { month: 'short', day: 'numeric' },
    ),
    ...Object.fromEntries(CHARTED.map((metric) => [metric, bucket.values[metric] ?? 0])),
  }));
  const saveCsv = async () => {
    if (!report) return;
    setDownloadError(null);
    const query = new URLSearchParams({ from: report.start, to: report.end, granularity, format: 'csv' });
    try {
      await download(`/api/usage/?${query}`, `usage-${granularity}.csv`);
    } catch (error) {
      setDownloadError(error);
    }
  };
  return (
    <>
      <PageHeader
        title="Usage"
        actions={
          <Button variant="default" onClick={saveCsv} disabled={!report}>
            Download CSV
          </Button>
        }
      >
        <Text size="sm" c="dimmed">
          Billable units of this tenant, counted once each (a call answered, an event stored, a compute, an export, a
          connector sync).
        </Text>
      </PageHeader>
      <Stack>
        <ErrorNotice error={downloadError} />
        <SegmentedControl
          aria-label="Period"
          data={PERIODS.map((p) => ({ ...p }))}
          value={granularity}
          onChange={(v) => setGranularity(v as Granularity)}
          maw={360}
        />
        <ErrorNotice error={usage.error} />
        {usage.isPending ? (
          <Loading />
        ) : report ? (
          <>
            <Paper withBorder p="sm">
              <Title order={2} size="h4" mb="xs">
                Totals
              </Title>
              <SimpleGrid cols={{ base: 2, sm: 4 }}>
                {Object.entries(LABELS).map(([metric, label]) => (
                  <div key={metric}>
                    <Text size="xs" c="dimmed">
                      {label}
                    </Text>
                    <Text fw={700} size="lg" data-testid={`usage-${metric}`}>
                      {(report.totals[metric] ?? 0).toLocaleString()}
                    </Text>
                  </div>
                ))}
              </SimpleGrid>
            </Paper>
            <Paper withBorder p="sm">
              <Title order={2} size="h4" mb="xs">
                Per {hourly ? 'hour' : 'day'}
              </Title>
              {points.length === 0 ? (
                <Empty>No usage in this period.</Empty>
              ) : (
                <div role="img" aria-label={`API calls and events per ${hourly ? 'hour' : 'day'}`}>
                  <BarChart
                    h={220}
                    data={points}
                    dataKey="time"
                    series={[
                      { name: 'api_calls', label: LABELS.api_calls, color: 'indigo.7' },
                      { name: 'events_accepted', label: LABELS.events_accepted, color: 'teal.7' },
                      { name: 'events_stored', label: LABELS.events_stored, color: 'orange.8' },
                    ]}
                    withLegend
                    barProps={{ isAnimationActive: false }}
                  />
                </div>
              )}
            </Paper>
            <Paper withBorder p="sm">
              <Title order={2} size="h4" mb="xs">
                Breakdown
              </Title>
              {report.breakdown.length === 0 ? (
                <Empty>Nothing counted yet.</Empty>
              ) : (
                <Table striped>
                  <Table.Thead>
                    <Table.Tr>
                      <Table.Th>Unit</Table.Th>
                      <Table.Th>Function, source or mode</Table.Th>
                      <Table.Th>Count</Table.Th>
                    </Table.Tr>
                  </Table.Thead>
                  <Table.Tbody>
                    {report.breakdown.map((row) => (
                      <Table.Tr key={`${row.metric}|${row.dimension}`}>
                        <Table.Td>{LABELS[row.metric] ?? row.metric}</Table.Td>
                        <Table.Td>{row.dimension || '—'}</Table.Td>
                        <Table.Td>{row.value.toLocaleString()}</Table.Td>
                      </Table.Tr>
                    ))}
                  </Table.Tbody>
                </Table>
              )}
            </Paper>
          </>
        ) : null}
      </Stack>
    </>
  );
}
