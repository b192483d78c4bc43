// Event types and property paths for the builder's autocomplete, from the tenant's own events.
import { useQuery } from '@tanstack/react-query';
import { api } from '../api/client';
import type { IngestionStats, PropertyKeys } from '../api/types';
import { useWorkspace } from '../app/session';
import type { Suggestions } from './RuleBuilder';

export function useSuggestions(): Suggestions {
  const { tenant } = useWorkspace();
  const stats = useQuery({
    queryKey: ['ingestion-stats', tenant?.id, '7d'],
    queryFn: () => api.get<IngestionStats>('/api/ingestion/stats/', { window: '7d' }),
    staleTime: 60_000,
  });
  const keys = useQuery({
    queryKey: ['property-keys', tenant?.id],
    queryFn: () => api.get<PropertyKeys>('/api/ingestion/properties/'),
    staleTime: 60_000,
    retry: false,
  });
  const eventTypes = stats.data?.event_types.map((e) => e.event_type) ?? [];
  const byEvent = new Map((keys.data?.results ?? []).map((r) => [r.event_type, r.properties]));
  return {
    eventTypes,
    // User properties are the traits of `context_identified` events (docs/segments.md).
    properties: (eventType) => byEvent.get(eventType ?? 'context_identified') ?? [],
  };
}
