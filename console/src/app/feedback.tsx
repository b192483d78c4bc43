// Loading, empty and error states, the same on every page.
import { Alert, Anchor, Center, Loader, Text, Title, Group, Stack } from '@mantine/core';
import type { ReactNode } from 'react';
import { useRouteError } from 'react-router';
import { ApiError } from '../api/client';

export function Loading({ label = 'Loading' }: { label?: string }) {
  return (
    <Center py="xl">
      <Loader aria-label={label} />
    </Center>
  );
}

export function ErrorNotice({ error }: { error: unknown }) {
  if (!error) return null;
  const message = error instanceof ApiError || error instanceof Error ? error.message : String(error);
  return (
    <Alert color="red" title="Something went wrong" role="alert">
      {message}
    </Alert>
  );
}

/** A route's error boundary: what a page that threw shows instead of itself. */
export function RouteError() {
  return (
    <Stack p="md" maw={700}>
      <ErrorNotice error={useRouteError()} />
      <Text>
        This page stopped working. <Anchor href={window.location.pathname}>Reload it</Anchor> or go to{' '}
        <Anchor href="/segments">Segments</Anchor>.
      </Text>
    </Stack>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return (
    <Text c="dimmed" py="lg" ta="center">
      {children}
    </Text>
  );
}

export function PageHeader({ title, actions, children }: { title: string; actions?: ReactNode; children?: ReactNode }) {
  return (
    <Stack gap={4} mb="md">
      <Group justify="space-between" wrap="wrap">
        <Title order={1} size="h2">
          {title}
        </Title>
        {actions}
      </Group>
      {children}
    </Stack>
  );
}

export function formatTime(value: string | null | undefined): string {
  return value ? new Date(value).toLocaleString() : '—';
}
