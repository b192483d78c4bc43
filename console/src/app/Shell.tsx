// The signed-in frame: header (tenant switcher, role, sign out), sidebar, and the page.
import { AppShell, Badge, Burger, Button, Group, NavLink, Select, Text } from '@mantine/core';
import { useDisclosure, useMediaQuery } from '@mantine/hooks';
import { useQueryClient } from '@tanstack/react-query';
import { useEffect, useState } from 'react';
import { Navigate, NavLink as RouterLink, Outlet, useLocation, useNavigate } from 'react-router';
import { handleUnauthorized, session } from '../api/client';
import { Loading } from './feedback';
import { useSignOut, useSignedIn, useWorkspace } from './session';

const NAV = [
  { to: '/segments', label: 'Segments' },
  { to: '/sandbox', label: 'Sandbox' },
  { to: '/events', label: 'Events' },
  { to: '/connectors', label: 'Connectors' },
];
const SETTINGS = [
  { to: '/settings/api-keys', label: 'API Keys' },
  { to: '/settings/team', label: 'Team' },
  { to: '/settings/integrations', label: 'Integrations' },
  { to: '/settings/usage', label: 'Usage' },
  { to: '/settings/plan', label: 'Plan' },
];

/** The login page's location state when a session ended (it then says so). */
export const SESSION_ENDED = { sessionEnded: true };

export function Shell() {
  const signedIn = useSignedIn();
  const location = useLocation();
  const navigate = useNavigate();
  const [restoring, setRestoring] = useState(!signedIn && session.hasRefreshToken);
  // Whether this tab had a session when the frame opened: losing it is "your session ended", never
  // having had one (a first visit) is not.
  const [hadSession] = useState(signedIn || session.hasRefreshToken);
  const next = encodeURIComponent(location.pathname + location.search);

  useEffect(() => {
    handleUnauthorized(() => {
      // Several requests can be refused at once: the first one sends the person to log in.
      if (window.location.pathname === '/login') return;
      navigate(`/login?next=${encodeURIComponent(window.location.pathname + window.location.search)}`, {
        state: SESSION_ENDED,
      });
    });
  }, [navigate]);
  useEffect(() => {
    if (restoring) void session.refresh().finally(() => setRestoring(false));
  }, [restoring]);

  if (restoring) return <Loading label="Restoring your session" />;
  if (!signedIn) return <Navigate to={`/login?next=${next}`} replace state={hadSession ? SESSION_ENDED : null} />;
  return <Frame />;
}

function Frame() {
  const [opened, { toggle, close }] = useDisclosure();
  // Below the `sm` breakpoint the closed navbar is only moved off screen: `inert` keeps its links out
  // of the Tab order and away from screen readers until the burger opens it.
  const narrow = useMediaQuery('(max-width: 48em)') ?? false;
  const workspace = useWorkspace();
  const signOut = useSignOut();
  const navigate = useNavigate();
  const client = useQueryClient();
  const location = useLocation();
  useEffect(close, [location.pathname, close]);

  const link = (item: { to: string; label: string }) => (
    <NavLink key={item.to} component={RouterLink} to={item.to} label={item.label} />
  );
  return (
    <AppShell
      header={{ height: 56 }}
      navbar={{ width: 220, breakpoint: 'sm', collapsed: { mobile: !opened } }}
      padding="md"
    >
      <AppShell.Header>
        <Group h="100%" px="md" justify="space-between" wrap="nowrap">
          <Group gap="xs" wrap="nowrap">
            <Burger opened={opened} onClick={toggle} hiddenFrom="sm" size="sm" aria-label="Toggle navigation" />
            <Text fw={700} size="lg">
              SegOps
            </Text>
          </Group>
          <Group gap="xs" wrap="nowrap">
            {workspace.tenants.length > 1 ? (
              <Select
                aria-label="Tenant"
                size="xs"
                w={150}
                data={workspace.tenants.map((t) => ({ value: String(t.id), label: t.slug }))}
                value={workspace.tenant ? String(workspace.tenant.id) : null}
                allowDeselect={false}
                onChange={(id) => {
                  session.setTenant(Number(id));
                  // Everything cached belongs to the previous tenant.
                  void client.invalidateQueries();
                  navigate('/segments');
                }}
              />
            ) : (
              <Text size="sm" visibleFrom="xs">
                {workspace.tenant?.slug}
              </Text>
            )}
            {workspace.role && (
              <Badge variant="light" data-testid="role">
                {workspace.role}
              </Badge>
            )}
            <Button
              size="xs"
              variant="default"
              onClick={async () => {
                await signOut();
                navigate('/login');
              }}
            >
              Log out
            </Button>
          </Group>
        </Group>
      </AppShell.Header>
      <AppShell.Navbar p="xs" aria-label="Main" inert={narrow && !opened}>
        {NAV.map(link)}
        <NavLink label="Settings" defaultOpened childrenOffset="md">
          {SETTINGS.map(link)}
        </NavLink>
      </AppShell.Navbar>
      <AppShell.Main>{workspace.tenant ? <Outlet /> : <Loading />}</AppShell.Main>
    </AppShell>
  );
}
