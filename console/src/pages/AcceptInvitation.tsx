// The link from an invitation mail. A person without an account sets a password and joins the inviting
// tenant (no tenant of their own); a person with an account logs in first and then joins.
import { Button, PasswordInput, Stack, Text } from '@mantine/core';
import { useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { Link, useNavigate, useSearchParams } from 'react-router';
import { ApiError, request, session } from '../api/client';
import type { InvitationPreview, Joined } from '../api/types';
import { ErrorNotice, Loading } from '../app/feedback';
import { signIn } from '../app/session';
import { AuthFrame } from './AuthFrame';

export default function AcceptInvitation() {
  const [params] = useSearchParams();
  const token = params.get('token') ?? '';
  const navigate = useNavigate();
  const [password, setPassword] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const invitation = useQuery({
    queryKey: ['invitation', token],
    queryFn: () =>
      request<InvitationPreview>('GET', `/api/invitations/${encodeURIComponent(token)}/`, { anonymous: true }),
    enabled: token !== '',
    retry: false,
  });
  const here = `/invitations/accept?token=${encodeURIComponent(token)}`;
  const loginRequired = error instanceof ApiError && error.code === 'login_required';
  const fields = error instanceof ApiError ? error.fieldErrors : {};

  const accept = async () => {
    setBusy(true);
    setError(null);
    try {
      const signedIn = session.signedIn;
      const answer = await request<Joined>('POST', '/api/invitations/accept/', {
        body: signedIn ? { token } : { token, password },
        anonymous: !signedIn,
      });
      session.setTenant(answer.tenant.id);
      await signIn(answer);
      session.setTenant(answer.tenant.id);
      navigate('/segments', { replace: true });
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  if (!token) return <AuthFrame title="Invitation">This link has no token.</AuthFrame>;
  if (invitation.isPending) return <Loading />;
  if (invitation.isError) {
    return (
      <AuthFrame title="Invitation">
        <ErrorNotice error={invitation.error} />
        <Text size="sm">The invitation may have been used, revoked or expired. Ask for a new one.</Text>
      </AuthFrame>
    );
  }
  const invite = invitation.data;
  return (
    <AuthFrame title={`Join ${invite.tenant_name}`}>
      <Text>
        You are invited to <b>{invite.tenant_slug}</b> as <b>{invite.role}</b> ({invite.email}).
      </Text>
      {session.signedIn ? (
        <Button onClick={accept} loading={busy}>
          Accept invitation
        </Button>
      ) : (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            void accept();
          }}
        >
          <Stack>
            <PasswordInput
              label="Choose a password"
              autoComplete="new-password"
              required
              value={password}
              onChange={(e) => setPassword(e.currentTarget.value)}
              error={fields['/password']}
            />
            <Button type="submit" loading={busy}>
              Accept and join
            </Button>
          </Stack>
        </form>
      )}
      {loginRequired ? (
        <Text>
          You already have an account for {invite.email}.{' '}
          <Link to={`/login?next=${encodeURIComponent(here)}`}>Log in</Link> to accept.
        </Text>
      ) : (
        Object.keys(fields).length === 0 && <ErrorNotice error={error} />
      )}
    </AuthFrame>
  );
}
