// Who is signed in, in which tenant, with which role; shared by every page.
import { useQuery } from '@tanstack/react-query';
import { useCallback, useSyncExternalStore } from 'react';
import { api, request, session, type Tokens } from '../api/client';
import { atLeast, type Role, type Tenant } from '../api/types';

export function useSignedIn(): boolean {
  return useSyncExternalStore(
    (l) => session.subscribe(l),
    () => session.signedIn,
  );
}

export function useTenantId(): number | null {
  return useSyncExternalStore(
    (l) => session.subscribe(l),
    () => session.tenantId,
  );
}

export function useTenants() {
  const signedIn = useSignedIn();
  return useQuery({
    queryKey: ['tenants'],
    queryFn: () => api.get<{ results: Tenant[] }>('/api/tenants/'),
    enabled: signedIn,
    staleTime: 60_000,
  });
}

export interface Workspace {
  tenant: Tenant | null;
  tenants: Tenant[];
  role: Role | null;
  can: (minimum: Role) => boolean;
}

export function useWorkspace(): Workspace {
  const tenants = useTenants().data?.results ?? [];
  const tenantId = useTenantId();
  const tenant = tenants.find((t) => t.id === tenantId) ?? tenants[0] ?? null;
  const role = (tenant?.role ?? null) as Role | null;
  return { tenant, tenants, role, can: (minimum) => atLeast(role, minimum) };
}

export async function signIn(tokens: Tokens): Promise<void> {
  session.setTokens(tokens);
  const tenants = await api.get<{ results: Tenant[] }>('/api/tenants/');
  if (!tenants.results.some((t) => t.id === session.tenantId)) session.setTenant(tenants.results[0]?.id ?? null);
}

export function useSignOut(): () => Promise<void> {
  return useCallback(async () => {
    const refresh = sessionStorage.getItem('segops.refresh');
    if (refresh) {
      // Revokes the refresh token family where the API offers it; signing out locally does not depend on it.
      await request('POST', '/api/auth/logout/', { body: { refresh }, anonymous: true }).catch(() => undefined);
    }
    session.clear();
  }, []);
}
