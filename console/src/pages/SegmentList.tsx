import { Anchor, Badge, Button, Group, Select, Table, Text } from '@mantine/core';
import { useInfiniteQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { Link } from 'react-router';
import { api } from '../api/client';
import type { SegmentList as SegmentPage } from '../api/types';
import { Empty, ErrorNotice, formatTime, Loading, PageHeader } from '../app/feedback';
import { useWorkspace } from '../app/session';
import { ComputeBadge } from '../segments/ComputeBadge';

export default function SegmentList() {
  const { can, tenant } = useWorkspace();
  const [type, setType] = useState<string | null>(null);
  const segments = useInfiniteQuery({
    queryKey: ['segments', tenant?.id, type],
    queryFn: ({ pageParam }) =>
      api.get<SegmentPage>('/api/segments/', { limit: 50, cursor: pageParam, segment_type: type }),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.next_cursor,
    // Compute statuses move on their own: refresh while any is queued or running.
    refetchInterval: (query) =>
      query.state.data?.pages.some((p) =>
        p.results.some((s) => s.compute_status === 'queued' || s.compute_status === 'running'),
      )
        ? 2000
        : false,
  });
  const rows = segments.data?.pages.flatMap((p) => p.results) ?? [];
  return (
    <>
      <PageHeader
        title="Segments"
        actions={
          can('member') && (
            <Button component={Link} to="/segments/new">
              New Segment
            </Button>
          )
        }
      />
      <Group mb="sm">
        <Select
          label="Type"
          placeholder="All types"
          clearable
          data={['rule', 'ai', 'lookalike']}
          value={type}
          onChange={setType}
          w={180}
        />
      </Group>
      <ErrorNotice error={segments.error} />
      {segments.isPending ? (
        <Loading />
      ) : rows.length === 0 ? (
        <Empty>No segments yet.{can('member') && ' Create one with New Segment.'}</Empty>
      ) : (
        <Table.ScrollContainer minWidth={720}>
          <Table striped highlightOnHover>
            <Table.Thead>
              <Table.Tr>
                <Table.Th>Name</Table.Th>
                <Table.Th>Type</Table.Th>
                <Table.Th>Active</Table.Th>
                <Table.Th>Members</Table.Th>
                <Table.Th>Last computed</Table.Th>
                <Table.Th>Compute</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {rows.map((s) => (
                <Table.Tr key={s.id}>
                  <Table.Td>
                    <Anchor component={Link} to={`/segments/${s.id}`}>
                      {s.name}
                    </Anchor>
                  </Table.Td>
                  <Table.Td>{s.segment_type}</Table.Td>
                  <Table.Td>
                    <Badge color={s.active ? 'green' : 'gray'} variant="dot">
                      {s.active ? 'active' : 'inactive'}
                    </Badge>
                  </Table.Td>
                  <Table.Td>{s.member_count ?? '—'}</Table.Td>
                  <Table.Td>{formatTime(s.last_computed_at)}</Table.Td>
                  <Table.Td>
                    <ComputeBadge status={s.compute_status ?? null} />
                  </Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        </Table.ScrollContainer>
      )}
      {segments.hasNextPage && (
        <Button
          variant="default"
          mt="sm"
          loading={segments.isFetchingNextPage}
          onClick={() => void segments.fetchNextPage()}
        >
          Load more
        </Button>
      )}
      {rows.length > 0 && (
        <Text size="xs" c="dimmed" mt="xs">
          {rows.length} shown
        </Text>
      )}
    </>
  );
}
