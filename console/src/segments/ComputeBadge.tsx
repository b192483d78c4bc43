import { Badge } from '@mantine/core';

const COLORS: Record<string, string> = { queued: 'orange', running: 'blue', succeeded: 'green', failed: 'red' };

export function ComputeBadge({ status }: { status: string | null }) {
  if (!status) return <>never</>;
  return (
    <Badge color={COLORS[status] ?? 'gray'} variant="dot" data-testid="compute-status">
      {status}
    </Badge>
  );
}
