import { Text } from '@mantine/core';
import type { ReactNode } from 'react';
import { PageHeader } from '../../app/feedback';
import { useWorkspace } from '../../app/session';

/** Settings pages manage the tenant: admins and owners only (the API refuses the others too). */
export function AdminOnly({ title, children }: { title: string; children: ReactNode }) {
  const { can } = useWorkspace();
  if (can('admin')) return <>{children}</>;
  return (
    <>
      <PageHeader title={title} />
      <Text>Only admins and owners of this tenant can see {title}.</Text>
    </>
  );
}
