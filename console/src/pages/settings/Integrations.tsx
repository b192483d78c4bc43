// Settings → Integrations: the Shopify webhook secret (write-only) and the URL to paste into Shopify.
import { Badge, Button, Code, CopyButton, Group, Paper, PasswordInput, Stack, Text, Title } from '@mantine/core';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { api, ApiError } from '../../api/client';
import type { ShopifyIntegration } from '../../api/types';
import { ErrorNotice, formatTime, Loading, PageHeader } from '../../app/feedback';
import { useWorkspace } from '../../app/session';
import { AdminOnly } from './AdminOnly';

export default function Integrations() {
  return (
    <AdminOnly title="Integrations">
      <Shopify />
    </AdminOnly>
  );
}

function Shopify() {
  const { tenant } = useWorkspace();
  const path = `/api/tenants/${tenant?.id}/integrations/shopify/`;
  const client = useQueryClient();
  const shopify = useQuery({ queryKey: ['shopify', tenant?.id], queryFn: () => api.get<ShopifyIntegration>(path) });
  const [secret, setSecret] = useState('');
  const save = useMutation({
    mutationFn: () => api.put<ShopifyIntegration>(path, { secret }),
    onSuccess: (data) => {
      setSecret('');
      client.setQueryData(['shopify', tenant?.id], data);
    },
  });
  const remove = useMutation({ mutationFn: () => api.delete(path), onSuccess: () => void shopify.refetch() });
  const fields = save.error instanceof ApiError ? save.error.fieldErrors : {};
  const url = shopify.data ? `${window.location.origin}${shopify.data.webhook_path}` : '';
  return (
    <>
      <PageHeader title="Integrations" />
      <Paper withBorder p="md" maw={720}>
        <Title order={2} size="h4" mb="sm">
          Shopify
        </Title>
        {shopify.isPending ? (
          <Loading />
        ) : shopify.isError ? (
          <ErrorNotice error={shopify.error} />
        ) : (
          <Stack>
            <div>
              <Text size="sm" fw={500}>
                Webhook URL (paste into Shopify → Settings → Notifications → Webhooks)
              </Text>
              <Group gap="xs" wrap="wrap">
                <Code style={{ overflowWrap: 'anywhere', flex: '1 1 16rem' }}>{url}</Code>
                <CopyButton value={url}>
                  {({ copied, copy }) => (
                    <Button size="xs" variant="light" onClick={copy}>
                      {copied ? 'Copied' : 'Copy'}
                    </Button>
                  )}
                </CopyButton>
              </Group>
            </div>
            <Group gap="xs">
              <Text size="sm">Secret:</Text>
              <Badge color={shopify.data.secret_set ? 'green' : 'gray'} variant="dot">
                {shopify.data.secret_set ? `set ${formatTime(shopify.data.updated_at)}` : 'not set'}
              </Badge>
            </Group>
            <form
              onSubmit={(e) => {
                e.preventDefault();
                save.mutate();
              }}
            >
              <Group align="flex-end" wrap="wrap">
                <PasswordInput
                  label={shopify.data.secret_set ? 'Replace the API secret key' : 'Shopify app API secret key'}
                  description="Write-only: it is never shown again"
                  autoComplete="off"
                  required
                  value={secret}
                  onChange={(e) => setSecret(e.currentTarget.value)}
                  error={fields['/secret']}
                  w={320}
                />
                <Button type="submit" loading={save.isPending}>
                  Save secret
                </Button>
                {shopify.data.secret_set && (
                  <Button variant="subtle" color="red" loading={remove.isPending} onClick={() => remove.mutate()}>
                    Disconnect
                  </Button>
                )}
              </Group>
            </form>
            {Object.keys(fields).length === 0 && <ErrorNotice error={save.error ?? remove.error} />}
          </Stack>
        )}
      </Paper>
    </>
  );
}
