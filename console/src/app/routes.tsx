// Every page but the sign-in ones is loaded on first visit, so the first page downloads only itself.
import { createBrowserRouter, Navigate } from 'react-router';
import { Shell } from './Shell';
import { Login } from '../pages/Login';
import { Loading, RouteError } from './feedback';

const page = (load: () => Promise<{ default: React.ComponentType }>) => async () => ({
  Component: (await load()).default,
});

// What a full page load shows while the first route's page is downloaded (without it the router
// renders nothing until then).
const HydrateFallback = () => <Loading label="Loading page" />;

export const router = createBrowserRouter([
  {
    // A page that throws (or whose code fails to load) shows `RouteError`, never the router's developer page.
    ErrorBoundary: RouteError,
    children: [
      { path: '/login', Component: Login },
      { path: '/signup', HydrateFallback, lazy: page(() => import('../pages/Signup')) },
      { path: '/verify-email', HydrateFallback, lazy: page(() => import('../pages/VerifyEmail')) },
      { path: '/invitations/accept', HydrateFallback, lazy: page(() => import('../pages/AcceptInvitation')) },
      {
        path: '/',
        Component: Shell,
        HydrateFallback,
        children: [
          {
            // Inside the frame, so the header and sidebar stay usable.
            ErrorBoundary: RouteError,
            children: [
              { index: true, element: <Navigate to="/segments" replace /> },
              { path: 'segments', lazy: page(() => import('../pages/SegmentList')) },
              { path: 'segments/new', lazy: page(() => import('../pages/SegmentNew')) },
              { path: 'segments/:segmentId', lazy: page(() => import('../pages/SegmentDetail')) },
              { path: 'sandbox', lazy: page(() => import('../pages/Sandbox')) },
              { path: 'events', lazy: page(() => import('../pages/Events')) },
              { path: 'connectors', lazy: page(() => import('../pages/Connectors')) },
              { path: 'settings', element: <Navigate to="/settings/api-keys" replace /> },
              { path: 'settings/api-keys', lazy: page(() => import('../pages/settings/ApiKeys')) },
              { path: 'settings/team', lazy: page(() => import('../pages/settings/Team')) },
              { path: 'settings/integrations', lazy: page(() => import('../pages/settings/Integrations')) },
              { path: 'settings/usage', lazy: page(() => import('../pages/settings/Usage')) },
              { path: 'settings/plan', lazy: page(() => import('../pages/settings/Plan')) },
              { path: '*', lazy: page(() => import('../pages/NotFound')) },
            ],
          },
        ],
      },
    ],
  },
]);
